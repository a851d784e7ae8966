package swarm

import (
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"

	"orchmind/store"
)

// BenchmarkFetch: one node fetches a 10 MiB DAG (ten 1 MiB raw leaves under
// one dag-pb node) from one provider it is connected to, over
// BlocksProtocol, into an in-memory blockstore ("mem": the network and
// hashing alone) or a store.Store on disk ("store": with the synced
// writes).
func BenchmarkFetch(b *testing.B) {
	for _, kind := range []string{"mem", "store", "provstore", "fetchstore"} {
		b.Run(kind, func(b *testing.B) {
			bstore := func(prov bool) blockstore.Blockstore {
				if kind == "mem" || kind == "provstore" && !prov || kind == "fetchstore" && prov {
					return memBlockstore()
				}
				st, err := store.Open(b.TempDir(), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = st.Close() })
				return st
			}
			prov := newTestNode(b, func(c *Config) { c.Blockstore = bstore(true) })
			var total time.Duration
			for i := range b.N {
				root, blks := buildDAG(b, 10, 1<<20, 174)
				if err := prov.cfg.Blockstore.PutMany(b.Context(), blks); err != nil {
					b.Fatal(err)
				}
				_ = i
				s := newTestNode(b, func(c *Config) { c.Blockstore = bstore(false) })
				if err := s.Connect(b.Context(), addrInfo(prov)); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := s.Fetch(b.Context(), root, nil, WithProviders(addrInfo(prov))); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				_ = s.Close()
			}
			b.ReportMetric(float64(10*b.N)/total.Seconds(), "MiB/s")
		})
	}
}

// The store's writer is the one Fetch looks for.
var _ stagedStore = (*store.Store)(nil)
