package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	blocks "github.com/ipfs/go-block-format"
)

func TestCheckSpaceAndPutFailures(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{Quota: 4096})
	if err := s.CheckSpace(4096); err != nil {
		t.Fatalf("4 KiB into an empty 4 KiB store: %v", err)
	}
	if err := s.Put(t.Context(), rawBlock(t, bytes.Repeat([]byte{1}, 3000))); err != nil {
		t.Fatal(err)
	}
	err := s.CheckSpace(2000)
	if !errors.Is(err, ErrStoreFull) || !strings.Contains(err.Error(), "raise --quota") {
		t.Fatalf("CheckSpace over the quota: %v", err)
	}
	if n, _ := s.PutFailures(); n != 0 {
		t.Fatalf("%d put failures before any failed", n)
	}
	if err := s.Put(t.Context(), rawBlock(t, bytes.Repeat([]byte{2}, 2000))); !errors.Is(err, ErrStoreFull) {
		t.Fatalf("put over the quota: %v", err)
	}
	if n, last := s.PutFailures(); n != 1 || !errors.Is(last, ErrStoreFull) {
		t.Fatalf("PutFailures = %d, %v; want 1, store full", n, last)
	}
	// A block refused for its bytes is not a space failure.
	forged, _ := blocks.NewBlockWithCid([]byte("not these bytes"), rawBlock(t, []byte("these bytes")).Cid())
	if err := s.Put(t.Context(), forged); err == nil {
		t.Fatal("a block whose bytes do not match its CID was stored")
	}
	if n, _ := s.PutFailures(); n != 1 {
		t.Fatalf("a corrupt block counted as a write failure (%d)", n)
	}

	u := openTest(t, t.TempDir(), Options{})
	err = u.CheckSpace(1 << 60)
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("CheckSpace of an exabyte: %v", err)
	}
	if err := u.CheckSpace(1 << 20); err != nil {
		t.Fatalf("CheckSpace of 1 MiB: %v", err)
	}
}
