package swarm

import (
	"bufio"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
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
