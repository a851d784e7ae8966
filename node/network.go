package node

import (
	"context"

	"orchmind/node/api"
)

// Peers lists the connected peers: how each was found and how we are
// connected to it.
func (n *Node) Peers(context.Context) ([]api.Peer, error) {
	var out []api.Peer
	for _, p := range n.sw.Network().Peers {
		ps := api.Peer{ID: p.ID.String(), Orchmind: p.Orchmind, Source: p.Source, Conn: p.Conn}
		for _, a := range n.sw.PeerAddrs(p.ID) {
			ps.Addrs = append(ps.Addrs, a.String())
		}
		out = append(out, ps)
	}
	return out, nil
}

// Network says how the node is reachable and how it found its orchmind
// peers (api.NetworkReporter).
func (n *Node) Network(context.Context) api.NetworkStatus {
	st := n.sw.Network()
	out := api.NetworkStatus{Reachability: st.Reachability, PublicDHT: st.PublicDHT, PublicDHTPeers: st.PublicDHTPeers,
		Rendezvous: st.Rendezvous, HolePunches: st.HolePunches, HolePunchFailures: st.HolePunchFailures, BySource: map[string]int{}}
	for _, a := range st.Addrs {
		out.Addrs = append(out.Addrs, a.String())
	}
	for _, p := range st.Peers {
		if p.Orchmind {
			out.OrchmindPeers++
			out.BySource[p.Source]++
		}
	}
	return out
}
