package swarm

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// HoldersProtocol lets a peer that fetches a DAG learn, from a peer that
// serves it (the announcement's author, first of all), which other peers
// hold blocks of it — those fetching it at the same time, and those that
// finished — so that a popular pull spreads over its pullers at once,
// without waiting for DHT provider records (each a walk of the DHT to
// publish and one to find). It is a tracker that every server of a DAG
// keeps for the DAGs it serves.
//
// Wire format: the request is a frame holding the root's CID in binary
// form and one flags byte: bit 0 set says "I hold blocks of this DAG and
// serve them" (the server then lists the requester to later askers). The
// client then closes its side. The answer is a uvarint count (at most
// maxHolders) and, for each holder, a frame of its peer ID, a uvarint
// count of addresses (at most maxHolderAddrs) and that many frames, each a
// multiaddr in binary form. A frame is a uvarint length and that many
// bytes. A server that neither holds nor fetches the root answers an empty
// list and records nothing.
const HoldersProtocol protocol.ID = "/orchmind/holders/1.0.0"

const (
	// maxHolders bounds the holders of one answer and those a server
	// remembers per DAG (the most recent).
	maxHolders = 16
	// maxHolderAddrs bounds the addresses sent per holder.
	maxHolderAddrs = 4
	// maxHolderRoots bounds the DAGs a server keeps holders for.
	maxHolderRoots = 256
	// holderTTL is how long a holder stays listed after it registered.
	holderTTL = 10 * time.Minute
	// holdersFirstAsk is the pause after a fetch's first question to its
	// providers about other holders before it asks again; each pause after
	// doubles, up to holdersMaxPause.
	holdersFirstAsk = 250 * time.Millisecond
	holdersMaxPause = 4 * time.Second
	// holdersTimeout bounds one exchange.
	holdersTimeout = 5 * time.Second
)

// holderFlagServing: the requester holds blocks of the DAG and serves them.
const holderFlagServing = 1

// holderTable is what a server remembers of who holds which DAG.
type holderTable struct {
	mu    sync.Mutex
	roots map[string][]holderEntry // multihash → most recent last
}

type holderEntry struct {
	id peer.ID
	at time.Time
}

func newHolderTable() *holderTable { return &holderTable{roots: map[string][]holderEntry{}} }

// add lists p as a holder of the DAG with multihash key.
func (t *holderTable) add(key string, p peer.ID, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	hs := slices.DeleteFunc(t.roots[key], func(e holderEntry) bool { return e.id == p || now.Sub(e.at) > holderTTL })
	hs = append(hs, holderEntry{p, now})
	if len(hs) > maxHolders {
		hs = hs[len(hs)-maxHolders:]
	}
	t.roots[key] = hs
	if len(t.roots) > maxHolderRoots {
		// Drop the DAG whose newest holder is oldest.
		var oldest string
		var at time.Time
		for k, hs := range t.roots {
			if last := hs[len(hs)-1].at; oldest == "" || last.Before(at) {
				oldest, at = k, last
			}
		}
		delete(t.roots, oldest)
	}
}

// list returns the holders of the DAG with multihash key, newest first,
// that are not expired.
func (t *holderTable) list(key string, now time.Time) []peer.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	hs := t.roots[key]
	out := make([]peer.ID, 0, len(hs))
	for i := len(hs) - 1; i >= 0; i-- {
		if now.Sub(hs[i].at) <= holderTTL {
			out = append(out, hs[i].id)
		}
	}
	return out
}

// fetchingBlocks are blocks that fetches with WithServeWhileFetching have
// verified and not yet committed to the store: serveBlocks gives them out
// from memory, so that a puller can serve what it holds without syncing
// it to disk first. A fetch's writer keeps these blocks until its commit
// anyway; the map only shares them.
type fetchingBlocks struct {
	mu    sync.RWMutex
	blks  map[string]blocks.Block // multihash → block
	roots map[string]int          // multihash of a root → fetches of it under way
}

func newFetchingBlocks() *fetchingBlocks {
	return &fetchingBlocks{blks: map[string]blocks.Block{}, roots: map[string]int{}}
}

func (fb *fetchingBlocks) put(b blocks.Block) {
	fb.mu.Lock()
	fb.blks[string(b.Cid().Hash())] = b
	fb.mu.Unlock()
}

func (fb *fetchingBlocks) drop(bs []blocks.Block) {
	if len(bs) == 0 {
		return
	}
	fb.mu.Lock()
	for _, b := range bs {
		delete(fb.blks, string(b.Cid().Hash()))
	}
	fb.mu.Unlock()
}

// get returns the bytes of the block with c's multihash, or nil.
func (fb *fetchingBlocks) get(c cid.Cid) []byte {
	fb.mu.RLock()
	defer fb.mu.RUnlock()
	if b, ok := fb.blks[string(c.Hash())]; ok {
		if d := b.RawData(); d != nil {
			return d
		}
		return []byte{}
	}
	return nil
}

func (fb *fetchingBlocks) startRoot(root cid.Cid) {
	fb.mu.Lock()
	fb.roots[string(root.Hash())]++
	fb.mu.Unlock()
}

func (fb *fetchingBlocks) endRoot(root cid.Cid) {
	fb.mu.Lock()
	k := string(root.Hash())
	if fb.roots[k]--; fb.roots[k] <= 0 {
		delete(fb.roots, k)
	}
	fb.mu.Unlock()
}

func (fb *fetchingBlocks) fetching(root cid.Cid) bool {
	fb.mu.RLock()
	defer fb.mu.RUnlock()
	return fb.roots[string(root.Hash())] > 0
}

// serveHolders answers one HoldersProtocol request.
func (s *Swarm) serveHolders(st network.Stream) {
	defer st.Close()
	p := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(holdersTimeout))
	r := bufio.NewReader(io.LimitReader(st, maxCIDBytes+16))
	root, flags, err := readHoldersRequest(r)
	if err != nil {
		s.log.Debug("bad holders request", "peer", p.String(), "err", err)
		_ = st.Reset()
		return
	}
	var list []peer.ID
	if s.servesRoot(root) {
		key, now := string(root.Hash()), time.Now()
		for _, h := range s.holders.list(key, now) {
			if h != p && h != s.host.ID() && s.isConnected(h) && !s.audit.banned(h) {
				list = append(list, h)
			}
		}
		if flags&holderFlagServing != 0 && !s.audit.banned(p) {
			s.holders.add(key, p, now)
		}
	}
	w := bufio.NewWriter(st)
	err = writeHoldersAnswer(w, list, s.host.Peerstore().Addrs)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		s.log.Debug("holders answer broke off", "peer", p.String(), "err", err)
		_ = st.Reset()
	}
}

// servesRoot reports whether this node holds root or is fetching it.
func (s *Swarm) servesRoot(root cid.Cid) bool {
	if s.fetchingBlks.fetching(root) {
		return true
	}
	has, err := s.cfg.Blockstore.Has(s.ctx, root)
	return err == nil && has
}

func readHoldersRequest(r *bufio.Reader) (cid.Cid, byte, error) {
	b, err := readFrame(r, maxCIDBytes)
	if err != nil {
		return cid.Undef, 0, err
	}
	c, err := cid.Cast(b)
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("bad CID in holders request: %w", err)
	}
	flags, err := r.ReadByte()
	if err != nil {
		return cid.Undef, 0, fmt.Errorf("holders request without flags: %w", err)
	}
	return c, flags, nil
}

func writeHoldersAnswer(w io.Writer, list []peer.ID, addrs func(peer.ID) []ma.Multiaddr) error {
	list = list[:min(len(list), maxHolders)]
	buf := binary.AppendUvarint(nil, uint64(len(list)))
	for _, h := range list {
		id := []byte(h)
		buf = binary.AppendUvarint(buf, uint64(len(id)))
		buf = append(buf, id...)
		as := addrs(h)
		as = as[:min(len(as), maxHolderAddrs)]
		buf = binary.AppendUvarint(buf, uint64(len(as)))
		for _, a := range as {
			ab := a.Bytes()
			buf = binary.AppendUvarint(buf, uint64(len(ab)))
			buf = append(buf, ab...)
		}
	}
	_, err := w.Write(buf)
	return err
}

// maxPeerIDBytes bounds a peer ID on the wire (an identity multihash of
// an inlined key is at most a few dozen bytes; RSA keys are hashed).
const maxPeerIDBytes = 128

// maxAddrBytes bounds one multiaddr on the wire.
const maxAddrBytes = 256

func readHoldersAnswer(r *bufio.Reader) ([]peer.AddrInfo, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxHolders {
		return nil, fmt.Errorf("holders answer lists %d peers; at most %d are allowed", n, maxHolders)
	}
	out := make([]peer.AddrInfo, 0, n)
	for range n {
		b, err := readFrame(r, maxPeerIDBytes)
		if err != nil {
			return nil, err
		}
		id, err := peer.IDFromBytes(b)
		if err != nil {
			return nil, fmt.Errorf("bad peer ID in holders answer: %w", err)
		}
		k, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, err
		}
		if k > maxHolderAddrs {
			return nil, fmt.Errorf("holders answer gives %d addresses for a peer; at most %d are allowed", k, maxHolderAddrs)
		}
		ai := peer.AddrInfo{ID: id}
		for range k {
			ab, err := readFrame(r, maxAddrBytes)
			if err != nil {
				return nil, err
			}
			if a, err := ma.NewMultiaddrBytes(ab); err == nil {
				ai.Addrs = append(ai.Addrs, a)
			}
		}
		out = append(out, ai)
	}
	return out, nil
}

func writeHoldersRequest(w io.Writer, root cid.Cid, flags byte) error {
	b := root.Bytes()
	buf := binary.AppendUvarint(nil, uint64(len(b)))
	buf = append(buf, b...)
	buf = append(buf, flags)
	_, err := w.Write(buf)
	return err
}

// askHolders asks p, which serves root, for other holders of root; serving
// says this node holds blocks of root and serves them (p then lists it to
// others). A peer that does not speak HoldersProtocol (an older orchmind,
// another libp2p node) makes it fail; the fetch then stops asking it.
func (s *Swarm) askHolders(ctx context.Context, p peer.ID, root cid.Cid, serving bool) ([]peer.AddrInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, holdersTimeout)
	defer cancel()
	if !s.isConnected(p) {
		if err := s.ConnectPeer(ctx, p); err != nil {
			return nil, err
		}
	}
	st, err := s.host.NewStream(ctx, p, HoldersProtocol)
	if err != nil {
		return nil, fmt.Errorf("opening a holders stream to %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	var flags byte
	if serving {
		flags |= holderFlagServing
	}
	if err := writeHoldersRequest(st, root, flags); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("sending a holders request to %s: %w", p, err)
	}
	_ = st.CloseWrite()
	hs, err := readHoldersAnswer(bufio.NewReader(st))
	if err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("reading holders from %s: %w", p, err)
	}
	_ = st.Close()
	return hs, nil
}

// holdersLoop runs beside a fetch: it asks the fetch's first providers
// (the announcement's authors, the peers given with WithProviders) which
// other peers hold blocks of the root, and adds those as providers. It
// asks at once, again as soon as this node holds blocks of its own to
// serve (WithServeWhileFetching: it then registers as a holder), and then
// after growing pauses, until the fetch ends. A provider whose exchange
// fails (one that does not speak HoldersProtocol) is not asked again.
func (f *fetcher) holdersLoop(holding <-chan struct{}) {
	failed := map[peer.ID]bool{}
	serving := false
	pause := holdersFirstAsk
	for {
		f.mu.Lock()
		var ask []peer.ID
		for _, p := range f.provs {
			if len(ask) == holdersAskPeers {
				break
			}
			if !failed[p] && !f.failed[p] && !f.holderOnly[p] {
				ask = append(ask, p)
			}
		}
		f.mu.Unlock()
		for _, p := range ask {
			hs, err := f.s.askHolders(f.ctx, p, f.root, serving)
			if err != nil {
				if f.ctx.Err() != nil {
					return
				}
				f.s.log.Debug("asking a provider for other holders", "peer", p.String(), "err", err)
				failed[p] = true
				continue
			}
			f.holdersOK.Store(true)
			for _, ai := range hs {
				if ai.ID == f.s.host.ID() {
					continue
				}
				if len(ai.Addrs) > 0 {
					f.s.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, 10*time.Minute)
				}
				f.addHolderOnly(ai.ID)
			}
		}
		t := time.NewTimer(pause)
		select {
		case <-f.ctx.Done():
			t.Stop()
			return
		case <-holding:
			t.Stop()
			holding, serving = nil, true
			continue
		case <-t.C:
		}
		pause = min(2*pause, holdersMaxPause)
	}
}

// holdersAskPeers is how many of a fetch's providers it asks for holders
// each time.
const holdersAskPeers = 2

// share makes a verified block that is not stored yet servable from
// memory (WithServeWhileFetching); the first one registers this node as
// a holder with its providers, and once fetchProvideEarlyBytes have
// arrived the root is provided in the DHT.
func (f *fetcher) share(b blocks.Block) {
	f.s.fetchingBlks.put(b)
	f.shared[string(b.Cid().Hash())] = b
	f.serve.Do(func() { close(f.holding) })
	if f.got >= fetchProvideEarlyBytes {
		f.provideOnce.Do(func() { go f.provideEarly() })
	}
}

// watchDHTDue closes f.dhtDue once the fetch should look for providers in
// the DHT as well (see fetchStallSearch); stop ends the watch.
func (f *fetcher) watchDHTDue() (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(fetchProviderSearchDelay / 4)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-f.ctx.Done():
				return
			case now := <-t.C:
				stalled := now.Sub(time.Unix(0, f.lastBlock.Load())) >= fetchStallSearch
				noHolders := !f.holdersOK.Load() && now.Sub(start) >= fetchProviderSearchDelay
				if stalled || noHolders {
					close(f.dhtDue)
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// unshareStored takes blocks the writer has stored out of memory: the
// store serves them from now on.
func (f *fetcher) unshareStored(stored []blocks.Block) {
	for _, b := range stored {
		delete(f.shared, string(b.Cid().Hash()))
	}
	f.s.fetchingBlks.drop(stored)
}

// unshare takes what is left of the fetch's blocks out of memory when it
// ends.
func (f *fetcher) unshare() {
	bs := make([]blocks.Block, 0, len(f.shared))
	for _, b := range f.shared {
		bs = append(bs, b)
	}
	f.s.fetchingBlks.drop(bs)
}

// firstSource returns the fetch's first provider (the announcement's
// author, usually) and how many blocks came from it, for the log: how far
// a pull spread over other holders.
func (f *fetcher) firstSource() (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.provs) == 0 {
		return "", 0
	}
	return f.provs[0].String(), f.from[f.provs[0]]
}
