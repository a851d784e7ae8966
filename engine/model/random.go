package model

import (
	"fmt"
	"math"
	"math/rand/v2"

	"orchmind/engine/quant"
	"orchmind/engine/tensor"
)

// Random builds a model of config c with seeded random weights, for tests
// and benchmarks: every matrix N(0, 1/cols) held as typ (rows that are not
// whole blocks fall back as StorageType says), every norm 1. The same seed
// gives the same weights.
func Random(c Config, typ quant.Type, seed uint64) (*Model, error) {
	if c.Dim <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.Dim%c.Heads != 0 || c.Heads%c.KVHeads != 0 ||
		c.SeqLen <= 0 || c.HiddenDim <= 0 || c.Vocab <= 0 {
		return nil, fmt.Errorf("random model: invalid config %+v", c)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	var err error
	mat := func(rows, cols int) *tensor.Matrix {
		v := make([]float32, rows*cols)
		s := 1 / math.Sqrt(float64(cols))
		for i := range v {
			v[i] = float32(rng.NormFloat64() * s)
		}
		m, e := tensor.Quantized(StorageType(typ, cols), rows, cols, v)
		if e != nil && err == nil {
			err = e
		}
		return m
	}
	ones := func() []float32 {
		v := make([]float32, max(c.Dim, c.HeadDim()))
		for i := range v {
			v[i] = 1
		}
		return v
	}
	m := &Model{Config: c, Layers: make([]Layer, c.Layers), FinalNorm: ones()[:c.Dim]}
	m.Embed = mat(c.Vocab, c.Dim)
	m.Output = m.Embed
	if !c.SharedClassifier {
		m.Output = mat(c.Vocab, c.Dim)
	}
	for l := range m.Layers {
		m.Layers[l] = Layer{AttnNorm: ones(), FFNNorm: ones(), Wq: mat(c.QDim(), c.Dim), Wk: mat(c.KVDim(), c.Dim),
			Wv: mat(c.KVDim(), c.Dim), Wo: mat(c.Dim, c.QDim()), Gate: mat(c.HiddenDim, c.Dim), Up: mat(c.HiddenDim, c.Dim), Down: mat(c.Dim, c.HiddenDim)}
		m.Layers[l].AttnNorm, m.Layers[l].FFNNorm = m.Layers[l].AttnNorm[:c.Dim], m.Layers[l].FFNNorm[:c.Dim]
		if c.QKNorm() {
			m.Layers[l].QNorm, m.Layers[l].KNorm = ones()[:c.HeadDim()], ones()[:c.HeadDim()]
		}
		if c.SandwichNorm() {
			m.Layers[l].PostAttnNorm, m.Layers[l].PostFFNNorm = ones()[:c.Dim], ones()[:c.Dim]
		}
	}
	if err != nil {
		return nil, fmt.Errorf("random model: %w", err)
	}
	return m, nil
}
