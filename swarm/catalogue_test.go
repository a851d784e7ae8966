package swarm

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	wire "orchmind/protocol"
)

// A peer that serves forged entries in its catalogue gets none of them in.
func TestCatalogueDropsForgedEntries(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	key := h.Peerstore().PrivKey(h.ID())
	good := signTestAnn(t, key, randomCID(t), "fp", time.Now())
	forged := signTestAnn(t, key, randomCID(t), "fp", time.Now())
	forged[len(forged)-5] ^= 1
	h.SetStreamHandler(CatalogueProtocol, func(st network.Stream) {
		defer st.Close()
		if _, err := wire.ReadCatalogueRequest(bufio.NewReader(st)); err != nil {
			_ = st.Reset()
			return
		}
		_ = wire.WriteCatalogueResponse(st, [][]byte{forged, good, []byte("not even json")})
	})
	rec := &receiver{}
	n := newTestNode(t, func(c *Config) { c.OnAnnouncement = rec.on })
	if err := n.Connect(t.Context(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "catalogue exchange", func() bool { return len(rec.roots()) > 0 })
	time.Sleep(100 * time.Millisecond)
	if got := n.Catalogue("", 0); len(got) != 1 || string(got[0].Data) != string(good) {
		t.Fatalf("catalogue holds %d entries, want only the one valid", len(got))
	}
}

// TestKeptAndRememberFrom: Kept lists the public entries in arrival order
// (room ones left out) with a change number; RememberFrom verifies again
// and keeps an entry as delivered by the peer named, own when it is this
// node.
func TestKeptAndRememberFrom(t *testing.T) {
	n := newTestNode(t, nil)
	ctx := t.Context()
	other, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherID, _ := peer.IDFromPrivateKey(other)
	now := time.Now()
	first := signTestAnn(t, other, randomCID(t), "fp", now.Add(time.Minute)) // newer, but arrives first
	second := signTestAnn(t, hostKey(t, n), randomCID(t), "fp", now)
	room := signTestAnn(t, other, randomCID(t), "fp", now)
	_, before := n.Kept()
	if err := n.RememberFrom(ctx, otherID, first); err != nil {
		t.Fatal(err)
	}
	if err := n.RememberFrom(ctx, "", second); err != nil {
		t.Fatal(err)
	}
	if err := n.RememberRoom(ctx, otherID, room); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(first)
	bad[len(bad)-5] ^= 1
	if err := n.RememberFrom(ctx, otherID, bad); err == nil {
		t.Fatal("an altered announcement was kept")
	}
	kept, after := n.Kept()
	if after == before || len(kept) != 2 || !bytes.Equal(kept[0].Data, first) || kept[0].From != otherID ||
		!bytes.Equal(kept[1].Data, second) || kept[1].From != n.ID() {
		t.Fatalf("kept %d entries (change %d → %d); want the two public ones in arrival order", len(kept), before, after)
	}
	if _, again := n.Kept(); again != after {
		t.Fatal("the change number moved without a change")
	}
}
