package store

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/peer"
)

func savedList(n int, tag string) []SavedAnnouncement {
	p1, _ := peer.Decode("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
	out := make([]SavedAnnouncement, n)
	for i := range out {
		out[i] = SavedAnnouncement{From: p1, Data: fmt.Appendf(nil, "%s-%d", tag, i)}
	}
	return out
}

func sameSaved(t *testing.T, got, want []SavedAnnouncement) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d saved announcements, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].From != want[i].From || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("entry %d: %s %q, want %s %q", i, got[i].From, got[i].Data, want[i].From, want[i].Data)
		}
	}
}

// TestSavedAnnouncements: a saved list comes back in order after the store
// is reopened; a save replaces it whole; empty and oversized entries are
// left out.
func TestSavedAnnouncements(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if got, err := s.Announcements(ctx); err != nil || len(got) != 0 {
		t.Fatalf("a new store has %d saved announcements, %v", len(got), err)
	}
	first := savedList(5, "a")
	if err := s.SaveAnnouncements(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	got, err := s.Announcements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameSaved(t, got, first)

	second := savedList(3, "b")
	withBad := append([]SavedAnnouncement{{From: "", Data: nil}, {Data: make([]byte, MaxSavedAnnouncementSize+1)}}, second...)
	withBad = append(withBad, SavedAnnouncement{Data: []byte("no sender")})
	if err := s.SaveAnnouncements(ctx, withBad); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Announcements(ctx)
	sameSaved(t, got, append(second, SavedAnnouncement{Data: []byte("no sender")}))
	if err := s.SaveAnnouncements(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Announcements(ctx); len(got) != 0 {
		t.Fatalf("an empty save left %d", len(got))
	}
}

// TestSavedAnnouncementsCrash: a save that crashed before moving the
// generation pointer leaves the previous list in place, and the next save
// removes what it half-wrote.
func TestSavedAnnouncementsCrash(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	old := savedList(4, "old")
	if err := s.SaveAnnouncements(ctx, old); err != nil {
		t.Fatal(err)
	}
	gen, _ := s.announcementGen()
	wb := s.db.NewWriteBatch()
	for i, a := range savedList(7, "half") {
		_ = wb.Set(announcementKey(gen+1, uint64(i)), encodeSaved(a))
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Announcements(ctx)
	sameSaved(t, got, old)
	if err := s.SaveAnnouncements(ctx, savedList(2, "new")); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Announcements(ctx)
	sameSaved(t, got, savedList(2, "new"))
	n := 0
	_ = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixAnnouncement)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if n != 2 {
		t.Fatalf("%d keys under %s after the save, want 2 (the half-written generation and the old one removed)", n, prefixAnnouncement)
	}
}
