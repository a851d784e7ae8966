package swarm

import (
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// TestCatalogueDigest: a catalogue exchange between peers that hold the
// same announcements carries none of them (the asker's digest matches);
// one that holds fewer gets them all; what it already held is not checked
// again but still returned.
func TestCatalogueDigest(t *testing.T) {
	nodes := line(t, 2, nil)
	a, b := nodes[0], nodes[1]
	key := hostKey(t, a)
	now := time.Now()
	var roots []cid.Cid
	for i := range 3 {
		roots = append(roots, randomCID(t))
		if err := a.Remember(t.Context(), signTestAnn(t, key, roots[i], "base-a", now.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "b's catalogue", func() bool {
		_, _ = b.syncCatalogue(t.Context(), a.ID())
		return len(b.Catalogue("", 0)) == 3
	})
	if d1, d2 := a.catalog.digestOf(""), b.catalog.digestOf(""); d1 != d2 {
		t.Fatalf("same announcements, different digests %s and %s", d1, d2)
	}
	got, err := b.requestCatalogue(t.Context(), a.ID(), "", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("a peer with the same catalogue sent %d entries, want none", len(got))
	}
	// The plain request still lists everything, from the held copies.
	got, err = b.RequestCatalogue(t.Context(), a.ID(), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].From != a.ID() {
		t.Fatalf("plain request: %d entries (%+v), want 3 from a", len(got), got)
	}
	// One more on a: b's digest no longer matches, it gets the list.
	extra := randomCID(t)
	if err := a.Remember(t.Context(), signTestAnn(t, key, extra, "base-b", now.Add(5*time.Second))); err != nil {
		t.Fatal(err)
	}
	got, err = b.requestCatalogue(t.Context(), a.ID(), "", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("after a new announcement: %d entries, want 4", len(got))
	}
	// Per base: b holds all of base-a.
	got, err = b.requestCatalogue(t.Context(), a.ID(), "base-a", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("base-a, held in full: %d entries, want none", len(got))
	}
}
