package swarm

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	madns "github.com/multiformats/go-multiaddr-dns"
)

// publicDHTNode is a node with the rendezvous on a public DHT whose only
// bootstrap peer is boot (a helper on loopback): nothing leaves 127.0.0.1.
// It runs AutoNAT, relays and hole punching (no port mapping, no mDNS) like
// a user's node, on loopback.
func publicDHTNode(t *testing.T, boot *Swarm, mod func(*Config)) *Swarm {
	return newTestNode(t, func(c *Config) {
		c.LocalOnly = false
		c.NoNATPortMap = true
		c.MDNS = false
		c.DHTMode = DHTAuto
		c.PublicDHT = true
		if boot != nil {
			c.PublicBootstrap = boot.Addrs()
		}
		if mod != nil {
			mod(c)
		}
	})
}

// TestRendezvousFindsPeersThroughPublicDHT: two nodes that know nothing of
// each other, each given only the public DHT's bootstrap peer (a public
// helper on loopback speaking the default /ipfs/kad/1.0.0 protocol), find
// each other through the rendezvous records, connect, and say so.
func TestRendezvousFindsPeersThroughPublicDHT(t *testing.T) {
	helper := publicDHTNode(t, nil, func(c *Config) {
		c.PublicHelper = true
		// It is the bootstrap peer: its own list names only a peer that is
		// not there (an empty one would mean libp2p's public peers).
		c.PublicBootstrap = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/9/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")}
	})
	if got := helper.Network(); !got.PublicDHT || got.Reachability != ReachPublic {
		t.Fatalf("helper: public DHT %v, reachability %q; want on and public", got.PublicDHT, got.Reachability)
	}
	a := publicDHTNode(t, helper, func(c *Config) { c.Rendezvous = []string{BaseNamespace("fp-test")} })
	b := publicDHTNode(t, helper, nil)
	if !slices.Contains(a.Rendezvous(), BaseNamespace("fp-test")) || !slices.Contains(a.Rendezvous(), RendezvousAll) {
		t.Fatalf("a advertises %v", a.Rendezvous())
	}
	eventually(t, 40*time.Second, "b to find a through the public DHT", func() bool { return b.Connected(a.ID()) })
	// The helper speaks the default DHT protocol: the Amino code path.
	if ok, _ := b.Host().Peerstore().SupportsProtocols(helper.ID(), "/ipfs/kad/1.0.0"); len(ok) == 0 {
		t.Fatal("the helper does not serve /ipfs/kad/1.0.0")
	}
	var pa PeerInfo
	eventually(t, 10*time.Second, "b to see a as an orchmind peer", func() bool {
		for _, p := range b.Network().Peers {
			if p.ID == a.ID() {
				pa = p
			}
		}
		return pa.Orchmind
	})
	if pa.Source != SourcePublicDHT && pa.Source != SourceIncoming {
		t.Fatalf("b found a by %q, want %q (or %q when a dialled first)", pa.Source, SourcePublicDHT, SourceIncoming)
	}
	// The tag is set by the swarm's event goroutine once identify has
	// completed, which may come just after the peerstore knows the
	// protocols: wait for it rather than race it.
	tagged := func(p peer.ID) func() bool {
		return func() bool {
			ti := b.Host().ConnManager().GetTagInfo(p)
			return ti != nil && ti.Tags[orchmindPeerTag] == orchmindPeerWeight
		}
	}
	eventually(t, 10*time.Second, "b's connection manager to tag a as an orchmind peer", tagged(a.ID()))
	eventually(t, 10*time.Second, "b's connection manager to tag the helper (it runs orchmind too)", tagged(helper.ID()))
	if pa.Conn != "direct" {
		t.Fatalf("b's connection to a on loopback is %q, want direct", pa.Conn)
	}
	st := b.Network()
	if !st.PublicDHT || st.PublicDHTPeers == 0 {
		t.Fatalf("b: public DHT %v with %d peers", st.PublicDHT, st.PublicDHTPeers)
	}
}

// TestPublicDHTOffByDefaultAndInLocalOnly: the zero Config (what tests use)
// and LocalOnly (even with PublicDHT asked for) never start the public
// DHT, so they cannot dial libp2p's public bootstrap peers.
func TestPublicDHTOffByDefaultAndInLocalOnly(t *testing.T) {
	if !DefaultConfig("x").PublicDHT {
		t.Fatal("DefaultConfig (users) has the public DHT off")
	}
	for _, mod := range []func(*Config){nil, func(c *Config) { c.PublicDHT, c.PublicHelper = true, true }} {
		s := newTestNode(t, mod)
		st := s.Network()
		if st.PublicDHT || s.inet.pub != nil || len(st.Rendezvous) > 0 {
			t.Fatalf("public DHT runs: %+v", st)
		}
		if st.Reachability != ReachLocalOnly {
			t.Fatalf("reachability %q, want %q", st.Reachability, ReachLocalOnly)
		}
		for _, p := range s.Host().Mux().Protocols() {
			if strings.HasPrefix(string(p), "/ipfs/kad/") {
				t.Fatalf("serves %s", p)
			}
		}
	}
}

// TestRememberedPeersRedialled: a node saves the orchmind peers it was
// connected to in peers.json when it stops, and at its next start dials
// them again with no bootstrap address.
func TestRememberedPeersRedialled(t *testing.T) {
	a := newTestNode(t, nil)
	dir := t.TempDir()
	b1 := newTestNode(t, func(c *Config) { c.DataDir = dir; c.Bootstrap = a.Addrs() })
	eventually(t, 10*time.Second, "b to reach its bootstrap peer", func() bool { return b1.Connected(a.ID()) })
	eventually(t, 10*time.Second, "b to learn a speaks orchmind", func() bool {
		ok, _ := b1.Host().Peerstore().SupportsProtocols(a.ID(), CatalogueProtocol)
		return len(ok) > 0
	})
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	rem, err := LoadRememberedPeers(dir)
	if err != nil || len(rem) != 1 || rem[0].ID != a.ID().String() || rem[0].Source != SourceBootstrap || len(rem[0].Addrs) == 0 {
		t.Fatalf("remembered %+v, %v; want a, found by bootstrap", rem, err)
	}
	b2 := newTestNode(t, func(c *Config) { c.DataDir = dir })
	eventually(t, 10*time.Second, "the restarted b to dial a from memory", func() bool { return b2.Connected(a.ID()) })
	if src := b2.source(a.ID()); src != SourceRemembered {
		t.Fatalf("restarted b found a by %q, want %q", src, SourceRemembered)
	}
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	rem, _ = LoadRememberedPeers(dir)
	if len(rem) != 1 || rem[0].Source != SourceBootstrap {
		t.Fatalf("after the second run: %+v; want a, still as first found (bootstrap)", rem)
	}

	// A damaged file is reported, not fatal, and replaced at the next save.
	if err := os.WriteFile(filepath.Join(dir, PeersFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRememberedPeers(dir); err == nil || !strings.Contains(err.Error(), "delete the file") {
		t.Fatalf("damaged file: %v", err)
	}
	b3 := newTestNode(t, func(c *Config) { c.DataDir = dir; c.Bootstrap = a.Addrs() })
	eventually(t, 10*time.Second, "b3 to reach a", func() bool { return b3.Connected(a.ID()) })
	eventually(t, 10*time.Second, "b3 to learn a speaks orchmind", func() bool {
		ok, _ := b3.Host().Peerstore().SupportsProtocols(a.ID(), CatalogueProtocol)
		return len(ok) > 0
	})
	_ = b3.Close()
	if rem, err := LoadRememberedPeers(dir); err != nil || len(rem) != 1 {
		t.Fatalf("after a damaged file: %+v, %v", rem, err)
	}
}

// TestDefaultListenFixedPortWithFallback: without listen addresses a node
// listens on the configured port on TCP and QUIC, IPv4 and (where the
// machine has it) IPv6; a taken port falls back to a free one with a
// warning.
func TestDefaultListenFixedPortWithFallback(t *testing.T) {
	port := freePort(t)
	var warned []string
	warn := func(msg string, _ ...any) { warned = append(warned, msg) }
	got := defaultListenAddrs(Config{Port: port}, false, warn)
	want := []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port), fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", port)}
	if hasIPv6() {
		want = append(want, fmt.Sprintf("/ip6/::/tcp/%d", port), fmt.Sprintf("/ip6/::/udp/%d/quic-v1", port))
	}
	if s := strs(got); !slices.Equal(s, want) || len(warned) > 0 {
		t.Fatalf("port %d free: %v (warned %v), want %v", port, s, warned, want)
	}
	if s := strs(defaultListenAddrs(Config{}, false, warn)); !strings.Contains(s[0], fmt.Sprint(DefaultPort)) && len(warned) == 0 {
		t.Fatalf("port 0 should mean DefaultPort %d (or a warning that it is taken): %v", DefaultPort, s)
	}
	warned = nil
	ln, err := net.Listen("tcp4", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got = defaultListenAddrs(Config{Port: port}, true, warn)
	if s := strs(got); s[0] != "/ip4/0.0.0.0/tcp/0" || len(warned) != 1 || !strings.Contains(warned[0], "config set port") {
		t.Fatalf("port %d taken: %v, warned %q", port, s, warned)
	}
	for _, a := range got {
		if strings.Contains(a.String(), "quic") {
			t.Fatalf("private network listens on %s", a)
		}
	}
	if s := strs(defaultListenAddrs(Config{LocalOnly: true}, false, warn)); !slices.Equal(s, []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}) {
		t.Fatalf("local-only: %v", s)
	}

	// A real node on a fixed port: TCP and QUIC there, on both families.
	port = freePort(t)
	s := newTestNode(t, func(c *Config) {
		c.LocalOnly, c.NoNATPortMap, c.ListenAddrs, c.Port = false, true, nil, port
	})
	addrs := strs(s.Host().Network().ListenAddresses())
	for _, w := range []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port), fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", port)} {
		if !slices.Contains(addrs, w) {
			t.Fatalf("listening on %v, want %s among them", addrs, w)
		}
	}
	if hasIPv6() && !slices.ContainsFunc(addrs, func(a string) bool { return strings.HasPrefix(a, "/ip6/::/tcp/") }) {
		t.Fatalf("listening on %v, no IPv6", addrs)
	}
}

// TestRoomNamespaceIsOneWay: a room's rendezvous namespace is fixed for
// its topic, differs between rooms and shows neither topic nor code.
func TestRoomNamespaceIsOneWay(t *testing.T) {
	t1, t2 := "/orchmind/room/00112233445566778899aabbccddeeff/1", "/orchmind/room/ffeeddccbbaa99887766554433221100/1"
	n1, n2 := RoomNamespace(t1), RoomNamespace(t2)
	if n1 != RoomNamespace(t1) || n1 == n2 || !strings.HasPrefix(n1, "orchmind/v1/room/") {
		t.Fatalf("namespaces %q %q", n1, n2)
	}
	if strings.Contains(n1, "00112233") || len(n1) != len("orchmind/v1/room/")+32 {
		t.Fatalf("namespace %q shows the topic", n1)
	}
	if BaseNamespace("abc") != "orchmind/v1/base/abc" {
		t.Fatal(BaseNamespace("abc"))
	}
}

// TestResolveBootstrapDNSAddr: /dnsaddr names without a peer ID resolve
// through their TXT records; addresses with one pass as they are; an
// address naming no peer is refused with a message.
func TestResolveBootstrapDNSAddr(t *testing.T) {
	id := "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
	mock := &madns.MockResolver{TXT: map[string][]string{
		"_dnsaddr.boot.example": {"dnsaddr=/ip4/127.0.0.1/tcp/4747/p2p/" + id},
	}}
	res, err := madns.NewResolver(madns.WithDefaultResolver(mock))
	if err != nil {
		t.Fatal(err)
	}
	var warned []string
	warn := func(msg string, _ ...any) { warned = append(warned, msg) }
	got, err := resolveBootstrap(context.Background(), []ma.Multiaddr{
		ma.StringCast("/dnsaddr/boot.example"), ma.StringCast("/dnsaddr/missing.example"),
		ma.StringCast("/ip4/127.0.0.2/tcp/1/p2p/" + id),
	}, res, warn)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := peer.Decode(id)
	if len(got) != 1 || got[0].ID != want || len(got[0].Addrs) != 2 || len(warned) != 1 {
		t.Fatalf("resolved %v (warned %v)", got, warned)
	}
	if _, err := resolveBootstrap(context.Background(), []ma.Multiaddr{ma.StringCast("/ip4/1.2.3.4/tcp/1")}, res, warn); err == nil || !strings.Contains(err.Error(), "names no peer") {
		t.Fatalf("an address without a peer: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if portFree(p, true, hasIPv6()) == nil {
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

func strs(as []ma.Multiaddr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}
