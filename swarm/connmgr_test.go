package swarm

import (
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// connMgrInfo is the water marks and grace period of s's connection manager.
func connMgrInfo(t *testing.T, s *Swarm) connmgr.CMInfo {
	t.Helper()
	cm, ok := s.Host().ConnManager().(*connmgr.BasicConnMgr)
	if !ok {
		t.Fatalf("the host's connection manager is a %T, want libp2p's basic one", s.Host().ConnManager())
	}
	return cm.GetInfo()
}

func TestConnManagerDefaults(t *testing.T) {
	info := connMgrInfo(t, newTestNode(t, nil))
	if info.LowWater != DefaultConnMgrLow || info.HighWater != DefaultConnMgrHigh || info.GracePeriod != ConnMgrGracePeriod {
		t.Fatalf("connection manager %d/%d, grace %v; want the defaults %d/%d, grace %v",
			info.LowWater, info.HighWater, info.GracePeriod, DefaultConnMgrLow, DefaultConnMgrHigh, ConnMgrGracePeriod)
	}
	// The connection manager trims before the resource manager refuses
	// connections even on the smallest machine (the resource manager's
	// base limits, which AutoScale uses below 1 GiB of memory).
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	base := limits.Scale(0, 0).ToPartialLimitConfig().System
	if conns := int(base.Conns); DefaultConnMgrHigh > conns {
		t.Fatalf("DefaultConnMgrHigh %d is above the resource manager's smallest system connection limit %d", DefaultConnMgrHigh, conns)
	}
	if DefaultConnMgrLow >= DefaultConnMgrHigh {
		t.Fatalf("DefaultConnMgrLow %d is not below DefaultConnMgrHigh %d", DefaultConnMgrLow, DefaultConnMgrHigh)
	}
}

func TestConnManagerConfigured(t *testing.T) {
	info := connMgrInfo(t, newTestNode(t, func(c *Config) { c.ConnMgrLow, c.ConnMgrHigh = 8, 24 }))
	if info.LowWater != 8 || info.HighWater != 24 {
		t.Fatalf("connection manager %d/%d, want the configured 8/24", info.LowWater, info.HighWater)
	}
	_, err := New(t.Context(), Config{
		DataDir:     t.TempDir(),
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		LocalOnly:   true,
		Blockstore:  memBlockstore(),
		Validator:   testValidator,
		ConnMgrLow:  50,
		ConnMgrHigh: 40,
		Logger:      testLogger(),
	})
	if err == nil || !strings.Contains(err.Error(), "high water mark 40 is below the low one 50") {
		t.Fatalf("New with high 40 < low 50: err %v, want a clear error", err)
	}
}

// TestConnManagerTrimsOthersBeforeOrchmindPeers: over the low water mark,
// the connection manager closes connections to peers that do not run
// orchmind (public-DHT-only peers, say) and keeps the orchmind peers, which
// carry the orchmind tag. (Protected peers, gossipsub's mesh and the DHT's
// farthest buckets, are not counted: the trim keeps them plus ConnMgrLow
// others.)
func TestConnManagerTrimsOthersBeforeOrchmindPeers(t *testing.T) {
	a := newTestNode(t, func(c *Config) { c.ConnMgrLow, c.ConnMgrHigh, c.ConnMgrGrace = 2, 3, time.Millisecond })
	b, c := newTestNode(t, nil), newTestNode(t, nil)
	infos := []peer.AddrInfo{addrInfo(b), addrInfo(c)}
	var others []peer.ID
	for range 3 {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		infos = append(infos, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
		others = append(others, h.ID())
	}
	for _, ai := range infos {
		if err := a.Connect(t.Context(), ai); err != nil {
			t.Fatalf("connecting to %s: %v", ai.ID, err)
		}
	}
	cm := a.Host().ConnManager()
	eventually(t, 10*time.Second, "a to tag b and c as orchmind peers", func() bool {
		tb, tc := cm.GetTagInfo(b.ID()), cm.GetTagInfo(c.ID())
		return tb != nil && tc != nil && tb.Tags[orchmindPeerTag] == orchmindPeerWeight && tc.Tags[orchmindPeerTag] == orchmindPeerWeight
	})
	for _, o := range others {
		if ti := cm.GetTagInfo(o); ti != nil && ti.Tags[orchmindPeerTag] != 0 {
			t.Fatalf("a tags a plain libp2p host as an orchmind peer: %+v", ti)
		}
	}
	time.Sleep(10 * time.Millisecond) // past the grace period
	cm.TrimOpenConns(t.Context())
	connectedOthers := func() int {
		n := 0
		for _, o := range others {
			if a.Host().Network().Connectedness(o) == network.Connected {
				n++
			}
		}
		return n
	}
	eventually(t, 10*time.Second, "the trim to close a plain host's connection", func() bool { return connectedOthers() < len(others) })
	if !a.Connected(b.ID()) || !a.Connected(c.ID()) {
		t.Fatalf("the trim closed an orchmind peer's connection (b %v, c %v) while %d plain hosts stayed", a.Connected(b.ID()), a.Connected(c.ID()), connectedOthers())
	}
}
