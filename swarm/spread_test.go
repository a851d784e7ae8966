package swarm

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestFetchServeWhileFetchingProvidesEarly: with WithServeWhileFetching a
// puller of a large DAG is found in the DHT as a provider of it while its
// fetch is still under way, once it holds fetchProvideEarlyBytes (the
// fetch is held at its stored blocks past that until then), and it serves
// the blocks it holds so far over BlocksProtocol, answering "not here"
// for the others.
func TestFetchServeWhileFetchingProvidesEarly(t *testing.T) {
	root, blks := buildDAG(t, fetchProvideEarlyBytes>>20+8, 1<<20, 8)
	a := newTestNode(t, nil)
	putAll(t, a.cfg.Blockstore, blks)
	b := newTestNode(t, nil)
	if err := b.Connect(t.Context(), addrInfo(a)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "routing tables", func() bool {
		return a.dht.RoutingTable().Size() > 0 && b.dht.RoutingTable().Size() > 0
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var once sync.Once
	var seen bool
	var partial int
	err := b.Fetch(ctx, root, func(p Progress) {
		if p.Bytes < fetchProvideEarlyBytes+1<<20 {
			return
		}
		once.Do(func() {
			// Still inside the fetch: B must show up as a provider.
			deadline := time.Now().Add(15 * time.Second)
			for time.Now().Before(deadline) {
				ps, _ := a.FindProviders(ctx, root, 20)
				if slices.ContainsFunc(ps, func(ai peer.AddrInfo) bool { return ai.ID == b.ID() }) {
					seen = true
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			// What B holds now it serves; the rest it says it lacks.
			cs := make([]cid.Cid, 0, len(blks))
			for _, blk := range blks {
				cs = append(cs, blk.Cid())
			}
			missing, answered, err := a.requestBlocks(ctx, b.ID(), cs[:min(len(cs), MaxBlocksPerRequest)], func(blocks.Block) error { partial++; return nil })
			if err != nil || answered != len(cs) || partial+len(missing) != len(cs) {
				t.Errorf("asking B for the DAG mid-fetch: %d answered, %d served, %d not here, err %v", answered, partial, len(missing), err)
			}
		})
	}, WithProviders(addrInfo(a)), WithServeWhileFetching())
	if err != nil {
		t.Fatal(err)
	}
	if !seen {
		t.Fatal("B was not found as a provider in the DHT while its fetch with WithServeWhileFetching was under way")
	}
	if partial == 0 {
		t.Fatal("B served none of the blocks it had stored mid-fetch")
	}
	checkAll(t, b.cfg.Blockstore, blks)
	t.Logf("mid-fetch B served %d of %d blocks", partial, len(blks))
}
