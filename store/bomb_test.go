package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// dedupBomb stores a folder holding one file made of the same 1 MiB leaf
// linked refs times: three blocks, a little over 1 MiB to fetch, refs MiB
// to write out. The file node declares declared MiB.
func dedupBomb(t *testing.T, s *Store, refs, declared int) cid.Cid {
	t.Helper()
	ctx := context.Background()
	leaf := rawBlock(t, make([]byte, ChunkSize))
	if err := s.Put(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	fsn := ft.NewFSNode(ft.TFile)
	for range declared {
		fsn.AddBlockSize(ChunkSize)
	}
	data, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	file := merkledag.NodeWithData(data)
	if err := file.SetCidBuilder(cidBuilder); err != nil {
		t.Fatal(err)
	}
	for range refs {
		if err := file.AddRawLink("", &ipld.Link{Cid: leaf.Cid(), Size: ChunkSize}); err != nil {
			t.Fatal(err)
		}
	}
	dir := ft.EmptyDirNode()
	if err := dir.SetCidBuilder(cidBuilder); err != nil {
		t.Fatal(err)
	}
	if err := dir.AddRawLink("adapter_model.safetensors", &ipld.Link{Cid: file.Cid(), Size: uint64(refs) * ChunkSize}); err != nil {
		t.Fatal(err)
	}
	if err := s.DAGService().AddMany(ctx, []ipld.Node{file, dir}); err != nil {
		t.Fatal(err)
	}
	return dir.Cid()
}

// noExport requires that nothing was left in parent: neither the output
// folder nor a temporary one.
func noExport(t *testing.T, parent string) {
	t.Helper()
	ents, _ := os.ReadDir(parent)
	if len(ents) > 0 {
		t.Fatalf("a refused export left %v in %s", ents, parent)
	}
}

// TestExportDedupBomb: a DAG that links one leaf 512 times declares
// 512 MiB; with a cap of 8 MiB it is refused before a byte is written.
func TestExportDedupBomb(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	root := dedupBomb(t, s, 512, 512)
	parent := t.TempDir()
	err := s.ExportFolder(context.Background(), root, filepath.Join(parent, "out"), WithMaxBytes(8<<20))
	if !errors.Is(err, ErrExportTooLarge) {
		t.Fatalf("export of a 512 MiB dedup bomb under an 8 MiB cap: %v, want ErrExportTooLarge", err)
	}
	noExport(t, parent)
}

// TestExportLyingFileSize: the same bomb whose file node declares only
// 1 MiB: the export stops at the first byte past the declared size
// instead of writing 512 MiB and complaining afterwards.
func TestExportLyingFileSize(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	root := dedupBomb(t, s, 512, 1)
	parent := t.TempDir()
	err := s.ExportFolder(context.Background(), root, filepath.Join(parent, "out"), WithMaxBytes(64<<20))
	if err == nil {
		t.Fatal("a file whose blocks hold more than it declares was exported")
	}
	if !strings.Contains(err.Error(), "declares") {
		t.Fatalf("error %v does not say the file holds more than it declares", err)
	}
	noExport(t, parent)
}
