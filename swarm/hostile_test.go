package swarm

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Hostile peers against the catalogue and the gossip limits (issue 12).
// These tests use only what the swarm had before the fixes (the catalogue's
// add, Catalogue, Config.CatalogueSize/PinnedRoots/AnnounceRate), so that
// they run — and fail — on the old code too.

func freshKey(t testing.TB) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

func freshID(t testing.TB) peer.ID {
	_, id := freshKey(t)
	return id
}

func entry(t testing.TB, author, from peer.ID, root cid.Cid, created time.Time) Received {
	return Received{Announcement: Announcement{Root: root, Base: "fp", Author: author, Created: created},
		From: from, Data: []byte(fmt.Sprint(author, root, created.UnixNano()))}
}

func kept(s *Swarm, roots ...cid.Cid) int {
	n := 0
	for _, r := range s.Catalogue("", 0) {
		for _, c := range roots {
			if r.Root.Equals(c) {
				n++
			}
		}
	}
	return n
}

// TestCatalogueFutureDatesDoNotCensor: fresh keys announcing with dates
// far in the future used to push every honest announcement out of a full
// catalogue (it evicted the oldest Created); they are now refused.
func TestCatalogueFutureDatesDoNotCensor(t *testing.T) {
	s := newTestNode(t, func(c *Config) { c.CatalogueSize = 64 })
	honest := freshID(t)
	root := randomCID(t)
	if !s.catalog.add(entry(t, honest, honest, root, time.Now().Add(-time.Hour))) {
		t.Fatal("the honest announcement was not kept")
	}
	attacker := freshID(t)
	accepted := 0
	for range 200 {
		if s.catalog.add(entry(t, freshID(t), attacker, randomCID(t), time.Now().Add(365*24*time.Hour))) {
			accepted++
		}
	}
	if kept(s, root) != 1 {
		t.Fatal("200 future-dated announcements by fresh keys evicted the honest one")
	}
	if accepted != 0 {
		t.Errorf("%d announcements dated a year ahead were kept", accepted)
	}
	// Within the allowed clock skew is fine.
	if !s.catalog.add(entry(t, freshID(t), attacker, randomCID(t), time.Now().Add(2*time.Minute))) {
		t.Error("an announcement two minutes ahead (clock skew) was refused")
	}
}

// TestCatalogueFloodKeepsHonestEntries: one peer delivers hundreds of
// present-dated announcements by fresh keys into a catalogue of 64. The
// honest entries delivered by other peers, this node's own (however old)
// and those of pinned roots all stay; the flooder only evicts its own.
func TestCatalogueFloodKeepsHonestEntries(t *testing.T) {
	pinned := randomCID(t)
	s := newTestNode(t, func(c *Config) {
		c.CatalogueSize = 64
		c.PinnedRoots = func(context.Context) ([]cid.Cid, error) { return []cid.Cid{pinned}, nil }
	})
	old := time.Now().Add(-24 * time.Hour)
	own := randomCID(t)
	if !s.catalog.add(entry(t, s.ID(), s.ID(), own, old.Add(-time.Hour))) {
		t.Fatal("own announcement not kept")
	}
	var honest []cid.Cid
	for range 4 {
		p := freshID(t)
		for range 5 {
			c := randomCID(t)
			honest = append(honest, c)
			if !s.catalog.add(entry(t, freshID(t), p, c, old)) {
				t.Fatal("honest announcement not kept")
			}
		}
	}
	attacker := freshID(t)
	if !s.catalog.add(entry(t, freshID(t), attacker, pinned, old)) {
		t.Fatal("announcement of a pinned root not kept")
	}
	for i := range 500 {
		s.catalog.add(entry(t, freshID(t), attacker, randomCID(t), time.Now().Add(time.Duration(i)*time.Millisecond)))
	}
	if n := kept(s, honest...); n != len(honest) {
		t.Errorf("%d of %d honest announcements left after a flood from one peer", n, len(honest))
	}
	if kept(s, own) != 1 {
		t.Error("the node's own announcement was evicted")
	}
	if kept(s, pinned) != 1 {
		t.Error("the announcement of a pinned root was evicted")
	}
	if n := len(s.Catalogue("", 0)); n > 64+1 {
		t.Errorf("catalogue holds %d entries, bound 64 (+1 own)", n)
	}
	// One author with many roots is held to its own quota.
	prolific := freshID(t)
	for range 100 {
		s.catalog.add(entry(t, prolific, freshID(t), randomCID(t), time.Now()))
	}
	n := 0
	for _, r := range s.Catalogue("", 0) {
		if r.Author == prolific {
			n++
		}
	}
	if n > 4 {
		t.Errorf("one author keeps %d of 64 entries, quota 4", n)
	}
	if k := kept(s, honest...); k != len(honest) {
		t.Errorf("%d of %d honest announcements left after one author's flood", k, len(honest))
	}
}

// TestGossipFreshKeysFlood: a peer running plain gossipsub (no
// validation of its own) publishes announcements signed by a fresh key
// each, so the per-author limit never bites, and one dated a year ahead.
// The per-forwarder limit stops the flood, the flooder is scored below
// zero, and the future-dated one is not kept.
func TestGossipFreshKeysFlood(t *testing.T) {
	const base = "fp-flood"
	victim := newTestNode(t, func(c *Config) { c.AnnounceRate = 3 }) // 12 per forwarder per minute
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ps, err := pubsub.NewGossipSub(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	top, err := ps.Join(CatalogueTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(t.Context(), addrInfo(victim)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "topic peers", func() bool { return len(top.ListPeers()) > 0 })
	future := randomCID(t)
	k, id := freshKey(t)
	if err := top.Publish(t.Context(), signTestAnn(t, k, future, base, time.Now().Add(365*24*time.Hour)), pubsub.WithSecretKeyAndPeerId(k, id)); err != nil {
		t.Fatal(err)
	}
	const flood = 60
	for range flood {
		k, id := freshKey(t)
		// Published as that key's own message: gossipsub's author check
		// passes, as it would for an attacker running one host per key.
		if err := top.Publish(t.Context(), signTestAnn(t, k, randomCID(t), base, time.Now()), pubsub.WithSecretKeyAndPeerId(k, id)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "some announcements to arrive", func() bool { return len(victim.Catalogue("", 0)) > 0 })
	time.Sleep(time.Second)
	if kept(victim, future) != 0 {
		t.Error("an announcement dated a year ahead was kept")
	}
	if got := len(victim.Catalogue("", 0)); got > 12+2 {
		t.Errorf("the victim kept %d of %d announcements from one peer with fresh keys; the per-peer limit is 12 a minute", got, flood)
	}
	// The future-dated one costs InvalidMessagePenalty; the 48 past the
	// rate limit cost FloodPenalty each on top (less the little credit of
	// the 12 first deliveries).
	deadline := time.Now().Add(10 * time.Second)
	for victim.PeerScores()[h.ID()] >= InvalidMessagePenalty-20 {
		if time.Now().After(deadline) {
			t.Fatalf("the flooder's score is %.1f, want below %.1f (one invalid message and the flood past the rate limit); %d kept",
				victim.PeerScores()[h.ID()], InvalidMessagePenalty-20, len(victim.Catalogue("", 0)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
