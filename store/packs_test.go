package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// packBytes returns the total size of the pack files of the store in dir.
func packBytes(t *testing.T, dir string) (n int64, files int) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, packDirName))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
		files++
	}
	return n, files
}

// TestPacks: large blocks go to pack files and read back intact, across a
// reopen; a block whose bytes rot in its pack is not served and is
// removed; GC gives the space of deleted blocks back (emptied packs are
// deleted, mostly-empty ones rewritten) and keeps every pinned block.
func TestPacks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	s.packs.maxSize = 1 << 20

	var stray []blocks.Block
	for i := range 20 {
		stray = append(stray, rawBlock(t, genBytes(256<<10, uint64(100+i))))
	}
	small := rawBlock(t, []byte("small blocks stay in badger"))
	if err := s.PutMany(ctx, append(stray, small)); err != nil {
		t.Fatal(err)
	}
	if n, files := packBytes(t, dir); n != 20*256<<10 || files != 5 {
		t.Fatalf("packs hold %d bytes in %d files, want %d in 5", n, files, 20*256<<10)
	}
	// A pinned node keeps every fourth of them: each full pack ends a
	// quarter live, which GC must rewrite.
	keep := merkledag.NodeWithData([]byte("keep"))
	if err := keep.SetCidBuilder(cidBuilder); err != nil {
		t.Fatal(err)
	}
	var kept []blocks.Block
	for i := 0; i < len(stray); i += 4 {
		if err := keep.AddRawLink(fmt.Sprint(i), &ipld.Link{Cid: stray[i].Cid(), Size: 256 << 10}); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, stray[i])
	}
	if err := s.DAGService().Add(ctx, keep); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(ctx, keep.Cid()); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	big := genBytes(2*ChunkSize+777, 7)
	writeFile(t, filepath.Join(src, "weights.bin"), big)
	root, err := s.ImportFolder(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	want := s.Used()

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	s.packs.maxSize = 1 << 20
	if s.Used() != want {
		t.Fatalf("used %d after reopen, want %d", s.Used(), want)
	}
	for _, b := range append(stray, small) {
		got, err := s.Get(ctx, b.Cid())
		if err != nil || !bytes.Equal(got.RawData(), b.RawData()) {
			t.Fatalf("block %s after reopen: %v", b.Cid(), err)
		}
	}

	// Rot one byte of a packed block on disk.
	victim := stray[3]
	f, err := os.OpenFile(filepath.Join(dir, packDirName, packName(1)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{^victim.RawData()[1000]}, 3*256<<10+1000); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if _, err := s.Get(ctx, victim.Cid()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a block rotten in its pack = %v, want ErrCorrupt", err)
	}
	if has, _ := s.Has(ctx, victim.Cid()); has {
		t.Fatal("the rotten block is still stored")
	}

	// GC: the 14 unpinned stray blocks and the small one go; the packs
	// are rewritten down to what is live, and every pinned block stays
	// readable.
	before, _ := packBytes(t, dir)
	res, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 15 {
		t.Fatalf("GC removed %d blocks, want 15", res.Removed)
	}
	after, files := packBytes(t, dir)
	live := int64(len(kept))*256<<10 + 2*ChunkSize
	if after >= before || after > live+1<<20 {
		t.Fatalf("packs hold %d bytes in %d files after GC (%d before); %d bytes are live", after, files, before, live)
	}
	for _, b := range kept {
		got, err := s.Get(ctx, b.Cid())
		if err != nil || !bytes.Equal(got.RawData(), b.RawData()) {
			t.Fatalf("pinned block %s after GC: %v", b.Cid(), err)
		}
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := s.ExportFolder(ctx, root, out); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(out, "weights.bin")); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("pinned file after GC: %v", err)
	}
	checkUsage(t, s)
	used := s.Used()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	if s.Used() != used {
		t.Fatalf("used %d after GC and reopen, want %d", s.Used(), used)
	}
	checkUsage(t, s)
	t.Logf("packs: %d bytes before GC, %d in %d files after", before, after, files)
}

// checkUsage requires Used to equal the sizes of the blocks stored.
func checkUsage(t *testing.T, s *Store) {
	t.Helper()
	keys, err := s.AllKeysChan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for k := range keys {
		b, err := s.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		sum += int64(len(b.RawData()))
	}
	if sum != s.Used() {
		t.Fatalf("Used is %d, the blocks hold %d", s.Used(), sum)
	}
}

// TestPacksConcurrentGC: writers, readers and GC at once, with packs small
// enough to rotate and be compacted all the time. Every pinned block stays
// readable throughout and afterwards, and the byte count stays exact.
func TestPacksConcurrentGC(t *testing.T) {
	ctx := context.Background()
	var logs lockedBuffer
	s := openTest(t, t.TempDir(), Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	s.packs.maxSize = 512 << 10
	const n = 6
	srcs := make([]string, n)
	for i := range srcs {
		srcs[i] = t.TempDir()
		writeFile(t, filepath.Join(srcs[i], "w.bin"), genBytes(2*ChunkSize+4096*i+1, uint64(20+i)))
	}
	roots := make([]cid.Cid, n)
	var imported sync.WaitGroup
	var wg sync.WaitGroup
	errs := make(chan error, 4*n+16)
	stop := make(chan struct{})
	for i := range n {
		imported.Add(1)
		wg.Go(func() {
			defer imported.Done()
			r, err := s.ImportFolder(ctx, srcs[i])
			roots[i] = r
			errs <- err
		})
		wg.Go(func() { // garbage beside the imports
			var bs []blocks.Block
			for j := range 6 {
				bs = append(bs, rawBlock(t, genBytes(128<<10, uint64(1000+10*i+j))))
			}
			errs <- s.PutMany(ctx, bs)
		})
	}
	wg.Go(func() { // GC all the time
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.GC(ctx); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() { // readers of what is pinned, while GC moves it
		imported.Wait()
		for range 20 {
			for _, r := range roots {
				if r.Defined() {
					if err := s.Walk(ctx, r, nil); err != nil {
						errs <- fmt.Errorf("walking a pinned import during GC: %w", err)
						return
					}
				}
			}
		}
	})
	imported.Wait()
	time.Sleep(200 * time.Millisecond)
	close(stop)
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
			t.Fatalf("import %d damaged by concurrent GC: %v", i, err)
		}
		got, err := os.ReadFile(filepath.Join(out, "w.bin"))
		want, _ := os.ReadFile(filepath.Join(srcs[i], "w.bin"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("import %d reads back wrong after concurrent GC (%v)", i, err)
		}
	}
	checkUsage(t, s)
	if !strings.Contains(logs.String(), "compacted pack files") {
		t.Fatal("no GC compacted any pack: the test did not exercise compaction")
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
