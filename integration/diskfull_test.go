package integration

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/node"
	"orchmind/node/api"
	"orchmind/store"
)

// startNodeQuota is startNode with a content-store quota.
func startNodeQuota(t *testing.T, b *base.Base, boot []string, quota int64) (*node.Node, string) {
	t.Helper()
	dir := t.TempDir()
	n, err := node.Start(t.Context(), node.Config{DataDir: filepath.Join(dir, "data"), AdapterDir: filepath.Join(dir, "adapters"),
		Base: b, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot, APIAddr: "127.0.0.1:0", DHTServer: true, LocalOnly: true, FindTimeout: 3 * time.Second,
		Quota: quota, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, dir
}

// checkStoreConsistent requires the store's byte count to equal the sizes
// of the blocks it holds, and every block to read back hash-verified.
func checkStoreConsistent(t *testing.T, s *store.Store) {
	t.Helper()
	keys, err := s.AllKeysChan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for k := range keys {
		b, err := s.Get(t.Context(), k)
		if err != nil {
			t.Fatalf("block %s: %v", k, err)
		}
		sum += int64(len(b.RawData()))
	}
	if sum != s.Used() {
		t.Fatalf("store says %d bytes used, its blocks hold %d", s.Used(), sum)
	}
}

// noPartialFolders fails if a pull left an adapter folder or a temporary
// folder behind.
func noPartialFolders(t *testing.T, dir string) {
	t.Helper()
	if ents, _ := os.ReadDir(filepath.Join(dir, "adapters")); len(ents) != 0 {
		t.Fatalf("a failed pull left %d entries in the adapter folder", len(ents))
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "data"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".pull-") {
			t.Fatalf("a failed pull left its temporary folder %s", e.Name())
		}
	}
}

// TestPullStoreFull: a pull that cannot fit fails at once with a clear
// message; a disk that fills up part-way through a pull stops it with a
// clear error, leaves the store consistent and nothing half-written, and
// once space is freed the same pull completes byte for byte.
func TestPullStoreFull(t *testing.T) {
	b, err := base.Random(model.Config{Dim: 256, HiddenDim: 512, Layers: 10, Heads: 8, KVHeads: 4, SeqLen: 64}, quant.Q8_0, 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pub := startNode(t, b, nil)
	src := adapterFolder(t, b, 64)
	want, _ := os.ReadFile(filepath.Join(src, adapters.SafetensorsFile))
	size := folderBytes(src)
	c, err := pub.Publish(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}

	// 1. Too small from the start: refused before fetching the body.
	small, smallDir := startNodeQuota(t, b, addr(pub), size/4)
	waitFor(t, "the small node to see the announcement", func() bool {
		res, _ := small.Search(ctx, api.SearchQuery{BaseFingerprint: b.Fingerprint})
		return len(res) == 1
	})
	start := time.Now()
	_, err = small.Pull(ctx, c)
	if !errors.Is(err, store.ErrStoreFull) || !strings.Contains(err.Error(), "raise --quota") {
		t.Fatalf("pull into a store too small: %v; want a store-full error saying what to do", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the store-full error took %s", d)
	}
	if small.Store().Used() > size/8 {
		t.Fatalf("the refused pull stored %d bytes first", small.Store().Used())
	}
	checkStoreConsistent(t, small.Store())
	noPartialFolders(t, smallDir)
	t.Logf("refused at once: %v", err)

	// 2. Room at the start, the disk fills up during the pull.
	n, dir := startNodeQuota(t, b, addr(pub), size+size/2)
	waitFor(t, "the node to see the announcement", func() bool {
		res, _ := n.Search(ctx, api.SearchQuery{BaseFingerprint: b.Fingerprint})
		return len(res) == 1
	})
	// Something else will fill the disk: blocks for all the quota but an
	// eighth of the adapter, written in one go once the pull has begun.
	var filler []blocks.Block
	for room := size + size/2 - size/8; room > 0; room -= 256 << 10 {
		data := make([]byte, 256<<10)
		rand.Read(data)
		h, _ := multihash.Sum(data, multihash.SHA2_256, -1)
		blk, _ := blocks.NewBlockWithCid(data, cid.NewCidV1(cid.Raw, h))
		filler = append(filler, blk)
	}
	done := make(chan error, 1)
	go func() { _, err := n.Pull(ctx, c); done <- err }()
	deadline := time.Now().Add(20 * time.Second)
	for n.Store().Used() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the pull did not start storing blocks")
		}
		time.Sleep(100 * time.Microsecond)
	}
	if err := n.Store().PutMany(ctx, filler); err != nil && !errors.Is(err, store.ErrStoreFull) {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the pull did not stop within 10 s of the disk filling up")
	}
	if err == nil {
		// The pull may have won the race for the last bytes; then it must be whole.
		t.Logf("the pull finished before the disk filled")
	} else {
		if !errors.Is(err, store.ErrStoreFull) {
			t.Fatalf("pull on a full disk: %v; want a store-full error", err)
		}
		t.Logf("stopped cleanly: %v", err)
		checkStoreConsistent(t, n.Store())
		noPartialFolders(t, dir)

		// 3. Free the space: the same pull now completes.
		for _, f := range filler {
			if err := n.Store().DeleteBlock(ctx, f.Cid()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err = n.Pull(ctx, c); err != nil {
			t.Fatalf("pull after freeing space: %v", err)
		}
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "adapters"))
	if len(ents) != 1 {
		t.Fatalf("adapter folder holds %d entries, want 1", len(ents))
	}
	got, err := os.ReadFile(filepath.Join(dir, "adapters", ents[0].Name(), adapters.SafetensorsFile))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("pulled adapter differs from the published one (%v)", err)
	}
	checkStoreConsistent(t, n.Store())
}
