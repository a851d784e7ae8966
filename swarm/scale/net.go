package scale

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	basicconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// place is where a node sits: a point on the unit square (distance stands
// for the long-haul part of a path) and its last-mile delay factor (0..1).
type place struct {
	x, y, last float64
}

func randomPlace(r *rand.Rand) place {
	return place{x: r.Float64(), y: r.Float64(), last: r.Float64()}
}

// linkLatency is the one-way delay between two places: half from the
// distance between them, half from both last miles, scaled into [lo, hi].
// Nearby peers on good lines get lo, far peers on slow lines hi; most
// pairs fall in between, skewed to the middle as real RTT distributions
// are.
func linkLatency(a, b place, lo, hi time.Duration) time.Duration {
	d := math.Hypot(a.x-b.x, a.y-b.y) / math.Sqrt2
	f := 0.5*d + 0.25*(a.last+b.last)
	return lo + time.Duration(f*float64(hi-lo))
}

// class groups stream protocols for the traffic counters.
type class int

const (
	clGossip class = iota
	clDHT
	clCatalogue
	clBlocks
	clBitswap
	clOther
	nClasses
)

var classNames = [nClasses]string{"gossip", "dht", "catalogue", "blocks", "bitswap", "other"}

func classOf(p protocol.ID) class {
	s := string(p)
	switch {
	case strings.HasPrefix(s, "/meshsub/"), strings.HasPrefix(s, "/floodsub/"):
		return clGossip
	case strings.Contains(s, "/kad/"):
		return clDHT
	case strings.Contains(s, "/catalogue"):
		return clCatalogue
	case strings.Contains(s, "/blocks"):
		return clBlocks
	case strings.Contains(s, "bitswap"):
		return clBitswap
	}
	return clOther
}

// counter counts the bytes and writes (≈ messages: gossipsub, the DHT and
// the catalogue protocol write one framed message per Write) of one class.
type counter struct{ bytes, writes atomic.Int64 }

// traffic is what a group of nodes wrote, per protocol class.
type traffic [nClasses]counter

type trafficSnap [nClasses][2]int64

func (t *traffic) snap() trafficSnap {
	var s trafficSnap
	for i := range t {
		s[i] = [2]int64{t[i].bytes.Load(), t[i].writes.Load()}
	}
	return s
}

func (s trafficSnap) sub(o trafficSnap) trafficSnap {
	for i := range s {
		s[i][0] -= o[i][0]
		s[i][1] -= o[i][1]
	}
	return s
}

// uplink serialises everything a node writes through one capacity, as a
// home router's upstream does: each write takes len/rate of the line's
// time after the writes before it; the writer waits (as on a full send
// buffer) once it is more than a couple of milliseconds ahead.
type uplink struct {
	rate float64 // bytes per second; 0 = unlimited
	mu   sync.Mutex
	next time.Time
}

func (u *uplink) wait(ctx context.Context, n int) {
	if u == nil || u.rate <= 0 {
		return
	}
	u.mu.Lock()
	now := time.Now()
	if u.next.Before(now) {
		u.next = now
	}
	u.next = u.next.Add(time.Duration(float64(n) / u.rate * float64(time.Second)))
	ahead := u.next.Sub(now)
	u.mu.Unlock()
	if ahead > 2*time.Millisecond {
		t := time.NewTimer(ahead)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// simHost is a mocknet host with what a user's host has and mocknet's
// lacks: a connection manager and a capped uplink; it also counts the
// traffic its node writes.
type simHost struct {
	host.Host
	cm      *basicconnmgr.BasicConnMgr
	up      *uplink
	traffic *traffic                    // this node's
	all     *traffic                    // every node's
	delay   func(peer.ID) time.Duration // one-way delay to a peer, jittered
	ctx     context.Context
	cancel  context.CancelFunc
}

func newSimHost(h host.Host, low, high int, grace time.Duration, uplinkBytes float64, all *traffic, delay func(peer.ID) time.Duration) (*simHost, error) {
	cm, err := basicconnmgr.NewConnManager(low, high, basicconnmgr.WithGracePeriod(grace))
	if err != nil {
		return nil, err
	}
	h.Network().Notify(cm.Notifee())
	ctx, cancel := context.WithCancel(context.Background())
	return &simHost{Host: h, cm: cm, up: &uplink{rate: uplinkBytes}, traffic: new(traffic), all: all, delay: delay, ctx: ctx, cancel: cancel}, nil
}

// ConnManager returns the node's connection manager (the DHT and
// gossipsub tag and protect peers in it).
func (h *simHost) ConnManager() connmgr.ConnManager { return h.cm }

// NewStream opens a counted, uplink-limited stream.
func (h *simHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	st, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	return &simStream{Stream: st, h: h}, nil
}

// SetStreamHandler registers handler with its streams counted and limited.
func (h *simHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(st network.Stream) { handler(&simStream{Stream: st, h: h}) })
}

// SetStreamHandlerMatch registers handler with its streams counted and limited.
func (h *simHost) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, m, func(st network.Stream) { handler(&simStream{Stream: st, h: h}) })
}

// Close closes the connection manager and the host.
func (h *simHost) Close() error {
	h.cancel()
	_ = h.cm.Close()
	return h.Host.Close()
}

// simStream counts what is written, passes it through the uplink in
// pieces of at most 16 KiB (so that streams share the line fairly), and
// delivers each piece one link delay (with jitter) later, in order, from a
// goroutine of its own: the writer goes on at once, as over TCP with a
// window of up to streamWindow pieces in flight. (Mocknet's own latency
// makes every write of 256 bytes or more wait out the delay before the
// next one: one message per delay and stream, which made gossipsub queues
// overflow and DHT queries crawl at a few hundred nodes.)
type simStream struct {
	network.Stream
	h *simHost

	mu      sync.Mutex
	room    sync.Cond // signalled when a piece leaves q (L is &mu)
	q       []piece   // written, not yet handed to the mock stream
	pending int       // pieces written, not yet delivered (q and the one being delivered)
	running bool      // the sender goroutine runs (only while pieces are pending)
	closed  bool
	err     error // the first write error of the sender, or ErrReset
	last    time.Time
}

type piece struct {
	b   []byte
	due time.Time
}

// streamWindow bounds the pieces of one stream in flight (4 MiB).
//
// The queue is a slice that exists only while pieces are pending: a
// buffered channel of streamWindow pieces per stream (12 KiB, kept for the
// stream's life) cost every node about 3.7 MB at N = 100 — harness memory
// that rss_mb_per_node counted as the node's.
const streamWindow = 256

// sender delivers the pending pieces at their times and ends when none is
// left (an idle stream holds no goroutine and no queue of the harness).
func (s *simStream) sender() {
	var t *time.Timer
	for {
		s.mu.Lock()
		if len(s.q) == 0 {
			s.running = false
			s.q = nil
			s.mu.Unlock()
			if t != nil {
				t.Stop()
			}
			return
		}
		p := s.q[0]
		s.q[0] = piece{}
		s.q = s.q[1:]
		failed := s.err != nil
		s.room.Broadcast()
		s.mu.Unlock()
		if d := time.Until(p.due); d > 0 && !failed {
			if t == nil {
				t = time.NewTimer(d)
			} else {
				t.Reset(d)
			}
			select {
			case <-t.C:
			case <-s.h.ctx.Done():
			}
		}
		var err error
		if !failed {
			_, err = s.Stream.Write(p.b)
		}
		s.mu.Lock()
		s.pending--
		if err != nil && s.err == nil {
			s.err = err
		}
		s.mu.Unlock()
	}
}

func (s *simStream) Write(p []byte) (int, error) {
	c := classOf(s.Protocol())
	s.h.traffic[c].writes.Add(1)
	s.h.all[c].writes.Add(1)
	n := 0
	for len(p) > 0 {
		k := min(len(p), 16<<10)
		s.h.up.wait(s.h.ctx, k)
		b := make([]byte, k)
		copy(b, p[:k])
		s.mu.Lock()
		if s.room.L == nil {
			s.room.L = &s.mu
		}
		// Wait while the window is full.
		for len(s.q) >= streamWindow && s.err == nil && !s.closed && s.h.ctx.Err() == nil {
			s.room.Wait()
		}
		if s.err != nil || s.closed || s.h.ctx.Err() != nil {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				err = network.ErrReset
			}
			return n, err
		}
		due := time.Now().Add(s.h.delay(s.Conn().RemotePeer()))
		if due.Before(s.last) {
			due = s.last // in order, as TCP delivers
		}
		s.last = due
		s.pending++
		s.q = append(s.q, piece{b: b, due: due})
		if !s.running {
			s.running = true
			go s.sender()
		}
		s.mu.Unlock()
		s.h.traffic[c].bytes.Add(int64(k))
		s.h.all[c].bytes.Add(int64(k))
		n += k
		p = p[k:]
	}
	return n, nil
}

// flush waits until what was written is delivered (or failed) and refuses
// further writes.
func (s *simStream) flush() error {
	for {
		s.mu.Lock()
		s.closed = true
		if s.pending == 0 || s.err != nil {
			err := s.err
			s.mu.Unlock()
			return err
		}
		s.mu.Unlock()
		select {
		case <-time.After(time.Millisecond):
		case <-s.h.ctx.Done():
			return network.ErrReset
		}
	}
}

// CloseWrite delivers what is in flight, then closes the write side.
func (s *simStream) CloseWrite() error {
	if err := s.flush(); err != nil {
		_ = s.Stream.Reset()
		return err
	}
	return s.Stream.CloseWrite()
}

// Close delivers what is in flight, then closes the stream.
func (s *simStream) Close() error {
	if err := s.flush(); err != nil {
		_ = s.Stream.Reset()
		return err
	}
	return s.Stream.Close()
}

// Reset drops what is in flight and resets the stream.
func (s *simStream) Reset() error {
	s.mu.Lock()
	if s.err == nil {
		s.err = network.ErrReset
	}
	s.closed = true
	if s.room.L != nil {
		s.room.Broadcast()
	}
	s.mu.Unlock()
	return s.Stream.Reset()
}
