package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"

	"orchmind/engine/tensor"
)

// Fingerprint identifies a base model exactly. It is "sha256:" and the hex
// SHA-256 of this canonical stream (integers little-endian uint64, strings
// length-prefixed):
//
//	"orchmind-base-v1", the architecture ("llama", "qwen2"),
//	dim, hidden_dim, layers, heads, kv_heads, vocab,
//	float64 bits of rope_theta and norm_eps (as float32 values), shared_classifier (0/1),
//	then for every tensor in GGUF naming order (token_embd, blk.0.attn_norm,
//	blk.0.attn_q, blk.0.attn_k, blk.0.attn_v, [blk.0.attn_q.bias,
//	blk.0.attn_k.bias, blk.0.attn_v.bias: Qwen2 only], blk.0.attn_output,
//	blk.0.ffn_norm, blk.0.ffn_gate, blk.0.ffn_up, blk.0.ffn_down, blk.1…,
//	output_norm, output unless shared, rope_freqs when the model has RoPE
//	frequency factors):
//	name, number of dims, dims (row length first), ggml type, the bytes as
//	held in memory.
//
// Norm and bias vectors are F32; q/k rows (and biases) are in the
// interleaved RoPE order the engine runs, whatever the file's order. The context length is not part of it (it does not
// change what an adapter learns). The same weights held in another type
// (an F32 and a Q8_0 copy) have different fingerprints but the same ShapeID.
// Adapters are pinned to the fingerprint; the shape ID is the looser identity
// under which an adapter may be plugged with a warning. docs/fingerprint.md
// gives the definition in full and lists the tests that hold it in place.
func Fingerprint(m *Model) string { return digest(m, true) }

// ShapeID is Fingerprint without tensor types and bytes: same architecture,
// names and shapes.
func ShapeID(m *Model) string { return digest(m, false) }

func digest(m *Model, withData bool) string {
	h := sha256.New()
	u := func(v uint64) { _ = binary.Write(h, binary.LittleEndian, v) }
	s := func(x string) { u(uint64(len(x))); h.Write([]byte(x)) }
	c := m.Config
	s("orchmind-base-v1")
	s(c.ArchName())
	for _, v := range []int{c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KVHeads, c.Vocab} {
		u(uint64(v))
	}
	u(math.Float64bits(float64(c.RopeTheta)))
	u(math.Float64bits(float64(c.NormEps)))
	if c.SharedClassifier {
		u(1)
	} else {
		u(0)
	}
	if c.Arch == ArchGemma2 || c.Arch == ArchGemma3 {
		// What else shapes their forward pass (absent for older
		// architectures, whose fingerprints stay as they were).
		u(uint64(c.HeadDim()))
		u(uint64(c.SlidingWindow))
		u(uint64(c.SlidingPattern))
		for _, v := range []float32{c.RopeLocalTheta, c.RopeScale, c.AttnSoftcap, c.FinalSoftcap, c.QueryScale} {
			u(math.Float64bits(float64(v)))
		}
	}
	m.EachTensor(func(name string, w *tensor.Matrix, norm []float32) {
		s(name)
		if w != nil {
			u(2)
			u(uint64(w.Cols))
			u(uint64(w.Rows))
			if withData {
				u(uint64(w.Type))
				h.Write(w.Data)
			}
			return
		}
		u(1)
		u(uint64(len(norm)))
		if withData {
			u(0) // F32
			writeF32(h, norm)
		}
	})
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func writeF32(h hash.Hash, v []float32) {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	h.Write(b)
}

// EachTensor calls f for every tensor in GGUF naming order: matrices with
// w set, norm vectors with norm set.
func (m *Model) EachTensor(f func(name string, w *tensor.Matrix, norm []float32)) {
	f("token_embd.weight", m.Embed, nil)
	for l := range m.Layers {
		L := &m.Layers[l]
		p := "blk." + itoa(l) + "."
		f(p+"attn_norm.weight", nil, L.AttnNorm)
		f(p+"attn_q.weight", L.Wq, nil)
		f(p+"attn_k.weight", L.Wk, nil)
		f(p+"attn_v.weight", L.Wv, nil)
		for i, name := range [...]string{"attn_q.bias", "attn_k.bias", "attn_v.bias"} {
			if b := L.Bias[ProjQ+Proj(i)]; b != nil {
				f(p+name, nil, b)
			}
		}
		if L.QNorm != nil {
			f(p+"attn_q_norm.weight", nil, L.QNorm)
			f(p+"attn_k_norm.weight", nil, L.KNorm)
		}
		f(p+"attn_output.weight", L.Wo, nil)
		if L.PostAttnNorm != nil {
			f(p+"post_attention_norm.weight", nil, L.PostAttnNorm)
		}
		f(p+"ffn_norm.weight", nil, L.FFNNorm)
		f(p+"ffn_gate.weight", L.Gate, nil)
		f(p+"ffn_up.weight", L.Up, nil)
		f(p+"ffn_down.weight", L.Down, nil)
		if L.PostFFNNorm != nil {
			f(p+"post_ffw_norm.weight", nil, L.PostFFNNorm)
		}
	}
	f("output_norm.weight", nil, m.FinalNorm)
	if !m.SharedClassifier {
		f("output.weight", m.Output, nil)
	}
	if m.RopeFactors != nil {
		f("rope_freqs.weight", nil, m.RopeFactors)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}
