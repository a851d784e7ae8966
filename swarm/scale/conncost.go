package scale

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// ConnCost is what one end of a connection costs a process, with the
// streams a swarm node keeps open on it (see MeasureConnCost).
type ConnCost struct {
	Transport  string  `json:"transport"`
	ConnEnds   int     `json:"conn_ends"`
	Goroutines float64 `json:"goroutines_per_conn_end"`
	HeapKB     float64 `json:"heap_kb_per_conn_end"`
	StackKB    float64 `json:"stack_kb_per_conn_end"`
}

// costProtocol is the protocol of the streams MeasureConnCost holds open.
const costProtocol = "/orchmind/scale/conncost/1"

// MeasureConnCost connects k hosts pairwise and opens on every connection
// the streams a settled swarm node holds (streamsPerConn each way: gossipsub
// keeps one outbound stream to each peer, and a DHT message sender one
// while it is in use), writes one small message on each so that buffers
// are in use as they would be, and returns the growth of goroutines, heap
// and stacks per connection end. real selects libp2p's TCP transport on
// 127.0.0.1 with TLS and yamux (what a node runs, QUIC aside); otherwise
// libp2p's in-memory mock network, which the scale harness runs on.
func MeasureConnCost(ctx context.Context, k, streamsPerConn int, real bool) (ConnCost, error) {
	c := ConnCost{Transport: "mocknet"}
	if real {
		c.Transport = "tcp+tls+yamux"
	}
	var hosts []host.Host
	var mn mocknet.Mocknet
	closeAll := func() {
		for _, h := range hosts {
			_ = h.Close()
		}
		if mn != nil {
			_ = mn.Close()
		}
	}
	defer closeAll()
	if real {
		for range k {
			h, err := libp2p.New(
				libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
				libp2p.Transport(tcp.NewTCPTransport),
				libp2p.Security(libp2ptls.ID, libp2ptls.New),
				libp2p.DisableRelay(),
				libp2p.DisableMetrics(),
				libp2p.ResourceManager(&network.NullResourceManager{}),
			)
			if err != nil {
				return c, fmt.Errorf("scale: conn cost host: %w", err)
			}
			hosts = append(hosts, h)
		}
	} else {
		var err error
		if mn, err = mocknet.FullMeshLinked(k); err != nil {
			return c, fmt.Errorf("scale: conn cost mock network: %w", err)
		}
		hosts = mn.Hosts()
	}
	var held sync.WaitGroup
	for _, h := range hosts {
		h.SetStreamHandler(costProtocol, func(s network.Stream) {
			// Read until the stream ends, as gossipsub and the DHT do.
			held.Go(func() { _, _ = io.Copy(io.Discard, s) })
		})
	}
	settle := func() (g int, heap, stack uint64) {
		time.Sleep(200 * time.Millisecond)
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapInuse, ms.StackInuse
	}
	g0, h0, s0 := settle()
	var streams []network.Stream
	msg := make([]byte, 200)
	for i, a := range hosts {
		for _, b := range hosts[i+1:] {
			if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
				return c, fmt.Errorf("scale: conn cost connect: %w", err)
			}
			for _, pair := range [][2]host.Host{{a, b}, {b, a}} {
				for range streamsPerConn {
					s, err := pair[0].NewStream(ctx, pair[1].ID(), costProtocol)
					if err != nil {
						return c, fmt.Errorf("scale: conn cost stream: %w", err)
					}
					if _, err := s.Write(msg); err != nil {
						return c, fmt.Errorf("scale: conn cost write: %w", err)
					}
					streams = append(streams, s)
				}
			}
		}
	}
	g1, h1, s1 := settle()
	c.ConnEnds = k * (k - 1)
	n := float64(c.ConnEnds)
	c.Goroutines = round(float64(g1-g0)/n, 1)
	c.HeapKB = round(float64(int64(h1)-int64(h0))/1e3/n, 1)
	c.StackKB = round(float64(int64(s1)-int64(s0))/1e3/n, 1)
	for _, s := range streams {
		_ = s.Reset()
	}
	closeAll()
	hosts, mn = nil, nil
	held.Wait()
	return c, nil
}
