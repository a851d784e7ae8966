package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
)

// filePackOf returns the file pack in the node data folder dataDir that
// is the same file (inode) as path, or "" if none is.
func filePackOf(t *testing.T, dataDir, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	found := ""
	_ = filepath.WalkDir(dataDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".file.pack") {
			return nil
		}
		if pi, err := os.Stat(p); err == nil && os.SameFile(fi, pi) {
			found = p
		}
		return nil
	})
	return found
}

// TestPullStoresOnce: a pulled adapter's weights are written to disk once:
// the file in the adapter folder is the store's file pack (one inode), with
// the published bytes. The puller serves the adapter onward from that pack
// after its author has gone, and the next puller gets the same bytes; and
// after the user deletes the adapter folder the store still holds and
// serves it.
func TestPullStoresOnce(t *testing.T) {
	bs, err := base.Random(model.Config{Dim: 256, HiddenDim: 512, Layers: 4, Heads: 8, KVHeads: 4, SeqLen: 64}, quant.Q8_0, 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	a, _ := startNodeQuota(t, bs, nil, 0)
	b, dirB := startNodeQuota(t, bs, addr(a), 0)
	src := adapterFolderB(t, bs, 32, 1)
	want, err := os.ReadFile(filepath.Join(src, adapters.SafetensorsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 2<<20 {
		t.Fatalf("test adapter of %d bytes: too small to need a file pack", len(want))
	}
	c, err := a.Publish(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitListed(ctx, b, "s1", c); err != nil {
		t.Fatal(err)
	}
	dir, err := b.Pull(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	got := filepath.Join(dir, adapters.SafetensorsFile)
	if data, err := os.ReadFile(got); err != nil || !bytes.Equal(data, want) {
		t.Fatalf("the pulled weights differ from the published ones (%v)", err)
	}
	if filePackOf(t, filepath.Join(dirB, "data"), got) == "" {
		t.Fatal("the pulled weights were written twice: the adapter folder's file is not the store's file pack")
	}

	// The author leaves; the user deletes the folder; b still serves it.
	a.Close()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	late, _ := startNodeQuota(t, bs, addr(b), 0)
	if err := waitListed(ctx, late, "s1", c); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir2, err := late.Pull(pctx, c)
	if err != nil {
		t.Fatal(fmt.Errorf("pull from the puller after the author left: %w", err))
	}
	if data, err := os.ReadFile(filepath.Join(dir2, adapters.SafetensorsFile)); err != nil || !bytes.Equal(data, want) {
		t.Fatalf("the second pull's weights differ from the published ones (%v)", err)
	}
}
