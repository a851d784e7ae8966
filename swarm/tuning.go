package swarm

import "github.com/ipfs/boxo/bitswap"

// bitswapBlockstoreWorkers is how many goroutines bitswap's server keeps
// to read the blocks peers want from the blockstore. boxo's default, 128,
// suits a gateway serving thousands of peers; a home node serves a few at
// once (and bulk transfers go over BlocksProtocol), while 128 idle
// goroutines cost every node about 1 MB. Measured with the scale harness
// (swarm/scale): per-node memory fell by that much, transfers unchanged.
// Now 4 (was 16): two task workers (scaletune.go) send what they read.
const bitswapBlockstoreWorkers = 4

// bitswapOptions configures the node's bitswap.
func (s *Swarm) bitswapOptions() []bitswap.Option {
	opts := append([]bitswap.Option{
		bitswap.WithTracer(s.audit),
		bitswap.EngineBlockstoreWorkerCount(bitswapBlockstoreWorkers),
	}, bitswapPoolOptions()...)
	if s.cfg.bitswapServes != nil {
		opts = append(opts, bitswap.WithPeerBlockRequestFilter(s.cfg.bitswapServes))
	}
	return opts
}
