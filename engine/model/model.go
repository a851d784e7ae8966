package model

import (
	"fmt"
	"math"

	"orchmind/engine/parallel"
	"orchmind/engine/tensor"
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
	// SmolLM), ArchQwen2 for Qwen2 (Llama with q, k and v biases), ArchGemma
	// for Gemma (GELU MLP, embeddings scaled by √Dim, tied classifier),
	// ArchQwen3 for Qwen3 (RMSNorm on each query and key head).
	Arch string
	// HeadSize is the width of one attention head where it is not
	// Dim/Heads (Qwen3: 16 heads of 128 in a width of 1024); 0 means
	// Dim/Heads. Query and attention-output widths are Heads·HeadDim().
	HeadSize int
}

// Architectures the engine runs.
const (
	ArchLlama = "llama"
	ArchQwen2 = "qwen2"
	ArchGemma = "gemma"
	ArchQwen3 = "qwen3"
)

// NeoxRope reports whether the architecture's files keep q/k rows in the
// rotate-half ("NEOX") RoPE order in GGUF, as llama.cpp runs them (Qwen2,
// Gemma); the engine permutes them into the interleaved order on load and
// back on write. (Hugging Face folders are rotate-half for every
// architecture.)
func (c Config) NeoxRope() bool {
	return c.Arch == ArchQwen2 || c.Arch == ArchGemma || c.Arch == ArchQwen3
}

// QKNorm reports whether each query and key head is RMS-normalised (with
// its own weights of HeadDim values) between the projection and RoPE:
// Qwen3.
func (c Config) QKNorm() bool { return c.Arch == ArchQwen3 }

// GELU reports whether the MLP gates with GELU (the tanh approximation,
// PyTorch's gelu(approximate="tanh")) instead of SiLU: Gemma's GeGLU.
func (c Config) GELU() bool { return c.Arch == ArchGemma }

// EmbedScale is the factor token embeddings are multiplied by before the
// first block: √Dim for Gemma, 1 otherwise. (The tied classifier uses the
// embeddings unscaled.)
func (c Config) EmbedScale() float32 {
	if c.Arch == ArchGemma {
		return float32(math.Sqrt(float64(c.Dim)))
	}
	return 1
}

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
func (c Config) HeadDim() int {
	if c.HeadSize > 0 {
		return c.HeadSize
	}
	return c.Dim / c.Heads
}

// QDim is the width of the query projection and of the attention output
// (the input of the output projection): Heads·HeadDim, Dim for most models.
func (c Config) QDim() int { return c.Heads * c.HeadDim() }

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
	// QNorm and KNorm are the per-head RMSNorm weights of queries and keys
	// (HeadDim values, in the interleaved RoPE order), Qwen3 only; nil
	// otherwise.
	QNorm, KNorm []float32
}

// NormHeads RMS-normalises each of the rows·heads heads of x (head width
// len(w)) in place with weights w; nil w leaves x as it is.
func NormHeads(x, w []float32, rows, heads int, eps float32) {
	if w == nil {
		return
	}
	hd := len(w)
	for h := range rows * heads {
		v := x[h*hd : (h+1)*hd]
		RMSNorm(v, v, w, eps)
	}
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
	// RopeFactors, when not nil, divide the RoPE frequency of each pair of a
	// head (HeadDim/2 values): Llama 3.1+ "llama3" RoPE scaling, stored in
	// GGUF as rope_freqs.weight.
	RopeFactors []float32
}

// RopeInvFreq returns the angle per position of each pair i of a head:
// theta^(−2i/HeadDim), divided by RopeFactors[i] when the model scales
// RoPE frequencies.
func (m *Model) RopeInvFreq() []float64 {
	hd := m.HeadDim()
	f := make([]float64, hd/2)
	for i := range f {
		f[i] = 1 / math.Pow(float64(m.RopeTheta), float64(2*i)/float64(hd))
		if m.RopeFactors != nil {
			f[i] /= float64(m.RopeFactors[i])
		}
	}
	return f
}

// Llama3RopeFactors computes the RoPE frequency factors of Llama 3.1+'s
// "llama3" scaling (rope_scaling factor, low_freq_factor, high_freq_factor,
// original_max_position_embeddings) for heads of headDim, as transformers
// and llama.cpp's converter do: wavelengths shorter than the original
// context over high_freq_factor keep their frequency, longer than it over
// low_freq_factor are divided by factor, and those between are blended.
func Llama3RopeFactors(theta float32, headDim int, factor, lowFreq, highFreq float64, original int) []float32 {
	out := make([]float32, headDim/2)
	lowWave, highWave := float64(original)/lowFreq, float64(original)/highFreq
	for i := range out {
		freq := 1 / math.Pow(float64(theta), float64(2*i)/float64(headDim))
		wave := 2 * math.Pi / freq
		switch {
		case wave < highWave:
			out[i] = 1
		case wave > lowWave:
			out[i] = float32(factor)
		default:
			smooth := (float64(original)/wave - lowFreq) / (highFreq - lowFreq)
			out[i] = float32(1 / ((1-smooth)/factor + smooth))
		}
	}
	return out
}

// State is one sequence being run through the model: its KV cache and
// scratch buffers.
type State struct {
	m            *Model
	keys, values [][]float32 // per layer: [positions held, KVDim]; grown as positions are used, up to SeqLen
	positions    int         // positions keys and values hold
	delta        Delta
	invFreq      []float64 // RoPE angle per position of each pair of a head (Model.RopeInvFreq)
	one          [1]int

	// Scratch for a batch of up to cap tokens (grown as needed), row-major.
	cap                    int
	x, xb, xb2, hb, hb2, q []float32
	ao                     []float32 // attention output [n, QDim]
	sg                     []float32 // sigmoid of the gate
	k, v, cos, sin         []float32
	att, logits            []float32
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

// NewState makes a State for a sequence of up to SeqLen positions. Its KV
// cache holds only the positions used so far, growing as later ones are
// run (Reserve sets room ahead): the memory follows the sequence actually
// run, not the context length the model's file claims.
func (m *Model) NewState() *State {
	c := m.Config
	s := &State{m: m, keys: make([][]float32, c.Layers), values: make([][]float32, c.Layers),
		logits: make([]float32, c.Vocab), invFreq: m.RopeInvFreq()}
	s.grow(1)
	return s
}

// minPositions is the KV cache's first size, in positions.
const minPositions = 64

// Reserve makes the KV cache hold n positions (at most SeqLen) without
// growing again: for a caller that knows the prompt and how many tokens it
// will generate.
func (s *State) Reserve(n int) { s.room(min(n, s.m.SeqLen)) }

// room makes the KV cache and the attention scratch hold n positions,
// doubling (up to SeqLen) so that a sequence run one token at a time
// copies its cache only a logarithmic number of times.
func (s *State) room(n int) {
	if n <= s.positions {
		return
	}
	c := s.m.Config
	if n > c.SeqLen {
		panic(fmt.Sprintf("model: position %d beyond the context of %d", n-1, c.SeqLen))
	}
	size := min(max(n, 2*s.positions, minPositions), c.SeqLen)
	kv := c.KVDim()
	for l := range s.keys {
		k, v := make([]float32, size*kv), make([]float32, size*kv)
		copy(k, s.keys[l])
		copy(v, s.values[l])
		s.keys[l], s.values[l] = k, v
	}
	s.att = make([]float32, size)
	s.positions = size
}

// grow makes the scratch buffers hold n tokens.
func (s *State) grow(n int) {
	if n <= s.cap {
		return
	}
	c := s.m.Config
	s.cap = n
	s.x, s.xb, s.xb2, s.q = make([]float32, n*c.Dim), make([]float32, n*c.Dim), make([]float32, n*c.Dim), make([]float32, n*c.QDim())
	s.ao = make([]float32, n*c.QDim())
	s.hb, s.hb2, s.sg = make([]float32, n*c.HiddenDim), make([]float32, n*c.HiddenDim), make([]float32, n*c.HiddenDim)
	s.k, s.v = make([]float32, n*c.KVDim()), make([]float32, n*c.KVDim())
	s.cos, s.sin = make([]float32, n*len(s.invFreq)), make([]float32, n*len(s.invFreq))
}

// Forward runs token at position pos (0 ≤ pos < SeqLen, positions fed in
// order) and returns the logits over the vocabulary. The returned slice is
// reused by the next call.
func (s *State) Forward(token, pos int) []float32 {
	s.one[0] = token
	return s.run(s.one[:], pos)
}

// prefillBatch is the most tokens Prefill runs through the model at once:
// it bounds the scratch memory (for SmolLM-135M, ~6 MB) while keeping the
// matrix kernels on their blocked paths.
const prefillBatch = 256

// Prefill runs the tokens ids at positions pos0, pos0+1, … (0 ≤ pos0,
// pos0+len(ids) ≤ SeqLen) and returns the logits after the last one; the KV
// cache then holds every position, as if Forward had been called for each
// token in order. The tokens go through each layer together, so every
// weight matrix is read once per batch of up to 256 tokens instead of once
// per token (prompt processing). Logits equal Forward's up to float32
// summation order. The returned slice is reused by the next call.
func (s *State) Prefill(ids []int, pos0 int) []float32 {
	var logits []float32
	for i := 0; i < len(ids); i += prefillBatch {
		logits = s.run(ids[i:min(i+prefillBatch, len(ids))], pos0+i)
	}
	return logits
}

// run takes the tokens ids at positions pos0… through every layer together
// and returns the logits of the last one.
func (s *State) run(ids []int, pos0 int) []float32 {
	m, c := s.m, s.m.Config
	n, dim, kvDim, hid, qd := len(ids), c.Dim, c.KVDim(), c.HiddenDim, c.QDim()
	s.grow(n)
	s.room(pos0 + n)
	x, xb, xb2, q, k, v, hb, hb2 := s.x[:n*dim], s.xb[:n*dim], s.xb2[:n*dim], s.q[:n*qd], s.k[:n*kvDim], s.v[:n*kvDim], s.hb[:n*hid], s.hb2[:n*hid]
	half := len(s.invFreq)
	scale := c.EmbedScale()
	for i, id := range ids {
		m.Embed.DequantizeRow(id, x[i*dim:(i+1)*dim])
		if scale != 1 {
			for j := range x[i*dim : (i+1)*dim] {
				x[i*dim+j] *= scale
			}
		}
		for j, f := range s.invFreq {
			sin, cos := math.Sincos(float64(pos0+i) * f)
			s.cos[i*half+j], s.sin[i*half+j] = float32(cos), float32(sin)
		}
	}
	for l := range m.Layers {
		L := &m.Layers[l]
		for i := range n {
			RMSNorm(xb[i*dim:(i+1)*dim], x[i*dim:(i+1)*dim], L.AttnNorm, c.NormEps)
		}
		s.linear(l, ProjQ, q, xb, n)
		s.linear(l, ProjK, k, xb, n)
		s.linear(l, ProjV, v, xb, n)
		NormHeads(q, L.QNorm, n, c.Heads, c.NormEps)
		NormHeads(k, L.KNorm, n, c.KVHeads, c.NormEps)
		for i := range n {
			cs, sn := s.cos[i*half:(i+1)*half], s.sin[i*half:(i+1)*half]
			rotate(q[i*qd:(i+1)*qd], cs, sn)
			rotate(k[i*kvDim:(i+1)*kvDim], cs, sn)
		}
		copy(s.keys[l][pos0*kvDim:], k)
		copy(s.values[l][pos0*kvDim:], v)
		ao := s.ao[:n*qd]
		s.attend(l, q, ao, n, pos0)
		s.linear(l, ProjO, xb2, ao, n)
		for i := range x {
			x[i] += xb2[i]
		}
		for i := range n {
			RMSNorm(xb[i*dim:(i+1)*dim], x[i*dim:(i+1)*dim], L.FFNNorm, c.NormEps)
		}
		s.linear(l, ProjGate, hb, xb, n)
		s.linear(l, ProjUp, hb2, xb, n)
		if c.GELU() {
			for i, g := range hb {
				hb[i] = GELU(g) * hb2[i]
			}
		} else {
			sg := s.sg[:n*hid]
			tensor.Sigmoid(sg, hb)
			for i, g := range hb {
				hb[i] = g * sg[i] * hb2[i]
			}
		}
		s.linear(l, ProjDown, xb, hb, n)
		for i := range x {
			x[i] += xb[i]
		}
	}
	last := x[(n-1)*dim:]
	RMSNorm(last, last, m.FinalNorm, c.NormEps)
	tensor.MatMul(s.logits, last, 1, m.Output)
	return s.logits
}

// attend writes into out [n, QDim] causal attention of the n queries q
// [n, QDim] (positions pos0…) over the cached keys and values of layer l.
func (s *State) attend(l int, q, out []float32, n, pos0 int) {
	c := s.m.Config
	dim, hd, kvDim := c.QDim(), c.HeadDim(), c.KVDim()
	group := c.Heads / c.KVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	keys, values := s.keys[l], s.values[l]
	head := func(i, h int, att []float32) {
		pos := pos0 + i
		qh := q[i*dim+h*hd : i*dim+(h+1)*hd]
		kvOff := (h / group) * hd
		att = att[:pos+1]
		for t := 0; t <= pos; t++ {
			att[t] = tensor.Dot(qh, keys[t*kvDim+kvOff:]) * scale
		}
		Softmax(att)
		o := out[i*dim+h*hd : i*dim+(h+1)*hd]
		clear(o)
		for t := 0; t <= pos; t++ {
			tensor.Axpy(att[t], values[t*kvDim+kvOff:t*kvDim+kvOff+hd], o)
		}
	}
	if n == 1 {
		for h := range c.Heads {
			head(0, h, s.att)
		}
		return
	}
	parallel.For(n*c.Heads, parallel.Workers(), func(lo, hi int) {
		att := make([]float32, pos0+n)
		for j := lo; j < hi; j++ {
			head(j/c.Heads, j%c.Heads, att)
		}
	})
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

// rotate applies RoPE to every head of x given the cos and sin of each
// pair's angle (cos[i], sin[i] for the pair (x[2i], x[2i+1]) of a head):
// the same values RoPE computes, with the trigonometry done once per
// position instead of once per head and layer.
func rotate(x, cos, sin []float32) {
	half := len(cos)
	for h := 0; h < len(x); h += 2 * half {
		xh := x[h : h+2*half]
		for i := range half {
			a, b := xh[2*i], xh[2*i+1]
			xh[2*i] = a*cos[i] - b*sin[i]
			xh[2*i+1] = a*sin[i] + b*cos[i]
		}
	}
}

// Softmax normalises x in place (numerically stable).
func Softmax(x []float32) {
	sum := tensor.ExpSub(x, tensor.Max(x))
	inv := 1 / sum
	for i := range x {
		x[i] *= inv
	}
}

// geluC is √(2/π), the constant of GELU's tanh approximation.
const geluC = 0.7978845608028654

// GELU is the tanh approximation of the Gaussian error linear unit,
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): PyTorch's
// gelu(approximate="tanh"), the gate of Gemma's MLP.
func GELU(x float32) float32 {
	v := float64(x)
	return float32(0.5 * v * (1 + math.Tanh(geluC*(v+0.044715*v*v*v))))
}

// GELUGrad is the derivative of GELU at x.
func GELUGrad(x float32) float32 {
	v := float64(x)
	t := math.Tanh(geluC * (v + 0.044715*v*v*v))
	return float32(0.5*(1+t) + 0.5*v*(1-t*t)*geluC*(1+3*0.044715*v*v))
}
