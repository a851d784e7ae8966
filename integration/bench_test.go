package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"orchmind/node"
	"orchmind/node/api"
	"orchmind/node/base"
	"orchmind/trainer/model"
	"orchmind/trainer/quant"
)

func benchNode(b *testing.B, bs *base.Base, boot []string) *node.Node {
	b.Helper()
	dir := b.TempDir()
	n, err := node.Start(b.Context(), node.Config{DataDir: filepath.Join(dir, "data"), AdapterDir: filepath.Join(dir, "adapters"),
		Base: bs, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot, APIAddr: "127.0.0.1:0", DHTServer: true,
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
// the verified 10 MB adapter (search, pull, byte-checked export).
func BenchmarkPublishToAll(b *testing.B) {
	for _, n := range []int{10, 50} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			bs := tenMB(b)
			nodes := []*node.Node{benchNode(b, bs, nil)}
			for i := 1; i < n; i++ {
				boot := addrB(nodes[i-1])
				if i >= 3 {
					boot = append(boot, addrB(nodes[i/2])...)
				}
				nodes = append(nodes, benchNode(b, bs, boot))
			}
			ctx := b.Context()
			var total, cpu time.Duration
			for i := range b.N {
				src := adapterFolderB(b, bs, 64, uint64(i))
				stopProfile := profileTimed(b, fmt.Sprintf("publish-N%d", n))
				start, cpu0 := time.Now(), processCPU()
				c, err := nodes[0].Publish(ctx, src, nil)
				if err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				for _, nd := range nodes[1:] {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := waitListed(ctx, nd, fmt.Sprint("s", i), c); err != nil {
							b.Error(err)
							return
						}
						if _, err := nd.Pull(ctx, c); err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
				total += time.Since(start)
				cpu += processCPU() - cpu0
				stopProfile()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s-to-all")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s")
		})
	}
}

// BenchmarkFetchVsTCP: one node pulls the 10 MB adapter from one provider;
// beside it, raw loopback TCP throughput in the same run.
func BenchmarkFetchVsTCP(b *testing.B) {
	bs := tenMB(b)
	a := benchNode(b, bs, nil)
	ctx := b.Context()
	var fetchSec float64
	var size int64
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
		start := time.Now()
		if _, err := p.Pull(ctx, c); err != nil {
			b.Fatal(err)
		}
		fetchSec += time.Since(start).Seconds()
	}
	// Raw TCP on loopback: the same number of bytes through one socket.
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
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	buf := make([]byte, 1<<20)
	start := time.Now()
	for range b.N {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		for sent := int64(0); sent < size; sent += int64(len(buf)) {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
	}
	tcpSec := time.Since(start).Seconds()
	mb := float64(size) * float64(b.N) / (1 << 20)
	b.ReportMetric(mb/fetchSec, "fetch-MB/s")
	b.ReportMetric(mb/tcpSec, "tcp-MB/s")
}
