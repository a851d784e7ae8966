package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

func TestImportFileRef(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	data := make([]byte, 3*ChunkSize+12345)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	path := filepath.Join(dir, "base.gguf")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want, err := HashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(dir, "store"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	root, err := s.ImportFileRef(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if !root.Equals(want) {
		t.Fatalf("root %s, HashFile %s", root, want)
	}
	if u := s.Used(); u > 64<<10 {
		t.Fatalf("by reference the store holds %d bytes; want only the small nodes and records", u)
	}
	if ok, _ := s.IsPinned(ctx, root); !ok {
		t.Fatal("root not pinned")
	}
	out := filepath.Join(dir, "out.gguf")
	if err := s.ExportFile(ctx, root, out); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	if !bytes.Equal(got, data) {
		t.Fatal("exported file differs")
	}
	if n, b := s.RefReads(); n != 4 || b != int64(len(data)) {
		t.Fatalf("ref reads %d blocks %d bytes, want 4 and %d", n, b, len(data))
	}
	// Leaves served from the file have the right sizes.
	var leaf cid.Cid
	if err := s.Walk(ctx, root, func(c cid.Cid, size int) error {
		if c.Type() == cid.Raw && !leaf.Defined() {
			leaf = c
			if size != ChunkSize && size != 12345 {
				t.Errorf("leaf size %d", size)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if sz, err := s.GetSize(ctx, leaf); err != nil || (sz != ChunkSize && sz != 12345) {
		t.Fatalf("GetSize %d %v", sz, err)
	}
	// GC keeps the references and does not read the file.
	r0, _ := s.RefReads()
	if res, err := s.GC(ctx); err != nil || res.Removed != 0 {
		t.Fatalf("GC: %+v %v", res, err)
	}
	if r1, _ := s.RefReads(); r1 != r0 {
		t.Fatalf("GC read %d blocks from the file", r1-r0)
	}
	if _, err := s.Get(ctx, leaf); err != nil {
		t.Fatalf("after GC: %v", err)
	}
	// The file changes: its blocks are refused, not served.
	data[10] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(path, time.Now(), time.Now().Add(time.Hour))
	if _, err := s.Get(ctx, leaf); !errors.Is(err, ErrFileChanged) {
		t.Fatalf("Get after the file changed: %v", err)
	}
	// Same size, same time, other bytes: the hash check refuses it.
	data[10] ^= 0xff // back to the imported bytes
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	root2, err := s.ImportFileRef(ctx, path)
	if err != nil || !root2.Equals(root) {
		t.Fatalf("re-import: %s %v", root2, err)
	}
	st, _ := os.Stat(path)
	data[ChunkSize+5] ^= 0xff // in the second leaf
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(path, st.ModTime(), st.ModTime())
	refused := 0
	// Walk (pins, GC) does not read leaves imported by reference.
	if err := s.Walk(ctx, root, nil); err != nil {
		t.Fatalf("walk over a file rewritten in place: %v", err)
	}
	for _, l := range leaves(t, s, root) {
		if _, err := s.Get(ctx, l); errors.Is(err, ErrFileChanged) {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("%d leaves refused, want the one rewritten", refused)
	}
}

func leaves(t *testing.T, s *Store, root cid.Cid) []cid.Cid {
	nd, err := s.DAGService().Get(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	var out []cid.Cid
	for _, l := range nd.Links() {
		out = append(out, l.Cid)
	}
	return out
}

// TestImportFileRefReplacesCopies: blocks stored as copies (a pull) become
// references when the file is imported, and the space is freed.
func TestImportFileRefReplacesCopies(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	data := bytes.Repeat([]byte("orchmind base "), 300000) // ~4 MB
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(dir, "store"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.packs.maxSize = 1 << 20 // each leaf copy fills a pack: they roll
	// Store copies of the leaves first.
	for off := 0; off < len(data); off += ChunkSize {
		chunk := data[off:min(off+ChunkSize, len(data))]
		b := blocks.NewBlock(chunk)
		c := cid.NewCidV1(cid.Raw, b.Cid().Hash())
		bb, _ := blocks.NewBlockWithCid(chunk, c)
		if err := s.Put(ctx, bb); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Used()
	if before < 1<<20 {
		t.Fatalf("copies use %d bytes", before)
	}
	if _, err := s.ImportFileRef(ctx, path); err != nil {
		t.Fatal(err)
	}
	if after := s.Used(); after > 64<<10 {
		t.Fatalf("after the import by reference the store counts %d bytes (was %d)", after, before)
	}
	packs0 := dirBytes(t, filepath.Join(dir, "store", packDirName))
	if err := s.Reclaim(ctx); err != nil {
		t.Fatal(err)
	}
	packs1 := dirBytes(t, filepath.Join(dir, "store", packDirName))
	t.Logf("pack files: %d bytes before Reclaim, %d after", packs0, packs1)
	if packs0 < 3<<20 || packs1 > packs0-3<<20 {
		t.Fatalf("pack files hold %d bytes before Reclaim and %d after; want the dead copies' space back (all but the current pack)", packs0, packs1)
	}
	// Everything still reads, from the file.
	if err := s.Walk(ctx, mustHash(t, path), nil); err != nil {
		t.Fatal(err)
	}
}

func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if st, err := e.Info(); err == nil {
			n += st.Size()
		}
	}
	return n
}

func mustHash(t *testing.T, path string) cid.Cid {
	c, err := HashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
