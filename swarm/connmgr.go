package swarm

import "time"

// The connection manager's defaults (Config.ConnMgrLow, Config.ConnMgrHigh).
// Each connection costs a node about 150–200 KB and ten goroutines
// (gossipsub state, a bitswap queue, a DHT stream, identify and peerstore
// records), and the DHT connects a node to most peers it learns of, so the
// high mark bounds a node's memory; home routers' NAT tables also fill with
// many connections. When a node goes over the high mark the connection
// manager closes connections down to the low mark, those with the lowest
// tag weight first, sparing connections younger than the grace period and
// protected peers (gossipsub's mesh peers); orchmind peers carry the
// orchmind tag (weight 50, see orchmindPeerTag), so public-DHT-only peers
// go first. docs/scale.md has the figures behind these values.
const (
	DefaultConnMgrLow  = 64
	DefaultConnMgrHigh = 192
	// ConnMgrGracePeriod is how long a new connection is spared from trimming.
	ConnMgrGracePeriod = time.Minute
)
