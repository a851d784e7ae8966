package model

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"orchmind/engine/quant"
)

// byteTok is a tokenizer of bytes (ids 3…258) for tests.
type byteTok struct{}

func (byteTok) Encode(s string, bos, _ bool) []int {
	var ids []int
	if bos {
		ids = append(ids, 1)
	}
	for i := 0; i < len(s); i++ {
		ids = append(ids, 3+int(s[i]))
	}
	return ids
}
func (byteTok) Piece(_, id int) string {
	if id < 3 {
		return ""
	}
	return string(rune(id - 3))
}
func (byteTok) BOS() int { return 1 }
func (byteTok) EOS() int { return 2 }

func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestKVCacheFollowsUse: a small GGUF that claims 2^24 positions of
// context (a KV cache of 2 GiB at full length) loads, and running a short
// prompt and a few new tokens through it allocates memory for those
// positions only, whether through Generate (which reserves what is asked)
// or a State fed token by token (which grows as positions are used).
func TestKVCacheFollowsUse(t *testing.T) {
	c := Config{Dim: 32, HiddenDim: 64, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 259, SeqLen: 1 << 24, NormEps: 1e-5, RopeTheta: 10000}
	r, err := Random(c, quant.Q8_0, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "claims.gguf")
	if err := WriteGGUF(p, r, "claims", quant.Q8_0, nil, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := LoadGGUF(p, AsStored)
	if err != nil {
		t.Fatal(err)
	}
	if m.SeqLen != 1<<24 || fi.Size() > 1<<20 {
		t.Fatalf("the file (%d bytes) claims %d positions; want a small file claiming 2^24", fi.Size(), m.SeqLen)
	}
	const limit = 16 << 20
	var out string
	n := allocated(func() {
		err = Generate(context.Background(), m, byteTok{}, "Once upon a time", Sampling{MaxNew: 32}, func(s string) error { out += s; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	if n > limit {
		t.Fatalf("Generate of 17+32 positions allocated %d MB (the claimed context asks for %d MB)", n>>20, (2*c.SeqLen*c.KVDim()*4)>>20)
	}
	t.Logf("Generate allocated %d KB for %q", n>>10, out)
	// Token by token, past the first allocation: the cache grows and keeps
	// what it held.
	ids := byteTok{}.Encode("a longer prompt that runs past the first sixty-four positions of the cache, token by token", true, false)
	var got []float32
	n = allocated(func() {
		s := m.NewState()
		s.SetFloat32(true) // as Prefill's batches, to compare below
		for pos, id := range ids {
			got = s.Forward(id, pos)
		}
	})
	if n > limit {
		t.Fatalf("%d positions token by token allocated %d MB", len(ids), n>>20)
	}
	want := m.NewState()
	want.SetFloat32(true)
	want.Reserve(len(ids))
	wl := want.Prefill(ids, 0)
	for i := range wl {
		if d := wl[i] - got[i]; d > 1e-3 || d < -1e-3 {
			t.Fatalf("logit %d: grown cache %g, reserved cache %g", i, got[i], wl[i])
		}
	}
}
