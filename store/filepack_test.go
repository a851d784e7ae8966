package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// dagLevels returns the blocks of the DAG under root in s, level by level
// (root first), as a fetch receives them.
func dagLevels(t *testing.T, s *Store, root cid.Cid) []blocks.Block {
	t.Helper()
	var out []blocks.Block
	level := []cid.Cid{root}
	for len(level) > 0 {
		var next []cid.Cid
		for _, c := range level {
			b, err := s.Get(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
			if c.Type() == cid.DagProtobuf {
				nd, err := merkledag.DecodeProtobufBlock(b)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range nd.Links() {
					next = append(next, l.Cid)
				}
			}
		}
		level = next
	}
	return out
}

// filePacks lists the file packs of the store in dir.
func filePacks(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, packDirName))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), filePackTag+".pack") {
			out = append(out, filepath.Join(dir, packDirName, e.Name()))
		}
	}
	return out
}

// fetchInto adds blks to s with a BlockWriter in the given order and
// commits them, as a fetch does, then pins root.
func fetchInto(t *testing.T, s *Store, root cid.Cid, blks []blocks.Block) {
	t.Helper()
	ctx := context.Background()
	w := s.NewBlockWriter()
	defer w.Close()
	for _, b := range blks {
		if err := w.Add(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, root); err != nil {
		t.Fatal(err)
	}
}

func sameFolder(t *testing.T, want, got string) {
	t.Helper()
	ents, err := os.ReadDir(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		w, _ := os.ReadFile(filepath.Join(want, e.Name()))
		g, err := os.ReadFile(filepath.Join(got, e.Name()))
		if err != nil || !bytes.Equal(w, g) {
			t.Fatalf("%s differs after the export (%v)", e.Name(), err)
		}
	}
}

// TestFilePackExportLinks: a file whose blocks a BlockWriter stored (file
// node first, then its leaves, in any order) is exported as a hard link to
// its file pack — one copy on disk — with the same bytes and mode 0644;
// new blocks never go into the file pack, even after a reopen; editing
// the exported file in place is caught as corruption, never served; GC
// removes an unpinned file pack while the exported file lives on.
func TestFilePackExportLinks(t *testing.T) {
	ctx := context.Background()
	src := fixedFolder(t)
	a := openTest(t, t.TempDir(), Options{})
	root, err := a.ImportFolder(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	blks := dagLevels(t, a, root)
	// Leaves out of order, as several providers may send them.
	n := len(blks)
	blks[n-1], blks[n-2] = blks[n-2], blks[n-1]

	dirB := t.TempDir()
	b := openTest(t, dirB, Options{})
	fetchInto(t, b, root, blks)
	fps := filePacks(t, dirB)
	if len(fps) != 1 {
		t.Fatalf("%d file packs, want 1 (for adapter_model.safetensors)", len(fps))
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := b.ExportFolder(ctx, root, out); err != nil {
		t.Fatal(err)
	}
	sameFolder(t, src, out)
	big := filepath.Join(out, "adapter_model.safetensors")
	fi, err := os.Stat(big)
	if err != nil {
		t.Fatal(err)
	}
	pi, err := os.Stat(fps[0])
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(fi, pi) {
		t.Fatal("the exported file is a copy, not a link to its file pack")
	}
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("exported file mode %v, want 0644", fi.Mode().Perm())
	}

	// Reopened: new blocks go to an ordinary pack, never the file pack.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openTest(t, dirB, Options{})
	for i := range 3 {
		if err := b.Put(ctx, rawBlock(t, genBytes(300<<10, uint64(50+i)))); err != nil {
			t.Fatal(err)
		}
	}
	sameFolder(t, src, out)

	// In-place edit of the exported file: the store's copy is the same
	// bytes, so it is caught (CRC) and dropped, never served.
	leaf := blks[n-1].Cid()
	if leaf.Type() != cid.Raw {
		t.Fatalf("last block %s is not a leaf", leaf)
	}
	f, err := os.OpenFile(big, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("edited"), 0); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	var bad int
	for _, blk := range blks {
		if _, err := b.Get(ctx, blk.Cid()); errors.Is(err, ErrCorrupt) {
			bad++
		}
	}
	if bad != 1 {
		t.Fatalf("%d blocks reported corrupt after editing the exported file, want 1", bad)
	}

	// Unpinned and collected: the file pack goes, the export stays.
	if err := b.Unpin(ctx, root); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if fps := filePacks(t, dirB); len(fps) != 0 {
		t.Fatalf("GC left %d file packs of an unpinned adapter", len(fps))
	}
	if _, err := os.Stat(big); err != nil {
		t.Fatalf("GC removed the exported file: %v", err)
	}
}

// TestFilePackFallsBack: where the file's leaves are not all in one file
// pack — one was stored before, or the writer gave up before committing —
// the export copies, byte for byte, and a file pack nothing refers to is
// collected.
func TestFilePackFallsBack(t *testing.T) {
	ctx := context.Background()
	src := fixedFolder(t)
	a := openTest(t, t.TempDir(), Options{})
	root, err := a.ImportFolder(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	blks := dagLevels(t, a, root)

	// A leaf already stored: no file pack, a copy.
	dirB := t.TempDir()
	b := openTest(t, dirB, Options{})
	if err := b.Put(ctx, blks[len(blks)-1]); err != nil {
		t.Fatal(err)
	}
	fetchInto(t, b, root, blks)
	if fps := filePacks(t, dirB); len(fps) != 0 {
		t.Fatalf("%d file packs for a file one of whose leaves was stored already", len(fps))
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := b.ExportFolder(ctx, root, out); err != nil {
		t.Fatal(err)
	}
	sameFolder(t, src, out)

	// Given up before Commit: the file pack is collected.
	dirC := t.TempDir()
	c := openTest(t, dirC, Options{})
	w := c.NewBlockWriter()
	for _, blk := range blks {
		if err := w.Add(ctx, blk); err != nil {
			t.Fatal(err)
		}
	}
	if len(filePacks(t, dirC)) != 1 {
		t.Fatal("no file pack was started")
	}
	w.Close()
	if _, err := c.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if fps := filePacks(t, dirC); len(fps) != 0 {
		t.Fatalf("GC left %d file packs nothing refers to", len(fps))
	}

	// Export under a cap smaller than the file: refused, linked or not.
	dirD := t.TempDir()
	d := openTest(t, dirD, Options{})
	fetchInto(t, d, root, blks)
	if err := d.ExportFolder(ctx, root, filepath.Join(t.TempDir(), "capped"), WithMaxBytes(ChunkSize)); !errors.Is(err, ErrExportTooLarge) {
		t.Fatalf("capped export: %v, want ErrExportTooLarge", err)
	}
}

// TestReadToServe: a packed block is served with its bytes; one whose bytes
// rotted in its pack is not served (the CRC catches it) and is removed; a
// block kept in badger is read, and checked, as Get reads it.
func TestReadToServe(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	big := rawBlock(t, genBytes(1<<20, 7))
	small := rawBlock(t, genBytes(1000, 8))
	if err := s.PutMany(ctx, []blocks.Block{big, small}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2<<20)
	for _, b := range []blocks.Block{big, small} {
		got, err := s.ReadToServe(ctx, b.Cid(), buf)
		if err != nil || !bytes.Equal(got, b.RawData()) {
			t.Fatalf("ReadToServe %s: %v", b.Cid(), err)
		}
	}
	if got, _ := s.ReadToServe(ctx, big.Cid(), buf); &got[0] != &buf[0] {
		t.Fatal("ReadToServe did not read a packed block into the buffer given")
	}
	if got, err := s.ReadToServe(ctx, big.Cid(), nil); err != nil || !bytes.Equal(got, big.RawData()) {
		t.Fatalf("ReadToServe without a buffer: %v", err)
	}
	if _, err := s.ReadToServe(ctx, rawBlock(t, []byte("absent")).Cid(), buf); !ipld.IsNotFound(err) {
		t.Fatalf("ReadToServe of an absent block: %v, want not found", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, packDirName, packName(1)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0x00, 0xff}, 5000); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if _, err := s.ReadToServe(ctx, big.Cid(), buf); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadToServe of a rotted block: %v, want ErrCorrupt", err)
	}
	if has, _ := s.Has(ctx, big.Cid()); has {
		t.Fatal("a rotted block is still stored")
	}
}
