package store

import (
	"context"
	"errors"
	"testing"

	blocks "github.com/ipfs/go-block-format"
)

// TestBlockWriter: added blocks are not in the store until Commit, which
// returns them all (one already stored included); Close gives up what was
// not committed and releases its quota; a full store is refused at Add.
func TestBlockWriter(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{Logger: quiet(), Quota: 3 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	big := rawBlock(t, genBytes(1<<20, 1))   // to a pack
	small := rawBlock(t, genBytes(1000, 2))  // into badger
	old := rawBlock(t, genBytes(200<<10, 3)) // stored before
	if err := s.Put(ctx, old); err != nil {
		t.Fatal(err)
	}
	w := s.NewBlockWriter()
	for _, b := range []blocks.Block{big, small, old} {
		if err := w.Add(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if has, _ := s.Has(ctx, big.Cid()); has {
		t.Fatal("an added block is in the store before Commit")
	}
	if w.Pending() != int64(len(big.RawData())+len(small.RawData())) {
		t.Fatalf("pending %d", w.Pending())
	}
	got, err := w.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("Commit returned %d blocks, want 3", len(got))
	}
	checkAllStored(t, s, big, small, old)
	want := int64(len(big.RawData()) + len(small.RawData()) + len(old.RawData()))
	if s.Used() != want {
		t.Fatalf("used %d, want %d", s.Used(), want)
	}

	// Given up: not stored, quota back.
	gone := rawBlock(t, genBytes(1<<20, 4))
	if err := w.Add(ctx, gone); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if has, _ := s.Has(ctx, gone.Cid()); has {
		t.Fatal("a block given up by Close is in the store")
	}
	if s.Used() != want {
		t.Fatalf("used %d after Close, want %d", s.Used(), want)
	}

	// Over the quota at Add.
	w = s.NewBlockWriter()
	defer w.Close()
	if err := w.Add(ctx, rawBlock(t, genBytes(1<<20, 5))); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, rawBlock(t, genBytes(1<<20, 6))); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("Add over the quota: %v, want ErrStoreFull", err)
	}
}

func checkAllStored(t *testing.T, s *Store, bs ...blocks.Block) {
	t.Helper()
	for _, b := range bs {
		got, err := s.Get(context.Background(), b.Cid())
		if err != nil || string(got.RawData()) != string(b.RawData()) {
			t.Fatalf("block %s not stored intact: %v", b.Cid(), err)
		}
	}
}
