// Package scale runs many real orchmind swarm nodes in one process, over
// libp2p's in-memory mock network, to measure how the swarm behaves at the
// scale of its users: hundreds to thousands of home PCs 20–200 ms apart,
// with capped uplinks, coming and going.
//
// Every node is a real swarm.Swarm (kad-dht, gossipsub, the catalogue
// exchange, the block protocol and bitswap, the same code a user runs) on
// a mocknet host (swarm.NewWithHost). The harness adds what mocknet lacks:
// a latency model (each node has a place on a plane and a last-mile delay;
// a link's one-way delay is drawn from both, between LatencyMin and
// LatencyMax, and each write jitters by ±Jitter around it, delivered in
// order and pipelined as over TCP, rather than mocknet's own delay, which
// lets a stream carry one write per delay), an uplink shared by all the
// streams a node writes, a connection manager per node, and traffic
// counters per protocol. Run measures the spread of an announcement under
// churn, the catalogue and memory per node, DHT provider lookups (hops
// counted from the query's events), a popular pull, and gossip traffic;
// Result is one JSON line. MeasureConnCost compares what a connection with
// open streams costs a process on mocknet and on libp2p's TCP transport
// with TLS and yamux, which is what makes the harness's memory per node
// stand for a real node's.
//
// What the mock network does not model: packet loss, TCP slow start and
// flow control beyond a 4 MiB window per stream, NAT (every node is a DHT server and reachable), and the CPU
// of transport encryption (mocknet streams are plain).
package scale
