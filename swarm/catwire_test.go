package swarm

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestCatalogueFraming(t *testing.T) {
	items := [][]byte{[]byte("one"), []byte("two"), {}, []byte("three")}
	var buf bytes.Buffer
	if err := writeCatalogueResponse(&buf, items); err != nil {
		t.Fatal(err)
	}
	got, err := readCatalogueResponse(bufio.NewReader(bytes.NewReader(buf.Bytes())), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(got[2]) != "three" {
		t.Fatalf("got %q (empty items are skipped)", got)
	}
	if _, err := readCatalogueResponse(bufio.NewReader(bytes.NewReader(buf.Bytes())), 2); err == nil {
		t.Fatal("more entries than asked for were accepted")
	}
	if _, err := readCatalogueResponse(bufio.NewReader(bytes.NewReader(buf.Bytes()[:buf.Len()-1])), 10); err == nil {
		t.Fatal("a response without its end frame was accepted")
	}
	var huge bytes.Buffer
	var hdr [binary.MaxVarintLen64]byte
	huge.Write(hdr[:binary.PutUvarint(hdr[:], MaxAnnouncementSize+1)])
	if _, err := readCatalogueResponse(bufio.NewReader(&huge), 10); err == nil {
		t.Fatal("an oversized frame was accepted")
	}
	var req bytes.Buffer
	if err := writeCatalogueRequest(&req, catalogueRequest{Base: "b", Limit: 7}); err != nil {
		t.Fatal(err)
	}
	r, err := readCatalogueRequest(bufio.NewReader(&req))
	if err != nil || r.Base != "b" || r.Limit != 7 {
		t.Fatalf("request round trip: %+v, %v", r, err)
	}
}

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
		if _, err := readCatalogueRequest(bufio.NewReader(st)); err != nil {
			_ = st.Reset()
			return
		}
		_ = writeCatalogueResponse(st, [][]byte{forged, good, []byte("not even json")})
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
