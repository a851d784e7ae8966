// Package model holds a Llama-family base model with its weights kept in
// their stored (possibly quantized) types, and runs its forward pass.
package model

import (
	"math"

	"orchmind/trainer/tensor"
)

// Config is the architecture of a Llama-family model.
type Config struct {
	Dim, HiddenDim     int // model width and MLP width
	Layers             int
	Heads, KVHeads     int // query heads and key/value heads (grouped-query attention)
	Vocab, SeqLen      int
	NormEps, RopeTheta float32
	SharedClassifier   bool // the output projection is the token embedding
	// Arch is the architecture: "" or ArchLlama for Llama (and Mistral,
	// SmolLM), ArchQwen2 for Qwen2 (Llama with q, k and v biases).
	Arch string
}

// Architectures the engine runs.
const (
	ArchLlama = "llama"
	ArchQwen2 = "qwen2"
)

// ArchName is the GGUF architecture name of c ("llama" when Arch is empty).
func (c Config) ArchName() string {
	if c.Arch == "" {
		return ArchLlama
	}
	return c.Arch
}

// QKVBias reports whether the architecture adds biases to the query, key
// and value projections (Qwen2).
func (c Config) QKVBias() bool { return c.Arch == ArchQwen2 }

// HeadDim is the width of one attention head.
func (c Config) HeadDim() int { return c.Dim / c.Heads }

// KVDim is the width of the key and value projections.
func (c Config) KVDim() int { return c.KVHeads * c.HeadDim() }

// Layer holds one transformer block. Projections are [out, in] matrices.
type Layer struct {
	AttnNorm, FFNNorm []float32
	Wq, Wk, Wv, Wo    *tensor.Matrix
	Gate, Down, Up    *tensor.Matrix // w1, w2, w3 in llama2.c naming
	// Bias holds the optional bias of each projection (Qwen2: q, k, v), in
	// the same row order as the matrix; nil for none.
	Bias [NumProj][]float32
}

// AddBias adds projection p's bias, if it has one, to each of the n rows of
// out.
func (L *Layer) AddBias(p Proj, out []float32, n int) {
	b := L.Bias[p]
	if b == nil {
		return
	}
	for t := range n {
		row := out[t*len(b) : (t+1)*len(b)]
		for i, v := range b {
			row[i] += v
		}
	}
}

// Proj names one of the seven projections of a block, the places a LoRA
// adapter can attach.
type Proj int

// The projections of a Llama block, in PEFT order.
const (
	ProjQ Proj = iota
	ProjK
	ProjV
	ProjO
	ProjGate
	ProjUp
	ProjDown
	NumProj
)

var projNames = [NumProj]string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// String is the PEFT module name of p (q_proj, …, down_proj).
func (p Proj) String() string {
	if p < 0 || p >= NumProj {
		return "proj?"
	}
	return projNames[p]
}

// ParseProj maps a PEFT module name to its Proj.
func ParseProj(name string) (Proj, bool) {
	for i, n := range projNames {
		if n == name {
			return Proj(i), true
		}
	}
	return 0, false
}

// Weight returns the matrix of projection p.
func (L *Layer) Weight(p Proj) *tensor.Matrix {
	switch p {
	case ProjQ:
		return L.Wq
	case ProjK:
		return L.Wk
	case ProjV:
		return L.Wv
	case ProjO:
		return L.Wo
	case ProjGate:
		return L.Gate
	case ProjUp:
		return L.Up
	case ProjDown:
		return L.Down
	}
	return nil
}

// Delta adds a low-rank update to a projection's output: for the n rows of
// x (each the projection's input), out += ΔW·x. It is how LoRA adapters are
// plugged into a frozen base without touching its weights.
type Delta interface {
	AddDelta(layer int, p Proj, x []float32, n int, out []float32)
}

// Model is a loaded, read-only base model. Several States may run on one
// Model concurrently.
type Model struct {
	Config
	Embed     *tensor.Matrix // [vocab, dim]
	Layers    []Layer
	FinalNorm []float32
	Output    *tensor.Matrix // [vocab, dim]; the same matrix as Embed when shared
}

// State is one sequence being run through the model: its KV cache and
// scratch buffers.
type State struct {
	m                      *Model
	keys, values           [][]float32 // per layer: [SeqLen, KVDim]
	x, xb, xb2, hb, hb2, q []float32
	k, v, att, logits      []float32
	delta                  Delta
}

// SetDelta plugs d (nil: none) into every later Forward of this State.
func (s *State) SetDelta(d Delta) { s.delta = d }

// linear computes out = W·x for the n rows of x, plus the plugged delta.
func (s *State) linear(l int, p Proj, out, x []float32, n int) {
	L := &s.m.Layers[l]
	tensor.MatMul(out, x, n, L.Weight(p))
	L.AddBias(p, out, n)
	if s.delta != nil {
		s.delta.AddDelta(l, p, x, n, out)
	}
}

// NewState allocates a KV cache for up to SeqLen positions.
func (m *Model) NewState() *State {
	c := m.Config
	s := &State{m: m,
		x: make([]float32, c.Dim), xb: make([]float32, c.Dim), xb2: make([]float32, c.Dim),
		hb: make([]float32, c.HiddenDim), hb2: make([]float32, c.HiddenDim), q: make([]float32, c.Dim),
		k: make([]float32, c.KVDim()), v: make([]float32, c.KVDim()),
		att: make([]float32, c.SeqLen), logits: make([]float32, c.Vocab),
	}
	for range c.Layers {
		s.keys = append(s.keys, make([]float32, c.SeqLen*c.KVDim()))
		s.values = append(s.values, make([]float32, c.SeqLen*c.KVDim()))
	}
	return s
}

// Forward runs token at position pos (0 ≤ pos < SeqLen, positions fed in
// order) and returns the logits over the vocabulary. The returned slice is
// reused by the next call.
func (s *State) Forward(token, pos int) []float32 {
	m, c := s.m, s.m.Config
	hd, kvDim := c.HeadDim(), c.KVDim()
	group := c.Heads / c.KVHeads
	m.Embed.DequantizeRow(token, s.x)
	for l := range m.Layers {
		L := &m.Layers[l]
		RMSNorm(s.xb, s.x, L.AttnNorm, c.NormEps)
		s.linear(l, ProjQ, s.q, s.xb, 1)
		s.linear(l, ProjK, s.k, s.xb, 1)
		s.linear(l, ProjV, s.v, s.xb, 1)
		RoPE(s.q, pos, hd, c.RopeTheta)
		RoPE(s.k, pos, hd, c.RopeTheta)
		copy(s.keys[l][pos*kvDim:], s.k)
		copy(s.values[l][pos*kvDim:], s.v)
		scale := float32(1 / math.Sqrt(float64(hd)))
		for h := 0; h < c.Heads; h++ {
			q := s.q[h*hd : (h+1)*hd]
			kvOff := (h / group) * hd
			att := s.att[:pos+1]
			for t := 0; t <= pos; t++ {
				att[t] = tensor.Dot(q, s.keys[l][t*kvDim+kvOff:]) * scale
			}
			Softmax(att)
			out := s.xb[h*hd : (h+1)*hd]
			clear(out)
			for t := 0; t <= pos; t++ {
				tensor.Axpy(att[t], s.values[l][t*kvDim+kvOff:t*kvDim+kvOff+hd], out)
			}
		}
		s.linear(l, ProjO, s.xb2, s.xb, 1)
		for i := range s.x {
			s.x[i] += s.xb2[i]
		}
		RMSNorm(s.xb, s.x, L.FFNNorm, c.NormEps)
		s.linear(l, ProjGate, s.hb, s.xb, 1)
		s.linear(l, ProjUp, s.hb2, s.xb, 1)
		for i, g := range s.hb {
			s.hb[i] = g / (1 + float32(math.Exp(float64(-g)))) * s.hb2[i]
		}
		s.linear(l, ProjDown, s.xb, s.hb, 1)
		for i := range s.x {
			s.x[i] += s.xb[i]
		}
	}
	RMSNorm(s.x, s.x, m.FinalNorm, c.NormEps)
	tensor.MatMul(s.logits, s.x, 1, m.Output)
	return s.logits
}

// RMSNorm writes x/rms(x)·w into out (out may be x).
func RMSNorm(out, x, w []float32, eps float32) {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	ss = ss/float32(len(x)) + eps
	inv := float32(1 / math.Sqrt(float64(ss)))
	for i, v := range x {
		out[i] = w[i] * (inv * v)
	}
}

// RoPE rotates each head of x in place at position pos, in the interleaved
// layout of llama2.c and GGUF: the pair (x[2i], x[2i+1]) of a head turns by
// pos·theta^(−2i/headDim).
func RoPE(x []float32, pos, headDim int, theta float32) {
	for i := 0; i < len(x); i += 2 {
		j := i % headDim
		freq := 1 / math.Pow(float64(theta), float64(j)/float64(headDim))
		sin, cos := math.Sincos(float64(pos) * freq)
		fc, fs := float32(cos), float32(sin)
		a, b := x[i], x[i+1]
		x[i] = a*fc - b*fs
		x[i+1] = a*fs + b*fc
	}
}

// Softmax normalises x in place (numerically stable).
func Softmax(x []float32) {
	mx := x[0]
	for _, v := range x[1:] {
		mx = max(mx, v)
	}
	var sum float32
	for i, v := range x {
		x[i] = float32(math.Exp(float64(v - mx)))
		sum += x[i]
	}
	for i := range x {
		x[i] /= sum
	}
}
