package swarm

import (
	"testing"

	"github.com/ipfs/go-cid"

	"orchmind/store"
)

// TestBlocksProtocolFromStore: a provider whose blocks are in a
// store.Store serves them over BlocksProtocol from reused buffers
// (ReadToServe): two fetchers at once, each of a DAG whose leaves vary in
// size, get every block intact over BlocksProtocol — a buffer handed back
// too early would show as a block that fails its hash.
func TestBlocksProtocolFromStore(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	prov := newTestNode(t, func(c *Config) { c.Blockstore = st })
	rootA, blksA := buildDAG(t, 24, 700<<10, 8)
	rootB, blksB := buildDAG(t, 40, 90<<10, 8)
	putAll(t, st, blksA)
	putAll(t, st, blksB)
	errs := make(chan error, 2)
	fetchers := []*Swarm{newTestNode(t, nil), newTestNode(t, nil)}
	for i, root := range []cid.Cid{rootA, rootB} {
		f := fetchers[i]
		go func() {
			var last Progress
			err := f.Fetch(t.Context(), root, func(p Progress) { last = p }, WithProviders(addrInfo(prov)))
			if err == nil && last.Bitswap != 0 {
				t.Errorf("%d blocks came over bitswap, want all over BlocksProtocol", last.Bitswap)
			}
			errs <- err
		}()
	}
	for range fetchers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	checkAll(t, fetchers[0].cfg.Blockstore, blksA)
	checkAll(t, fetchers[1].cfg.Blockstore, blksB)
}
