package store

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openTest(t *testing.T, dir string, o Options) *Store {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet()
	}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func rawBlock(t testing.TB, data []byte) blocks.Block {
	t.Helper()
	c, err := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_256}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBlockstore(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	b := rawBlock(t, []byte("hello block"))
	if has, err := s.Has(ctx, b.Cid()); err != nil || has {
		t.Fatalf("Has before Put = %v, %v", has, err)
	}
	if _, err := s.Get(ctx, b.Cid()); !ipld.IsNotFound(err) {
		t.Fatalf("Get of a missing block = %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, b); err != nil { // idempotent
		t.Fatal(err)
	}
	if s.Used() != int64(len(b.RawData())) {
		t.Fatalf("used %d, want %d", s.Used(), len(b.RawData()))
	}
	got, err := s.Get(ctx, b.Cid())
	if err != nil || !bytes.Equal(got.RawData(), b.RawData()) || !got.Cid().Equals(b.Cid()) {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if n, err := s.GetSize(ctx, b.Cid()); err != nil || n != len(b.RawData()) {
		t.Fatalf("GetSize = %d, %v", n, err)
	}

	// A CIDv0 dag-pb block is found under its v0 and v1 forms.
	pn := merkledag.NodeWithData(ft.FilePBData([]byte("x"), 1))
	if pn.Cid().Version() != 0 {
		t.Fatal("expected a CIDv0 node")
	}
	if err := s.Put(ctx, pn); err != nil {
		t.Fatal(err)
	}
	v1 := cid.NewCidV1(cid.DagProtobuf, pn.Cid().Hash())
	for _, c := range []cid.Cid{pn.Cid(), v1} {
		got, err := s.Get(ctx, c)
		if err != nil || !bytes.Equal(got.RawData(), pn.RawData()) {
			t.Fatalf("Get(%s) = %v", c, err)
		}
	}

	// Bytes that do not match the CID are refused.
	forged, _ := blocks.NewBlockWithCid([]byte("not hello"), b.Cid())
	if err := s.Put(ctx, forged); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("forged block: %v", err)
	}
	// Other hash functions are refused.
	c, _ := cid.V1Builder{Codec: cid.Raw, MhType: mh.SHA2_512}.Sum([]byte("x"))
	other, _ := blocks.NewBlockWithCid([]byte("x"), c)
	if err := s.Put(ctx, other); err == nil || !strings.Contains(err.Error(), "sha2-256") {
		t.Fatalf("sha2-512 block: %v", err)
	}
	// Oversize blocks are refused.
	if err := s.Put(ctx, rawBlock(t, make([]byte, MaxBlockSize+1))); err == nil {
		t.Fatal("oversize block accepted")
	}

	// AllKeysChan lists both blocks.
	ch, err := s.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keys []cid.Cid
	for c := range ch {
		keys = append(keys, c)
	}
	if len(keys) != 2 {
		t.Fatalf("AllKeysChan gave %v", keys)
	}

	// PutMany with a duplicate and new blocks.
	more := []blocks.Block{b, rawBlock(t, []byte("one")), rawBlock(t, []byte("two")), rawBlock(t, []byte("one"))}
	if err := s.PutMany(ctx, more); err != nil {
		t.Fatal(err)
	}
	wantUsed := int64(len("hello block") + len(pn.RawData()) + 3 + 3)
	if s.Used() != wantUsed {
		t.Fatalf("used %d, want %d", s.Used(), wantUsed)
	}
	if err := s.DeleteBlock(ctx, b.Cid()); err != nil {
		t.Fatal(err)
	}
	if has, _ := s.Has(ctx, b.Cid()); has {
		t.Fatal("block still there after DeleteBlock")
	}
	if s.Used() != wantUsed-int64(len("hello block")) {
		t.Fatalf("used %d after delete", s.Used())
	}
}

// TestCorruptBlockNotServed overwrites a stored block's bytes behind the
// store's back (as disk corruption would) and checks it is not served.
func TestCorruptBlockNotServed(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	s := openTest(t, t.TempDir(), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	b := rawBlock(t, bytes.Repeat([]byte("weights"), 1000))
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(b.RawData())
	bad[100] ^= 0x40
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(blockKey(b.Cid()), bad) }); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(ctx, b.Cid())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "fetch the adapter again") {
		t.Fatalf("Get of a corrupted block = %v, want ErrCorrupt", err)
	}
	if has, _ := s.Has(ctx, b.Cid()); has {
		t.Fatal("corrupted block still stored")
	}
	if !strings.Contains(logs.String(), "corrupted block removed") || !strings.Contains(logs.String(), b.Cid().String()) {
		t.Fatalf("corruption not logged: %s", logs.String())
	}
	if s.Used() != 0 {
		t.Fatalf("used %d after removal", s.Used())
	}
	// It can be stored again from a good copy.
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, b.Cid()); err != nil {
		t.Fatal(err)
	}
}

func TestQuotaAndGC(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{Quota: 10 << 10})
	var stray []blocks.Block
	for i := range 4 {
		stray = append(stray, rawBlock(t, bytes.Repeat([]byte{byte(i)}, 2<<10)))
	}
	if err := s.PutMany(ctx, stray); err != nil {
		t.Fatal(err)
	}
	// Import a small folder: pinned.
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), []byte("adapter a"))
	root, err := s.ImportFolder(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	// 8 KiB + a bit used of 10 KiB: a 3 KiB block does not fit.
	err = s.Put(ctx, rawBlock(t, bytes.Repeat([]byte{9}, 3<<10)))
	if !errors.Is(err, ErrStoreFull) {
		t.Fatalf("Put over quota = %v, want ErrStoreFull", err)
	}
	for _, want := range []string{"store full:", "KiB of 10 KiB used", "unpin adapters or raise --quota"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("quota error %q lacks %q", err, want)
		}
	}
	// GC removes the unpinned blocks, not the import.
	res, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 4 || res.Freed != 8<<10 {
		t.Fatalf("GC = %+v, want 4 blocks, 8 KiB", res)
	}
	for _, b := range stray {
		if has, _ := s.Has(ctx, b.Cid()); has {
			t.Fatal("unpinned block survived GC")
		}
	}
	if err := s.Put(ctx, rawBlock(t, bytes.Repeat([]byte{9}, 3<<10))); err != nil {
		t.Fatalf("Put after GC: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := s.ExportFolder(ctx, root, out); err != nil {
		t.Fatalf("pinned import lost by GC: %v", err)
	}
	// Unpin: the next GC takes everything.
	if err := s.Unpin(ctx, root); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(ctx, root); !errors.Is(err, ErrNotPinned) {
		t.Fatalf("second Unpin = %v", err)
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Used() != 0 {
		t.Fatalf("used %d after unpin and GC", s.Used())
	}
	// Usage is recomputed on reopen.
	if err := s.Put(ctx, rawBlock(t, []byte("persisted"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir, Options{Quota: 10 << 10})
	if s2.Used() != int64(len("persisted")) {
		t.Fatalf("used after reopen %d", s2.Used())
	}
}

func TestPinNeedsWholeDAG(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "big.bin"), genBytes(3*ChunkSize+5, 7))
	root, err := s.ImportFolder(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.IsPinned(ctx, root); !ok {
		t.Fatal("import not pinned")
	}
	// Drop one leaf: pinning again (or GC) must notice.
	var leaf cid.Cid
	if err := s.Walk(ctx, root, func(c cid.Cid, _ int) error {
		if c.Type() == cid.Raw {
			leaf = c
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBlock(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	if err := s.Unpin(ctx, root); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, root); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Pin of an incomplete DAG = %v", err)
	}
	// A GC with a damaged pinned DAG removes nothing.
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(pinKey(root), []byte("{}")) }); err != nil {
		t.Fatal(err)
	}
	stray := rawBlock(t, []byte("stray"))
	if err := s.Put(ctx, stray); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx); err == nil || !strings.Contains(err.Error(), "nothing removed") {
		t.Fatalf("GC with a damaged pin = %v", err)
	}
	if has, _ := s.Has(ctx, stray.Cid()); !has {
		t.Fatal("GC removed blocks despite stopping")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	_, err := Open(dir, Options{Logger: quiet()})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "another orchmind node") {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s2, err := Open(dir, Options{Logger: quiet()})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = s2.Close()

	// A damaged folder: MANIFEST overwritten with garbage.
	if err := os.WriteFile(filepath.Join(dir, "MANIFEST"), bytes.Repeat([]byte{0xde, 0xad}, 64), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), "move it aside") {
		t.Fatalf("Open of a damaged folder = %v", err)
	}
	if _, err := Open(dir, Options{Quota: -1}); err == nil {
		t.Fatal("negative quota accepted")
	}
}

// TestConcurrentImportAndGC runs imports and garbage collections at the same
// time: every import must stay complete (PinLock holds GC off until the pin).
func TestConcurrentImportAndGC(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	const n = 4
	srcs := make([]string, n)
	for i := range srcs {
		srcs[i] = t.TempDir()
		writeFile(t, filepath.Join(srcs[i], "w.bin"), genBytes(ChunkSize+1000*i+1, uint64(10+i)))
	}
	var wg sync.WaitGroup
	roots := make([]cid.Cid, n)
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			r, err := s.ImportFolder(ctx, srcs[i])
			roots[i] = r
			errs <- err
		})
		wg.Go(func() {
			_ = s.Put(ctx, rawBlock(t, genBytes(1000, uint64(100+i)))) // garbage
			_, err := s.GC(ctx)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	for i, r := range roots {
		out := filepath.Join(t.TempDir(), "o")
		if err := s.ExportFolder(ctx, r, out); err != nil {
			t.Fatalf("import %d damaged by a concurrent GC: %v", i, err)
		}
	}
}

// TestOpenWithEmptyMemtable: a process killed while badger starts a new
// memtable can leave an empty *.mem file; the store still opens, with its
// blocks.
func TestOpenWithEmptyMemtable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	b := rawBlock(t, []byte("kept across the crash"))
	if err := s.Put(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00009.mem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir, Options{})
	if _, err := s2.Get(ctx, b.Cid()); err != nil {
		t.Fatal(err)
	}
}

// TestPinHeldAcrossGC: blocks put under PinLock survive a GC that is asked
// for before they are pinned (it waits for the lock), and PinHeld pins them
// without taking the lock again, so the waiting GC cannot deadlock it.
func TestPinHeldAcrossGC(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "w.bin"), bytes.Repeat([]byte("weights "), 40000))
	other := openTest(t, t.TempDir(), Options{})
	root, err := other.ImportFolder(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	unlock := s.PinLock(ctx)
	var dag []blocks.Block
	if err := other.Walk(ctx, root, func(c cid.Cid, _ int) error {
		b, err := other.Get(ctx, c)
		dag = append(dag, b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(dag) < 2 {
		t.Fatalf("the DAG has %d blocks; the test needs several", len(dag))
	}
	if err := s.PutMany(ctx, dag); err != nil {
		t.Fatal(err)
	}
	gc := make(chan error, 1)
	go func() { _, err := s.GC(ctx); gc <- err }()
	for !s.GCRequested(ctx) {
		time.Sleep(time.Millisecond)
	}
	if err := s.PinHeld(ctx, root); err != nil {
		t.Fatal(err)
	}
	unlock.Unlock(ctx)
	if err := <-gc; err != nil {
		t.Fatal(err)
	}
	for _, b := range dag {
		if has, err := s.Has(ctx, b.Cid()); err != nil || !has {
			t.Fatalf("after GC block %s of the pinned DAG is gone (%v)", b.Cid(), err)
		}
	}
}
