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
// go first. Protected peers (gossipsub's mesh, the DHT's two farthest
// buckets) are not counted: a trim keeps them plus the low mark's worth of
// others.
//
// The scale harness (docs/scale.md, N = 200 nodes) measured the old 64/192
// with a one-minute grace at 26.0 MB RSS and 154 connections per node;
// 48/128 with a 20 s grace at 23.4 MB and 111 connections, announcements
// and DHT lookups as fast; 32/96 with a 20 s grace at 20.6 MB and 88
// connections but thrashing (trimmed peers re-dialled by the DHT: five times the
// catalogue traffic, provides 1 s → 21 s). (Those RSS figures were read
// before the harness stopped counting its own stream queues and freed heap
// not yet returned: about 7 MB per node less at N = 100, docs/scale.md.)
// 128 is also the resource
// manager's system connection limit on the smallest machines, so the
// connection manager trims before the resource manager refuses.
const (
	DefaultConnMgrLow  = 48
	DefaultConnMgrHigh = 128
	// ConnMgrGracePeriod is how long a new connection is spared from
	// trimming (Config.ConnMgrGrace's default); kubo uses the same 20 s.
	ConnMgrGracePeriod = 20 * time.Second
)
