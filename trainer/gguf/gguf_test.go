package gguf

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/trainer/quant"
)

func sample(t testing.TB) []byte {
	t.Helper()
	q, err := quant.Quantize(quant.Q8_0, make([]float32, 64), nil)
	if err != nil {
		t.Fatal(err)
	}
	f32 := make([]byte, 4*3*5)
	for i := range 15 {
		binary.LittleEndian.PutUint32(f32[4*i:], uint32(i))
	}
	b, err := Encode([]KV{
		{"general.architecture", "llama"}, {"llama.block_count", uint32(2)}, {"llama.rope.freq_base", float32(10000)},
		{"tokenizer.ggml.tokens", []string{"<unk>", "a", "b"}}, {"tokenizer.ggml.scores", []float32{0, -1, -2}},
		{"flag", true}, {"big", uint64(1 << 40)}, {"neg", int64(-3)}, {"pi", 3.25},
	}, []WriteTensor{{"w", []uint64{5, 3}, quant.F32, f32}, {"q", []uint64{32, 2}, quant.Q8_0, q}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	f, err := Parse(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := f.String("general.architecture"); s != "llama" {
		t.Errorf("architecture %q", s)
	}
	if n, _ := f.Uint("llama.block_count"); n != 2 {
		t.Errorf("block_count %d", n)
	}
	if v, _ := f.Float("llama.rope.freq_base"); v != 10000 {
		t.Errorf("freq_base %g", v)
	}
	if toks := f.Metadata["tokenizer.ggml.tokens"].([]any); len(toks) != 3 || toks[2] != "b" {
		t.Errorf("tokens %v", toks)
	}
	if f.Metadata["flag"] != true || f.Metadata["big"] != uint64(1<<40) || f.Metadata["neg"] != int64(-3) || f.Metadata["pi"] != 3.25 {
		t.Errorf("metadata %v", f.Metadata)
	}
	w, ok := f.Tensor("w")
	if !ok || w.Elements() != 15 || binary.LittleEndian.Uint32(w.Data[4*14:]) != 14 {
		t.Fatalf("tensor w: %+v", w)
	}
	q, _ := f.Tensor("q")
	if q.Offset%32 != 0 || len(q.Data) != 2*34 {
		t.Fatalf("tensor q at %d, %d bytes", q.Offset, len(q.Data))
	}
}

func TestWriteAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := Write(p, []KV{{"a", "b"}}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil || f.Metadata["a"] != "b" {
		t.Fatalf("%v %v", f, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestBadFiles(t *testing.T) {
	good := sample(t)
	cases := map[string][]byte{
		"empty":       nil,
		"magic":       append([]byte("GGUX"), good[4:]...),
		"version":     append(append([]byte("GGUF"), 9, 0, 0, 0), good[8:]...),
		"truncated":   good[:len(good)-40],
		"header only": good[:30],
	}
	huge := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(huge[8:], 1<<40) // tensor count
	cases["absurd count"] = huge
	for name, b := range cases {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "panic") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Parse(b)
		if err != nil {
			return
		}
		for _, tt := range g.Tensors {
			if uint64(len(tt.Data)) != tt.Size {
				t.Fatalf("tensor %q: %d bytes, size %d", tt.Name, len(tt.Data), tt.Size)
			}
		}
	})
}
