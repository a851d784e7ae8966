package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"

	"orchmind/engine/quant"
	"orchmind/engine/tensor"
)

// LoadLlama2C reads a llama2.c checkpoint: a header of 7 int32 (dim,
// hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative when the
// classifier is not shared), seq_len) followed by float32 weights. Matrices
// are converted to typ on load (quant.F32 keeps them as stored; Q8_0 and Q4_0
// load the model "in 8-bit / 4-bit"); norms stay float32.
func LoadLlama2C(path string, typ quant.Type) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	m, err := ParseLlama2C(data, typ)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", path, err)
	}
	return m, nil
}

// ParseLlama2C parses the bytes of a llama2.c checkpoint (see LoadLlama2C).
func ParseLlama2C(data []byte, typ quant.Type) (*Model, error) {
	if len(data) < 28 {
		return nil, fmt.Errorf("truncated: %d bytes, a llama2.c checkpoint starts with a 28-byte header", len(data))
	}
	h := make([]int, 7)
	for i := range h {
		h[i] = int(int32(binary.LittleEndian.Uint32(data[4*i:])))
	}
	c := Config{Dim: h[0], HiddenDim: h[1], Layers: h[2], Heads: h[3], KVHeads: h[4], Vocab: h[5], SeqLen: h[6],
		NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: h[5] > 0}
	if c.Vocab < 0 {
		c.Vocab = -c.Vocab
	}
	const lim = 1 << 20
	if c.Dim <= 0 || c.Dim > lim || c.HiddenDim <= 0 || c.HiddenDim > lim || c.Layers <= 0 || c.Layers > 1024 ||
		c.Heads <= 0 || c.KVHeads <= 0 || c.Heads%c.KVHeads != 0 || c.Dim%c.Heads != 0 || c.HeadDim()%2 != 0 ||
		c.Vocab <= 0 || c.Vocab > lim || c.SeqLen <= 0 || c.SeqLen > lim {
		return nil, fmt.Errorf("header %v is not a valid llama2.c model (dim, hidden, layers, heads, kv_heads, vocab, seq_len)", h)
	}
	if typ != quant.F32 && typ != quant.F16 && typ != quant.BF16 && typ != quant.Q8_0 && typ != quant.Q4_0 && typ != quant.Q4_1 {
		return nil, fmt.Errorf("cannot load weights as %s (use f32, f16, q8_0, q4_0 or q4_1)", typ)
	}
	kv, L, hs := c.KVDim(), c.Layers, c.HeadDim()
	floats := int64(c.Vocab)*int64(c.Dim) + int64(L)*(int64(c.Dim)*(2+2*int64(c.Dim)+2*int64(kv))+3*int64(c.Dim)*int64(c.HiddenDim)) +
		int64(c.Dim) + int64(c.SeqLen)*int64(hs)
	if !c.SharedClassifier {
		floats += int64(c.Vocab) * int64(c.Dim)
	}
	if have := int64(len(data)-28) / 4; have < floats {
		return nil, fmt.Errorf("truncated: the header needs %d weights, the file holds %d", floats, have)
	}
	off := 28
	next := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[off+4*i:]))
		}
		off += 4 * n
		return v
	}
	var err error
	mat := func(rows, cols int) *tensor.Matrix {
		if err != nil {
			return nil
		}
		var m *tensor.Matrix
		m, err = tensor.Quantized(StorageType(typ, cols), rows, cols, next(rows*cols))
		return m
	}
	m := &Model{Config: c, Layers: make([]Layer, L)}
	m.Embed = mat(c.Vocab, c.Dim)
	for l := range L {
		m.Layers[l].AttnNorm = next(c.Dim)
	}
	for l := range L {
		m.Layers[l].Wq = mat(c.Dim, c.Dim)
	}
	for l := range L {
		m.Layers[l].Wk = mat(kv, c.Dim)
	}
	for l := range L {
		m.Layers[l].Wv = mat(kv, c.Dim)
	}
	for l := range L {
		m.Layers[l].Wo = mat(c.Dim, c.Dim)
	}
	for l := range L {
		m.Layers[l].FFNNorm = next(c.Dim)
	}
	for l := range L {
		m.Layers[l].Gate = mat(c.HiddenDim, c.Dim)
	}
	for l := range L {
		m.Layers[l].Down = mat(c.Dim, c.HiddenDim)
	}
	for l := range L {
		m.Layers[l].Up = mat(c.HiddenDim, c.Dim)
	}
	m.FinalNorm = next(c.Dim)
	off += 4 * c.SeqLen * hs // freq_cis_real and freq_cis_imag: RoPE is computed instead
	m.Output = m.Embed
	if !c.SharedClassifier {
		m.Output = mat(c.Vocab, c.Dim)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// StorageType is the type a matrix with rows of cols values is held in when
// typ is asked for: typ itself, or F16 when cols is not a whole number of
// typ's blocks (llama.cpp's quantizer falls back the same way).
func StorageType(typ quant.Type, cols int) quant.Type {
	if cols%typ.BlockSize() != 0 {
		return quant.F16
	}
	return typ
}

// Bytes is the memory held by the model's weights.
func (m *Model) Bytes() int {
	n := len(m.Embed.Data) + 4*len(m.FinalNorm)
	if m.Output != m.Embed {
		n += len(m.Output.Data)
	}
	for _, L := range m.Layers {
		n += 4 * (len(L.AttnNorm) + len(L.FFNNorm))
		for _, w := range []*tensor.Matrix{L.Wq, L.Wk, L.Wv, L.Wo, L.Gate, L.Down, L.Up} {
			n += len(w.Data)
		}
	}
	return n
}
