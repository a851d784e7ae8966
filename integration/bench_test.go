package integration

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"orchmind/internal/cputime"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/node"
	"orchmind/node/api"
)

func benchNode(b *testing.B, bs *base.Base, boot []string) *node.Node {
	b.Helper()
	dir := b.TempDir()
	n, err := node.Start(b.Context(), node.Config{DataDir: filepath.Join(dir, "data"), AdapterDir: filepath.Join(dir, "adapters"),
		Base: bs, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot, APIAddr: "127.0.0.1:0", DHTServer: true, LocalOnly: true,
		Log: testLog()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	return n
}

// profileTimed starts a CPU profile of the timed part of a benchmark when
// ORCHMIND_BENCH_PROFILE names a folder (written there as <name>.cpu);
// the returned function stops it.
func profileTimed(b *testing.B, name string) func() {
	dir := os.Getenv("ORCHMIND_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".cpu"))
	if err != nil {
		b.Fatal(err)
	}
	// ORCHMIND_BENCH_PROFILE_HZ samples more often than pprof's 100 Hz
	// (a 10 MB pull takes a few tens of ms); Go then warns once on stderr
	// that the rate was set already.
	if hz, err := strconv.Atoi(os.Getenv("ORCHMIND_BENCH_PROFILE_HZ")); err == nil && hz > 0 {
		runtime.SetCPUProfileRate(hz)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// waitListed polls n's search for text until its newest hit is c, for up
// to 30 s.
func waitListed(ctx context.Context, n *node.Node, text, c string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if res, _ := n.Search(ctx, api.SearchQuery{Text: text}); len(res) > 0 && res[0].CID == c {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s did not see the announcement of %s within 30 s", n.Swarm().ID(), c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tenMB(b *testing.B) *base.Base {
	bs, err := base.Random(model.Config{Dim: 256, HiddenDim: 512, Layers: 10, Heads: 8, KVHeads: 4, SeqLen: 64}, quant.Q8_0, 3)
	if err != nil {
		b.Fatal(err)
	}
	return bs
}

// BenchmarkPublishToAll: time from publish until all N−1 other nodes hold
// the verified 10 MB adapter (search, pull, export, pin), on a swarm that
// has formed: every node has finished joining the DHT (its first routing
// table refresh, in which 50 nodes on one machine all connect to one
// another). The "just-started" case publishes as soon as the last node is
// up instead, while that start-up traffic still competes for the CPUs.
// Outside the timed part every node's files are compared with the
// published ones byte for byte. cpu-s is the CPU time the whole process
// used in the timed part.
func BenchmarkPublishToAll(b *testing.B) {
	for _, c := range []struct {
		n     int
		fresh bool
	}{{10, false}, {50, false}, {50, true}} {
		name := fmt.Sprintf("N=%d", c.n)
		if c.fresh {
			name += "-just-started"
		}
		b.Run(name, func(b *testing.B) {
			bs := tenMB(b)
			nodes := []*node.Node{benchNode(b, bs, nil)}
			for i := 1; i < c.n; i++ {
				boot := addrB(nodes[i-1])
				if i >= 3 {
					boot = append(boot, addrB(nodes[i/2])...)
				}
				nodes = append(nodes, benchNode(b, bs, boot))
			}
			ctx := b.Context()
			srcs := make([]string, b.N)
			for i := range b.N {
				srcs[i] = adapterFolderB(b, bs, 64, uint64(i))
			}
			if !c.fresh {
				joinedDHT(b, nodes)
			}
			// What the swarm burns doing nothing (DHT refreshes, gossip
			// heartbeats, ...) over a second before the publish: the
			// timed part pays it too.
			idle0, idleStart := cputime.Process(), time.Now()
			time.Sleep(time.Second)
			idle := (cputime.Process() - idle0).Seconds() / time.Since(idleStart).Seconds()
			var total, cpu time.Duration
			for i := range b.N {
				stopProfile := profileTimed(b, "publish-"+name)
				start, cpu0 := time.Now(), cputime.Process()
				c, err := nodes[0].Publish(ctx, srcs[i], nil)
				if err != nil {
					b.Fatal(err)
				}
				dirs := make([]string, len(nodes))
				listed, pulled := make([]time.Duration, len(nodes)), make([]time.Duration, len(nodes))
				var wg sync.WaitGroup
				for k, nd := range nodes[1:] {
					wg.Go(func() {
						if err := waitListed(ctx, nd, fmt.Sprint("s", i), c); err != nil {
							b.Error(err)
							return
						}
						listed[k+1] = time.Since(start)
						dir, err := nd.Pull(ctx, c)
						if err != nil {
							b.Error(err)
						}
						pulled[k+1] = time.Since(start)
						dirs[k+1] = dir
					})
				}
				wg.Wait()
				total += time.Since(start)
				cpu += cputime.Process() - cpu0
				stopProfile()
				writeTimeline(b, name, listed[1:], pulled[1:])
				if b.Failed() {
					b.FailNow()
				}
				for _, dir := range dirs[1:] {
					sameFiles(b, srcs[i], dir)
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s-to-all")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s")
			b.ReportMetric(idle, "idle-cpu-s/s")
		})
	}
}

// writeTimeline writes, when ORCHMIND_BENCH_TIMELINE names a folder, one
// line per pulling node to <name>.timeline there: when, after publish, it
// saw the announcement and when its pull returned (ms), sorted by the
// latter.
func writeTimeline(b *testing.B, name string, listed, pulled []time.Duration) {
	dir := os.Getenv("ORCHMIND_BENCH_TIMELINE")
	if dir == "" {
		return
	}
	idx := make([]int, len(listed))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int { return cmp.Compare(pulled[x], pulled[y]) })
	var buf bytes.Buffer
	fmt.Fprintln(&buf, "node listed_ms pulled_ms")
	for _, i := range idx {
		fmt.Fprintf(&buf, "%d %d %d\n", i+1, listed[i].Milliseconds(), pulled[i].Milliseconds())
	}
	if err := os.WriteFile(filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".timeline"), buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
}

// joinedDHT waits until every node has refreshed its DHT routing table
// once successfully (a refresh while the table is still empty fails; it is
// then tried again), for up to 60 s.
func joinedDHT(b *testing.B, nodes []*node.Node) {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, nd := range nodes {
		wg.Go(func() {
			for {
				err := nd.Swarm().RefreshRoutingTable(ctx)
				if err == nil {
					return
				}
				if ctx.Err() != nil {
					b.Errorf("node %s did not join the DHT: %v", nd.Swarm().ID(), err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// sameFiles fails unless the adapter folder got holds the published
// folder's files with the same bytes.
func sameFiles(b *testing.B, want, got string) {
	b.Helper()
	ents, err := os.ReadDir(want)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		w, err := os.ReadFile(filepath.Join(want, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		g, err := os.ReadFile(filepath.Join(got, e.Name()))
		if err != nil || !bytes.Equal(g, w) {
			b.Fatalf("%s: the pulled %s differs from the published one (%v)", got, e.Name(), err)
		}
	}
}

// sinkProtocol is a benchmark-only stream protocol: the receiver reads
// everything, then answers one byte.
const sinkProtocol = "/orchmind-bench/sink/1"

// BenchmarkFetchVsTCP: one node pulls the 10 MB adapter from one provider
// (fetch, store, export, pin; the files are then compared byte for byte,
// untimed). Beside it, in the same run and interleaved with the pulls, the
// same number of bytes sent over one libp2p stream on the very connection
// the pull used (same transport, security and muxer) and over raw loopback
// TCP, each until the receiver has read them all. Raw TCP has no
// encryption: it bounds what any libp2p transfer can reach. fetch-%libp2p
// is the pull's throughput as a share of the stream's; the cpu-ms/MB
// metrics are the whole process's CPU time (both nodes) per MB pulled or
// streamed, steadier than MB/s on a machine other work also loads. Each
// iteration starts a new puller and closes it after.
func BenchmarkFetchVsTCP(b *testing.B) {
	bs := tenMB(b)
	a := benchNode(b, bs, nil)
	ctx := b.Context()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { sink(c); c.Close() }()
		}
	}()
	buf := make([]byte, 1<<20)
	send := func(w io.Writer, closeWrite func() error, r io.Reader, size int64) error {
		for sent := int64(0); sent < size; sent += int64(len(buf)) {
			if _, err := w.Write(buf[:min(int64(len(buf)), size-sent)]); err != nil {
				return err
			}
		}
		if err := closeWrite(); err != nil {
			return err
		}
		_, err := io.ReadFull(r, make([]byte, 1))
		return err
	}

	var fetchSec, streamSec, tcpSec float64
	var fetchCPU, streamCPU time.Duration
	var size int64
	var security, transport string
	for i := range b.N {
		src := adapterFolderB(b, bs, 64, uint64(100+i))
		size = folderBytes(src)
		c, err := a.Publish(ctx, src, nil)
		if err != nil {
			b.Fatal(err)
		}
		p := benchNode(b, bs, addrB(a))
		if err := waitListed(ctx, p, fmt.Sprint("s", 100+i), c); err != nil {
			b.Fatal(err)
		}
		stopProfile := profileTimed(b, fmt.Sprint("pull-", i))
		start, cpu0 := time.Now(), cputime.Process()
		dir, err := p.Pull(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		fetchSec += time.Since(start).Seconds()
		fetchCPU += cputime.Process() - cpu0
		stopProfile()
		sameFiles(b, src, dir)

		// The provider sends to the puller, as in the pull.
		p.Swarm().Host().SetStreamHandler(sinkProtocol, func(st network.Stream) { sink(st); st.Close() })
		st, err := a.Swarm().Host().NewStream(ctx, p.Swarm().ID(), sinkProtocol)
		if err != nil {
			b.Fatal(err)
		}
		cs := st.Conn().ConnState()
		security, transport = string(cs.Security), cs.Transport
		start, cpu0 = time.Now(), cputime.Process()
		if err := send(st, st.CloseWrite, st, size); err != nil {
			b.Fatal(err)
		}
		streamSec += time.Since(start).Seconds()
		streamCPU += cputime.Process() - cpu0
		st.Close()

		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if err := send(conn, conn.(*net.TCPConn).CloseWrite, conn, size); err != nil {
			b.Fatal(err)
		}
		tcpSec += time.Since(start).Seconds()
		conn.Close()
		// One puller at a time: the earlier ones would keep syncing
		// catalogues and DHT tables with each new one, which is not the
		// pull's work.
		p.Close()
	}
	mb := float64(size) * float64(b.N) / (1 << 20)
	b.ReportMetric(mb/fetchSec, "fetch-MB/s")
	b.ReportMetric(mb/streamSec, "libp2p-MB/s")
	b.ReportMetric(mb/tcpSec, "tcp-MB/s")
	b.ReportMetric(100*tcpSec/fetchSec, "fetch-%tcp")
	b.ReportMetric(100*tcpSec/streamSec, "libp2p-%tcp")
	b.ReportMetric(100*streamSec/fetchSec, "fetch-%libp2p")
	// CPU time of the whole process (both nodes) per MB: on a loaded
	// machine a steadier measure than MB/s.
	b.ReportMetric(1000*fetchCPU.Seconds()/mb, "fetch-cpu-ms/MB")
	b.ReportMetric(1000*streamCPU.Seconds()/mb, "libp2p-cpu-ms/MB")
	b.Logf("libp2p stream over %s with %s; %d MB per transfer", transport, security, size>>20)
}

// sink reads everything from rw, then answers one byte.
func sink(rw io.ReadWriter) {
	if _, err := io.Copy(io.Discard, rw); err == nil {
		_, _ = rw.Write([]byte{1})
	}
}
