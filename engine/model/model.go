package model

import (
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

	// SlidingWindow is the number of positions (the query's own included)
	// a sliding-window layer attends to; 0: every layer is global. Which
	// layers slide is SlidingPattern's business (see Sliding).
	SlidingWindow int
	// SlidingPattern makes every SlidingPattern-th layer global and the
	// others sliding (Gemma 2: 2, Gemma 3: 6); 0 or 1 with a window: every
	// layer slides.
	SlidingPattern int
	// RopeLocalTheta is the RoPE base of sliding layers where it differs
	// from RopeTheta (Gemma 3: 10,000 against 1,000,000); 0: RopeTheta.
	RopeLocalTheta float32
	// RopeScale divides the RoPE frequencies of global layers (linear
	// scaling, Gemma 3 4B and larger: 8); 0 or 1: none.
	RopeScale float32
	// AttnSoftcap and FinalSoftcap cap attention scores and the output
	// logits at ±c with tanh(x/c)·c (Gemma 2: 50 and 30); 0: no cap.
	AttnSoftcap, FinalSoftcap float32
	// QueryScale is query_pre_attn_scalar: attention scores are divided by
	// √QueryScale instead of √HeadDim (Gemma 2/3); 0: HeadDim.
	QueryScale float32
}

// Architectures the engine runs.
const (
	ArchLlama = "llama"
	ArchQwen2 = "qwen2"
	ArchGemma = "gemma"
	ArchQwen3 = "qwen3"
	// ArchGemma2 is Gemma 2: Gemma with sandwich norms, soft-capping and
	// sliding-window attention on every other layer.
	ArchGemma2 = "gemma2"
	// ArchGemma3 is Gemma 3 (text): Gemma 2 without soft-capping, with
	// per-head q/k norms and 5 sliding : 1 global layers on two RoPE bases.
	ArchGemma3 = "gemma3"
)

// SupportedArchs lists the architectures the engine runs, for messages.
const SupportedArchs = "llama (Llama 2/3, SmolLM, TinyLlama, Mistral), qwen2, qwen3, gemma, gemma2, gemma3 (text)"

// GemmaFamily reports whether the architecture is Gemma 1, 2 or 3: GeGLU,
// embeddings × √Dim, norms that scale by 1 + w in Hugging Face files.
func (c Config) GemmaFamily() bool {
	return c.Arch == ArchGemma || c.Arch == ArchGemma2 || c.Arch == ArchGemma3
}

// SandwichNorm reports whether each block also normalises the outputs of
// attention and of the MLP before adding them to the residual stream
// (Gemma 2 and 3: post-attention and post-feed-forward norms).
func (c Config) SandwichNorm() bool { return c.Arch == ArchGemma2 || c.Arch == ArchGemma3 }

// Sliding reports whether layer l attends only to the last SlidingWindow
// positions.
func (c Config) Sliding(l int) bool {
	if c.SlidingWindow <= 0 {
		return false
	}
	if c.SlidingPattern <= 1 {
		return true
	}
	return l%c.SlidingPattern < c.SlidingPattern-1
}

// AttnScale is the factor attention scores q·k are multiplied by:
// 1/√QueryScale, or 1/√HeadDim.
func (c Config) AttnScale() float32 {
	if c.QueryScale > 0 {
		return float32(1 / math.Sqrt(float64(c.QueryScale)))
	}
	return float32(1 / math.Sqrt(float64(c.HeadDim())))
}

// SoftCap caps x at ±c smoothly: tanh(x/c)·c (Gemma 2's attention and
// output logits).
func SoftCap(x, c float32) float32 { return float32(math.Tanh(float64(x/c))) * c }

// NeoxRope reports whether the architecture's files keep q/k rows in the
// rotate-half ("NEOX") RoPE order in GGUF, as llama.cpp runs them (Qwen2,
// Gemma); the engine permutes them into the interleaved order on load and
// back on write. (Hugging Face folders are rotate-half for every
// architecture.)
func (c Config) NeoxRope() bool {
	return c.Arch == ArchQwen2 || c.Arch == ArchQwen3 || c.GemmaFamily()
}

// QKNorm reports whether each query and key head is RMS-normalised (with
// its own weights of HeadDim values) between the projection and RoPE:
// Qwen3 and Gemma 3.
func (c Config) QKNorm() bool { return c.Arch == ArchQwen3 || c.Arch == ArchGemma3 }

// GELU reports whether the MLP gates with GELU (the tanh approximation,
// PyTorch's gelu(approximate="tanh")) instead of SiLU: Gemma's GeGLU.
func (c Config) GELU() bool { return c.GemmaFamily() }

// EmbedScale is the factor token embeddings are multiplied by before the
// first block: √Dim for Gemma, 1 otherwise. (The tied classifier uses the
// embeddings unscaled.)
func (c Config) EmbedScale() float32 {
	if c.GemmaFamily() {
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
	// (HeadDim values, in the interleaved RoPE order), Qwen3 and Gemma 3
	// only; nil otherwise.
	QNorm, KNorm []float32
	// PostAttnNorm and PostFFNNorm normalise the outputs of attention and
	// of the MLP before the residual adds them (Gemma 2/3's sandwich
	// norms); nil otherwise. FFNNorm is then the pre-feed-forward norm.
	PostAttnNorm, PostFFNNorm []float32
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
	// Skipped says what the file held that the engine does not run (the
	// vision tower of a multimodal Gemma 3), for `model info`; "" for
	// nothing.
	Skipped string
	// HFTextModel is where a Hugging Face multimodal checkpoint keeps the
	// language model ("model.language_model" or "language_model.model" in
	// Gemma 3's), so that PEFT adapters written for it carry those names;
	// "" for a …ForCausalLM and every other file.
	HFTextModel string
}

// RopeInvFreq returns the angle per position of each pair i of a head in a
// global layer: theta^(−2i/HeadDim), divided by RopeFactors[i] when the
// model scales RoPE frequencies and by RopeScale (linear scaling).
func (m *Model) RopeInvFreq() []float64 {
	hd := m.HeadDim()
	f := make([]float64, hd/2)
	for i := range f {
		f[i] = 1 / math.Pow(float64(m.RopeTheta), float64(2*i)/float64(hd))
		if m.RopeFactors != nil {
			f[i] /= float64(m.RopeFactors[i])
		}
		if m.RopeScale > 0 {
			f[i] /= float64(m.RopeScale)
		}
	}
	return f
}

// LocalRopeInvFreq is RopeInvFreq for sliding-window layers where it
// differs from the global layers' (Gemma 3: base RopeLocalTheta, no
// scaling); nil where every layer uses RopeInvFreq.
func (m *Model) LocalRopeInvFreq() []float64 {
	if m.SlidingWindow <= 0 || ((m.RopeLocalTheta == 0 || m.RopeLocalTheta == m.RopeTheta) && (m.RopeScale == 0 || m.RopeScale == 1) && m.RopeFactors == nil) {
		return nil
	}
	theta := m.RopeLocalTheta
	if theta == 0 {
		theta = m.RopeTheta
	}
	hd := m.HeadDim()
	f := make([]float64, hd/2)
	for i := range f {
		f[i] = 1 / math.Pow(float64(theta), float64(2*i)/float64(hd))
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
	m        *Model
	kv       []kvCache // per layer
	delta    Delta
	float32  bool      // SetFloat32: no integer dot products
	invFreq  []float64 // RoPE angle per position of each pair of a head (Model.RopeInvFreq)
	invLocal []float64 // the same for sliding layers where it differs (Model.LocalRopeInvFreq)
	one      [1]int

	// Scratch for a batch of up to cap tokens (grown as needed), row-major.
	cap                    int
	x, xb, xb2, hb, hb2, q []float32
	ao                     []float32 // attention output [n, QDim]
	sg                     []float32 // sigmoid of the gate
	k, v, cos, sin         []float32
	cosL, sinL             []float32 // RoPE of sliding layers (invLocal)
	att, logits            []float32
}

// kvCache holds one layer's keys and values, KVDim values per position. A
// global layer's grows with the positions run (up to SeqLen); a sliding
// layer's is a ring of ring positions, enough for its window and one
// prefill batch, so its memory stays bounded however long the chat.
type kvCache struct {
	k, v []float32
	ring int // > 0: position p lives in slot p % ring
}

// slot is where position pos lives.
func (c *kvCache) slot(pos int) int {
	if c.ring > 0 {
		return pos % c.ring
	}
	return pos
}

// reserve makes room for positions up to end (exclusive), width values each.
func (c *kvCache) reserve(end, width, seqLen int) {
	if c.ring > 0 {
		end = c.ring
	}
	if len(c.k) >= end*width {
		return
	}
	n := min(max(end, 2*len(c.k)/max(width, 1), 64), max(seqLen, end))
	k, v := make([]float32, n*width), make([]float32, n*width)
	copy(k, c.k)
	copy(v, c.v)
	c.k, c.v = k, v
}

// CacheBytes is the memory the State's KV cache holds now.
func (s *State) CacheBytes() int64 {
	var n int64
	for _, c := range s.kv {
		n += 4 * int64(len(c.k)+len(c.v))
	}
	return n
}

// SetDelta plugs d (nil: none) into every later Forward of this State.
func (s *State) SetDelta(d Delta) { s.delta = d }

// SetFloat32 makes later Forwards multiply with float32 activations only
// (on: tensor.MatMul everywhere) instead of the integer dot products that
// generation takes by default on row types where they are faster
// (tensor.MatMulInt8, tensor.Int8Summary). It is for comparisons and
// benchmarks; ORCHMIND_INT8=off does the same for a whole process.
func (s *State) SetFloat32(on bool) { s.float32 = on }

// matMul is tensor.MatMulInt8, or tensor.MatMul after SetFloat32(true).
func (s *State) matMul(out, x []float32, n int, w *tensor.Matrix) {
	if s.float32 {
		tensor.MatMul(out, x, n, w)
		return
	}
	tensor.MatMulInt8(out, x, n, w)
}

// linear computes out = W·x for the n rows of x, plus the plugged delta.
func (s *State) linear(l int, p Proj, out, x []float32, n int) {
	L := &s.m.Layers[l]
	s.matMul(out, x, n, L.Weight(p))
	L.AddBias(p, out, n)
	if s.delta != nil {
		s.delta.AddDelta(l, p, x, n, out)
	}
}

// NewState prepares a sequence of up to SeqLen positions. The KV cache
// grows as positions are run; sliding-window layers keep only their window.
func (m *Model) NewState() *State {
	c := m.Config
	s := &State{m: m, logits: make([]float32, c.Vocab), invFreq: m.RopeInvFreq(), invLocal: m.LocalRopeInvFreq()}
	s.kv = make([]kvCache, c.Layers)
	for l := range s.kv {
		if c.Sliding(l) && c.SlidingWindow+prefillBatch < c.SeqLen {
			s.kv[l].ring = c.SlidingWindow + prefillBatch
		}
	}
	s.grow(1)
	return s
}

// Reserve makes the KV cache hold n positions (at most SeqLen) without
// growing again: for a caller that knows the prompt and how many tokens it
// will generate. Sliding-window layers keep only their window whatever n.
func (s *State) Reserve(n int) {
	c := s.m.Config
	n = min(n, c.SeqLen)
	for l := range s.kv {
		s.kv[l].reserve(n, c.KVDim(), c.SeqLen)
	}
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
	if s.invLocal != nil {
		s.cosL, s.sinL = make([]float32, n*len(s.invLocal)), make([]float32, n*len(s.invLocal))
	}
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

// ropeTables fills cos and sin [n, len(inv)] for positions pos0….
func ropeTables(cos, sin []float32, inv []float64, pos0, n int) {
	half := len(inv)
	for i := range n {
		for j, f := range inv {
			sn, cs := math.Sincos(float64(pos0+i) * f)
			cos[i*half+j], sin[i*half+j] = float32(cs), float32(sn)
		}
	}
}

// normRows RMS-normalises the n rows of x (width len(w)) in place.
func normRows(x, w []float32, n int, eps float32) {
	d := len(w)
	for i := range n {
		RMSNorm(x[i*d:(i+1)*d], x[i*d:(i+1)*d], w, eps)
	}
}

// run takes the tokens ids at positions pos0… through every layer together
// and returns the logits of the last one.
func (s *State) run(ids []int, pos0 int) []float32 {
	m, c := s.m, s.m.Config
	n, dim, kvDim, hid, qd := len(ids), c.Dim, c.KVDim(), c.HiddenDim, c.QDim()
	s.grow(n)

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
	}
	ropeTables(s.cos, s.sin, s.invFreq, pos0, n)
	if s.invLocal != nil {
		ropeTables(s.cosL, s.sinL, s.invLocal, pos0, n)
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
		cosT, sinT := s.cos, s.sin
		if s.invLocal != nil && c.Sliding(l) {
			cosT, sinT = s.cosL, s.sinL
		}
		for i := range n {
			cs, sn := cosT[i*half:(i+1)*half], sinT[i*half:(i+1)*half]
			rotate(q[i*qd:(i+1)*qd], cs, sn)
			rotate(k[i*kvDim:(i+1)*kvDim], cs, sn)
		}
		kc := &s.kv[l]
		kc.reserve(pos0+n, kvDim, c.SeqLen)
		for i := range n {
			o := kc.slot(pos0+i) * kvDim
			copy(kc.k[o:o+kvDim], k[i*kvDim:(i+1)*kvDim])
			copy(kc.v[o:o+kvDim], v[i*kvDim:(i+1)*kvDim])
		}
		ao := s.ao[:n*qd]
		s.attend(l, q, ao, n, pos0)
		s.linear(l, ProjO, xb2, ao, n)
		if L.PostAttnNorm != nil {
			normRows(xb2, L.PostAttnNorm, n, c.NormEps)
		}
		for i := range x {
			x[i] += xb2[i]
		}
		for i := range n {
			RMSNorm(xb[i*dim:(i+1)*dim], x[i*dim:(i+1)*dim], L.FFNNorm, c.NormEps)
		}
		s.linear(l, ProjGate, hb, xb, n)
		s.linear(l, ProjUp, hb2, xb, n)
		if c.GELU() {
			sg := s.sg[:n*hid]
			tensor.GELUGate(sg, hb) // GELU(g) = g·sg
			for i, g := range hb {
				hb[i] = g * sg[i] * hb2[i]
			}
		} else {
			sg := s.sg[:n*hid]
			tensor.Sigmoid(sg, hb)
			for i, g := range hb {
				hb[i] = g * sg[i] * hb2[i]
			}
		}
		s.linear(l, ProjDown, xb, hb, n)
		if L.PostFFNNorm != nil {
			normRows(xb, L.PostFFNNorm, n, c.NormEps)
		}
		for i := range x {
			x[i] += xb[i]
		}
	}
	last := x[(n-1)*dim:]
	RMSNorm(last, last, m.FinalNorm, c.NormEps)
	s.matMul(s.logits, last, 1, m.Output)
	if c.FinalSoftcap > 0 {
		for i, v := range s.logits {
			s.logits[i] = SoftCap(v, c.FinalSoftcap)
		}
	}
	return s.logits
}

// attend writes into out [n, QDim] causal attention of the n queries q
// [n, QDim] (positions pos0…) over the cached keys and values of layer l:
// the last SlidingWindow positions on a sliding layer, scores soft-capped
// where the model says so.
func (s *State) attend(l int, q, out []float32, n, pos0 int) {
	c := s.m.Config
	dim, hd, kvDim := c.QDim(), c.HeadDim(), c.KVDim()
	group := c.Heads / c.KVHeads
	scale := c.AttnScale()
	kc := &s.kv[l]
	keys, values := kc.k, kc.v
	sliding := c.Sliding(l)
	capC := c.AttnSoftcap
	head := func(i, h int, att []float32) {
		pos := pos0 + i
		from := 0
		if sliding {
			from = max(0, pos-c.SlidingWindow+1)
		}
		qh := q[i*dim+h*hd : i*dim+(h+1)*hd]
		kvOff := (h / group) * hd
		att = att[:pos+1-from]
		for t := from; t <= pos; t++ {
			a := tensor.Dot(qh, keys[kc.slot(t)*kvDim+kvOff:]) * scale
			if capC > 0 {
				a = SoftCap(a, capC)
			}
			att[t-from] = a
		}
		Softmax(att)
		o := out[i*dim+h*hd : i*dim+(h+1)*hd]
		clear(o)
		for t := from; t <= pos; t++ {
			so := kc.slot(t)*kvDim + kvOff
			tensor.Axpy(att[t-from], values[so:so+hd], o)
		}
	}
	if n == 1 {
		if len(s.att) < pos0+1 {
			s.att = make([]float32, max(pos0+1, 2*len(s.att)))
		}
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
