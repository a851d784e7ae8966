package swarm

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

func TestIdentityPersistsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	a := newTestNode(t, func(c *Config) { c.DataDir = dir })
	id := a.ID()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	b := newTestNode(t, func(c *Config) { c.DataDir = dir })
	if b.ID() != id {
		t.Fatalf("peer ID changed across restart: %s then %s", id, b.ID())
	}
	_ = b.Close()

	if err := os.WriteFile(filepath.Join(dir, IdentityFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateIdentity(dir, nil); err == nil {
		t.Fatal("a damaged key file was accepted")
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]func(*Config){
		"no blockstore":   func(c *Config) { c.Blockstore = nil },
		"no validator":    func(c *Config) { c.Validator = nil },
		"short psk":       func(c *Config) { c.PrivateNetworkKey = []byte("short") },
		"conn marks":      func(c *Config) { c.ConnMgrLow, c.ConnMgrHigh = 10, 5 },
		"no data dir":     func(c *Config) { c.DataDir = "" },
		"bootstrap no id": func(c *Config) { c.Bootstrap = c.ListenAddrs },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := Config{DataDir: t.TempDir(), Blockstore: memBlockstore(), Validator: testValidator, LocalOnly: true, Logger: testLogger()}
			cfg.ListenAddrs = nil
			mod(&cfg)
			if name == "bootstrap no id" {
				cfg.Bootstrap = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}
			}
			s, err := New(t.Context(), cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("accepted")
			}
			t.Log(err)
		})
	}
}

func TestPrivateNetworkSeparatesNodes(t *testing.T) {
	psk := make([]byte, 32)
	psk[0] = 1
	other := make([]byte, 32)
	other[0] = 2
	// Default listen addresses include QUIC; with a PSK the node must drop it.
	a := newTestNode(t, func(c *Config) { c.PrivateNetworkKey = psk; c.ListenAddrs = nil })
	for _, addr := range a.Host().Addrs() {
		if _, err := addr.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			t.Fatalf("private-network node listens on QUIC: %s", addr)
		}
	}
	b := newTestNode(t, func(c *Config) { c.PrivateNetworkKey = psk })
	c := newTestNode(t, func(c *Config) { c.PrivateNetworkKey = other })
	d := newTestNode(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := b.Connect(ctx, loopback(a)); err != nil {
		t.Fatalf("same key: %v", err)
	}
	if err := c.Connect(ctx, loopback(a)); err == nil {
		t.Fatal("a node with another key connected")
	}
	if err := d.Connect(ctx, loopback(a)); err == nil {
		t.Fatal("a node without the key connected")
	}
}

// loopback keeps the 127.0.0.1 addresses of a node listening on 0.0.0.0.
func loopback(s *Swarm) peer.AddrInfo {
	ai := addrInfo(s)
	var keep []ma.Multiaddr
	for _, a := range ai.Addrs {
		if v, err := a.ValueForProtocol(ma.P_IP4); err == nil && v == "127.0.0.1" {
			keep = append(keep, a)
		}
	}
	ai.Addrs = keep
	return ai
}

func TestQUICAndBootstrap(t *testing.T) {
	a := newTestNode(t, func(c *Config) { c.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")} })
	b := newTestNode(t, func(c *Config) {
		c.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")}
		c.Bootstrap = a.Addrs()
	})
	eventually(t, 5*time.Second, "bootstrap connection over QUIC", func() bool { return b.isConnected(a.ID()) })
	conns := b.Host().Network().ConnsToPeer(a.ID())
	if len(conns) == 0 || conns[0].ConnState().Transport != "quic-v1" {
		t.Fatalf("want a QUIC connection, got %v", conns)
	}
}

func TestDHTProvideAndFindAcrossALine(t *testing.T) {
	nodes := line(t, 4, nil)
	root := randomCID(t)
	lonely := newTestNode(t, nil)
	if err := lonely.Provide(t.Context(), root); err == nil {
		t.Fatal("provide with an empty routing table succeeded")
	}
	for _, n := range nodes {
		eventually(t, 5*time.Second, "routing tables", func() bool { return n.dht.RoutingTable().Size() > 0 })
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := nodes[0].Provide(ctx, root); err != nil {
		t.Fatal(err)
	}
	t.Logf("provide took %v", time.Since(start))
	start = time.Now()
	provs, err := nodes[3].FindProviders(ctx, root, 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("find providers took %v", time.Since(start))
	if !slices.ContainsFunc(provs, func(ai peer.AddrInfo) bool { return ai.ID == nodes[0].ID() }) {
		t.Fatalf("node 3 did not find node 0 as a provider: %v", provs)
	}
	none, err := nodes[3].FindProviders(ctx, randomCID(t), 5)
	if err != nil || len(none) != 0 {
		t.Fatalf("providers of an unknown CID: %v, %v", none, err)
	}
}

func TestReprovideLoopProvidesPinnedRoots(t *testing.T) {
	pinned := []cid.Cid{randomCID(t), randomCID(t)}
	b := newTestNode(t, nil)
	a := newTestNode(t, func(c *Config) {
		c.PinnedRoots = func(context.Context) ([]cid.Cid, error) { return pinned, nil }
		c.Bootstrap = b.Addrs()
	})
	for _, c := range pinned {
		eventually(t, 10*time.Second, "reprovided root found", func() bool {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			provs, _ := b.FindProviders(ctx, c, 1)
			return len(provs) == 1 && provs[0].ID == a.ID()
		})
	}
}

// receiver collects what a node's OnAnnouncement callback sees.
type receiver struct {
	mu  sync.Mutex
	got []Received
}

func (r *receiver) on(x Received) { r.mu.Lock(); r.got = append(r.got, x); r.mu.Unlock() }
func (r *receiver) roots() []cid.Cid {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []cid.Cid
	for _, x := range r.got {
		out = append(out, x.Root)
	}
	return out
}

func TestGossipReachesAllAndForgeriesArePenalised(t *testing.T) {
	const base = "llama-test-fp"
	recv := make([]*receiver, 4)
	for i := range recv {
		recv[i] = &receiver{}
	}
	i := 0
	nodes := line(t, 4, func(c *Config) { c.OnAnnouncement = recv[i].on; i++ })
	subs := make([]<-chan Received, len(nodes))
	for i, n := range nodes {
		var err error
		if subs[i], err = n.Subscribe(t.Context(), base); err != nil {
			t.Fatal(err)
		}
	}
	// The DHT dials more than the line's neighbours; wait until every node
	// has mesh peers on both topics (gossipsub grafts at its heartbeats).
	for _, n := range nodes {
		eventually(t, 10*time.Second, "topic meshes", func() bool {
			return len(n.MeshPeers(BaseTopic(base))) > 0 && len(n.MeshPeers(CatalogueTopic)) > 0
		})
	}

	root := randomCID(t)
	ann := signTestAnn(t, hostKey(t, nodes[0]), root, base, time.Now())
	start := time.Now()
	if err := nodes[0].Announce(t.Context(), ann); err != nil {
		t.Fatal(err)
	}
	for i, sub := range subs {
		select {
		case r := <-sub:
			if r.Root != root || r.Author != nodes[0].ID() || string(r.Data) != string(ann) {
				t.Fatalf("node %d got %+v", i, r)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("node %d did not receive the announcement", i)
		}
	}
	t.Logf("announcement reached all 4 nodes in %v", time.Since(start))
	for i := range nodes {
		eventually(t, 5*time.Second, "catalogue callback", func() bool { return slices.Contains(recv[i].roots(), root) })
	}

	// Announcing someone else's announcement, or a forged one, is refused locally.
	if err := nodes[1].Announce(t.Context(), ann); err == nil {
		t.Fatal("node 1 re-published node 0's announcement as its own")
	}
	forged := signTestAnn(t, hostKey(t, nodes[0]), root, base, time.Now())
	forged[len(forged)-5] ^= 1 // inside the base64 signature
	if err := nodes[0].Announce(t.Context(), forged); err == nil {
		t.Fatal("a forged announcement was published")
	}

	// A raw gossipsub peer without validators sends forgeries to node 1.
	spamHost, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer spamHost.Close()
	spamPS, err := pubsub.NewGossipSub(t.Context(), spamHost)
	if err != nil {
		t.Fatal(err)
	}
	spamTopic, err := spamPS.Join(BaseTopic(base))
	if err != nil {
		t.Fatal(err)
	}
	if err := spamHost.Connect(t.Context(), addrInfo(nodes[1])); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "spammer in node 1's topic", func() bool {
		return slices.Contains(spamTopic.ListPeers(), nodes[1].ID())
	})
	spamKey := spamHost.Peerstore().PrivKey(spamHost.ID())
	for k := range 6 {
		bad := signTestAnn(t, spamKey, randomCID(t), base, time.Now())
		bad[len(bad)-5] ^= 1
		if k%2 == 1 { // or a valid signature on the wrong base topic
			bad = signTestAnn(t, spamKey, randomCID(t), "other-base", time.Now())
		}
		if err := spamTopic.Publish(t.Context(), bad); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "spammer graylisted by node 1", func() bool {
		return nodes[1].PeerScores()[spamHost.ID()] < GraylistThreshold
	})
	t.Logf("spammer's score at node 1: %.0f (graylist below %.0f)", nodes[1].PeerScores()[spamHost.ID()], GraylistThreshold)

	// Graylisted: even a valid announcement from the spammer is now ignored.
	valid := signTestAnn(t, spamKey, randomCID(t), base, time.Now())
	if err := spamTopic.Publish(t.Context(), valid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	for i, sub := range subs {
		select {
		case r := <-sub:
			t.Fatalf("node %d received %s from the graylisted spammer", i, r.Root)
		default:
		}
	}
	if s := nodes[1].PeerScores()[nodes[0].ID()]; s < 0 {
		t.Errorf("honest node 0 has a negative score %.1f at node 1", s)
	}
}

func TestGossipRateLimitAndDuplicates(t *testing.T) {
	const base = "fp-rate"
	nodes := line(t, 2, func(c *Config) { c.AnnounceRate = 3 })
	sub, err := nodes[1].Subscribe(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	top, err := nodes[0].gossip.topic(BaseTopic(base), base)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "topic peers", func() bool { return len(top.ListPeers()) > 0 })
	key := hostKey(t, nodes[0])
	first := signTestAnn(t, key, randomCID(t), base, time.Now())
	for range 2 { // the second copy is a duplicate: dropped
		if err := nodes[0].Announce(t.Context(), first); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		if err := nodes[0].Announce(t.Context(), signTestAnn(t, key, randomCID(t), base, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	timeout := time.After(2 * time.Second)
loop:
	for {
		select {
		case <-sub:
			n++
		case <-timeout:
			break loop
		}
	}
	// Burst of 3 per author: the original plus two more pass; the duplicate
	// and the rest are dropped.
	if n != 3 {
		t.Fatalf("node 1 received %d announcements, want 3 (rate limit 3/min, one duplicate)", n)
	}
}

// TestAnnounceAgain: Announce publishes a second time ReannounceDelay
// later, so a peer whose subscription the first message missed still gets
// it (here: a subscription to the base topic made after the announcement,
// which only the second message can reach).
func TestAnnounceAgain(t *testing.T) {
	const base = "fp-again"
	nodes := line(t, 2, nil)
	for _, n := range nodes {
		eventually(t, 5*time.Second, "catalogue topic peers", func() bool {
			return len(n.gossip.topics[CatalogueTopic].ListPeers()) > 0
		})
	}
	root := randomCID(t)
	if err := nodes[0].Announce(t.Context(), signTestAnn(t, hostKey(t, nodes[0]), root, base, time.Now())); err != nil {
		t.Fatal(err)
	}
	sub, err := nodes[1].Subscribe(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-sub:
		if r.Root != root {
			t.Fatalf("got %s, want %s", r.Root, root)
		}
	case <-time.After(ReannounceDelay + 5*time.Second):
		t.Fatal("the late subscriber never got the announcement")
	}
}

// TestLocalOnlyServices checks the swarm's own report of what it runs: a
// local-only node runs none of the services that reach beyond the peers it
// is given (and listens on loopback by default), while a node without the
// switch runs AutoNAT, relays and hole punching (port mapping and mDNS stay
// off there too: turning them on in a test would send to the LAN).
func TestLocalOnlyServices(t *testing.T) {
	local := newTestNode(t, func(c *Config) { c.ListenAddrs = nil; c.MDNS = true; c.NoNATPortMap = false })
	if v := local.Services(); v.Any() {
		t.Fatalf("a local-only node runs %s", v)
	}
	for _, a := range local.Host().Addrs() {
		if ip, err := manet.ToIP(a); err != nil || !ip.IsLoopback() {
			t.Fatalf("a local-only node listens beyond loopback by default: %s", a)
		}
	}
	open := newTestNode(t, func(c *Config) { c.LocalOnly = false; c.NoNATPortMap = true })
	want := Services{AutoNATProbes: true, AutoNATService: true, Relay: true, AutoRelay: true, HolePunching: true}
	if v := open.Services(); v != want {
		t.Fatalf("a node without the switch runs %s, want %s", v, want)
	}
	// The two talk to each other all the same.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := local.Connect(ctx, addrInfo(open)); err != nil {
		t.Fatal(err)
	}
}
