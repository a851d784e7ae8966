// Package node is the orchmind daemon: one base model held in memory, the
// content store, the libp2p swarm, and the local HTTP API and web UI that
// tie them together. It implements api.SwarmService: publishing an adapter
// folder (import into the store as UnixFS, pin, provide in the DHT, announce
// a signed manifest), searching what the swarm announced, pulling (fetch,
// verify, read the folder once and check the base once) and listing peers.
// The announcements it has seen (the swarm's catalogue) are saved in the
// store every minute and at Close, and given back to the swarm, verified
// again, when the node starts.
package node
