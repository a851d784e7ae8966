package swarm

import (
	"time"

	"github.com/ipfs/boxo/bitswap"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// Per-node costs that do not grow with the swarm, cut for many small home
// nodes (issue 17; measured with the scale harness, docs/scale.md). Every
// goroutine costs a node at least 8 KiB of stack; at N = 100 the harness
// counted about 40 per node in these pools, idle nearly all the time.

// gossipConnectors is how many goroutines gossipsub keeps to dial peers it
// learns of through peer exchange (libp2p's default 8, with 128 pending
// dials): orchmind nodes find each other through the DHT and the
// bootstrap peers, and peer exchange only offers peers to a node whose
// mesh was pruned, a few at a time.
const (
	gossipConnectors      = 2
	gossipPendingConnects = 16
)

// Bitswap is the fallback transfer (bulk transfers use BlocksProtocol), so
// its server keeps few workers: task workers send the blocks peers asked
// for, engine workers pick the next task, blockstore workers read blocks
// (boxo's defaults 8, 8 and 128, which suit a gateway serving thousands of
// peers).
const (
	bitswapTaskWorkers       = 2
	bitswapEngineTaskWorkers = 2
)

// scoreDecayInterval is how often gossipsub recomputes every peer's score
// counters (decays, time in mesh, IP colocation): libp2p's default is
// every second, over every peer the node has known in the last
// RetainScore. The decays are scaled to the interval (scoreDecay) so
// that penalties and rewards fade over the same times as before;
// penalties still apply at once.
const scoreDecayInterval = 5 * time.Second

// scoreDecay is the per-interval decay factor under which a counter
// falls to DefaultDecayToZero of its value in d.
func scoreDecay(d time.Duration) float64 {
	return pubsub.ScoreParameterDecayWithBase(d, scoreDecayInterval, pubsub.DefaultDecayToZero)
}

// gossipHeartbeat is gossipsub's heartbeat: mesh upkeep and IHAVE gossip
// (libp2p's default 1 s). Each heartbeat scores every topic peer of the
// node (IP colocation included) to choose gossip targets, even with no
// message to gossip: at N = 300 that was 15% of the harness's CPU, the
// largest single cost (docs/scale.md). Messages are forwarded along the
// mesh as they arrive, not at heartbeats; announcements are rare.
// Measured (one run each, shared cores): CPU of a 100-node run 54-59 s ->
// 38 s, of a 200-node run 147-153 s -> 133 s, announcements as fast,
// coverage 100%.
const gossipHeartbeat = 2 * time.Second

// gossipSubParams are libp2p's defaults (mesh degree D = 6, history of 5
// heartbeats, gossip of 3) but for the heartbeat and fewer peer-exchange
// dialers.
func gossipSubParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.Connectors = gossipConnectors
	p.HeartbeatInterval = gossipHeartbeat
	p.MaxPendingConnections = gossipPendingConnects
	return p
}

// gossipOptions are the gossipsub options that size its per-node cost.
func gossipOptions() []pubsub.Option {
	return []pubsub.Option{pubsub.WithGossipSubParams(gossipSubParams())}
}

// bitswapPoolOptions size bitswap's server pools.
func bitswapPoolOptions() []bitswap.Option {
	return []bitswap.Option{
		bitswap.TaskWorkerCount(bitswapTaskWorkers),
		bitswap.EngineTaskWorkerCount(bitswapEngineTaskWorkers),
	}
}
