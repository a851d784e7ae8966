package registry

import (
	"context"
	"fmt"
	"testing"

	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/internal/testshared"
)

// benchBase is stories260K held Q8_0 when the shared folder is present,
// else a random base of the same shape.
func benchBase(b *testing.B) *base.Base {
	if testshared.Dir() != "" {
		bs, err := base.Load(testshared.Path(b, "models/stories260K/stories260K.bin"), "", quant.Q8_0)
		if err != nil {
			b.Fatal(err)
		}
		return bs
	}
	return newBase(b, model.Config{Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, SeqLen: 512, SharedClassifier: true}, quant.Q8_0, 1)
}

// BenchmarkGenerate measures generation tokens/s on one base with 0, 1 and
// 3 adapters (r=16, all projections) composed per request, and with the one
// adapter baked into a quantized copy, side by side.
func BenchmarkGenerate(b *testing.B) {
	bs := benchBase(b)
	r := New(bs, nil)
	for i := range 3 {
		if _, err := r.Add(fmt.Sprintf("a%d", i), "", "", randomAdapter(b, bs, 16, uint64(i+1)), nil); err != nil {
			b.Fatal(err)
		}
	}
	const n = 128
	cases := []struct {
		name string
		sel  []Selected
		bake bool
	}{
		{"adapters=0", nil, false},
		{"adapters=1", []Selected{{Name: "a0"}}, false},
		{"adapters=3", []Selected{{Name: "a0"}, {Name: "a1"}, {Name: "a2"}}, false},
		{"adapters=1-baked", []Selected{{Name: "a0"}}, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if c.bake {
				if err := r.Bake("a0"); err != nil {
					b.Fatal(err)
				}
				defer func() { _ = r.Unbake("a0") }()
			}
			tokens := 0
			for b.Loop() {
				m, d, err := r.Resolve(c.sel)
				if err != nil {
					b.Fatal(err)
				}
				if c.bake && (m == bs.Model || d != nil) {
					b.Fatal("baked model not used")
				}
				first := true // the first call echoes the prompt
				err = model.Generate(context.Background(), m, bs.Tok, "Once upon a time", model.Sampling{MaxNew: n, Delta: d}, func(string) error {
					if !first {
						tokens++
					}
					first = false
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
