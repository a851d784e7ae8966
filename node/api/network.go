package api

import "context"

// NetworkStatus says how the node is reachable from the internet and how it
// found its peers; GET /api/swarm/peers returns it as "network" when the
// swarm service reports it (NetworkReporter).
type NetworkStatus struct {
	// Reachability: "public", "nat-relay" (behind NAT, reachable through
	// relays), "nat" (behind NAT, no relay yet), "unknown" or "local-only".
	Reachability string `json:"reachability"`
	// Addrs are the addresses the node gives peers.
	Addrs []string `json:"addrs,omitempty"`
	// PublicDHT says whether the rendezvous on the public IPFS DHT runs;
	// PublicDHTPeers is how many public DHT servers it knows.
	PublicDHT      bool `json:"public_dht"`
	PublicDHTPeers int  `json:"public_dht_peers"`
	// Rendezvous are the namespaces the node advertises on the public DHT.
	Rendezvous []string `json:"rendezvous,omitempty"`
	// OrchmindPeers counts the connected orchmind peers; BySource counts
	// them by how they were found (lan, public-dht, public-bootstrap,
	// bootstrap, remembered, incoming).
	OrchmindPeers int            `json:"orchmind_peers"`
	BySource      map[string]int `json:"by_source"`
	// HolePunches and HolePunchFailures count DCUtR attempts.
	HolePunches       int `json:"hole_punches"`
	HolePunchFailures int `json:"hole_punch_failures"`
}

// NetworkReporter is implemented by swarm services that can say how the
// node is reachable.
type NetworkReporter interface {
	Network(ctx context.Context) NetworkStatus
}
