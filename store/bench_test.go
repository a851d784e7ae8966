package store

import (
	"context"
	"path/filepath"
	"testing"

	blocks "github.com/ipfs/go-block-format"
)

// BenchmarkPut1MiB measures synced 1 MiB block writes (one transaction and
// fsync per block, as bitswap's single Puts would do).
func BenchmarkPut1MiB(b *testing.B) {
	ctx := context.Background()
	s := openBench(b)
	var bs []blocks.Block
	for i := range b.N {
		bs = append(bs, rawBlock(b, genBytes(ChunkSize, uint64(i))))
	}
	b.SetBytes(ChunkSize)
	b.ResetTimer()
	for i := range b.N {
		if err := s.Put(ctx, bs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet1MiB measures verified 1 MiB block reads.
func BenchmarkGet1MiB(b *testing.B) {
	ctx := context.Background()
	s := openBench(b)
	var bs []blocks.Block
	for i := range 16 {
		blk := rawBlock(b, genBytes(ChunkSize, uint64(i)))
		if err := s.Put(ctx, blk); err != nil {
			b.Fatal(err)
		}
		bs = append(bs, blk)
	}
	b.SetBytes(ChunkSize)
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Get(ctx, bs[i%len(bs)].Cid()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportExport20MiB imports a 20 MiB adapter folder into a fresh
// store and exports it again (with verification).
func BenchmarkImportExport20MiB(b *testing.B) {
	ctx := context.Background()
	src := b.TempDir()
	writeFile(b, filepath.Join(src, "adapter_model.safetensors"), genBytes(20<<20, 3))
	writeFile(b, filepath.Join(src, "adapter_config.json"), []byte(`{"r": 16}`))
	b.SetBytes(20 << 20)
	b.ResetTimer()
	for range b.N {
		s := openBench(b)
		root, err := s.ImportFolder(ctx, src)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.ExportFolder(ctx, root, filepath.Join(b.TempDir(), "out")); err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
}

func openBench(b *testing.B) *Store {
	s, err := Open(b.TempDir(), Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}
