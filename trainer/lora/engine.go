package lora

import (
	"fmt"
	"math"
	"math/rand/v2"

	"orchmind/adapters"
	"orchmind/engine/model"
	"orchmind/engine/tensor"
	"orchmind/trainer/hparams"
)

// Seq is one training sequence.
type Seq struct {
	IDs []int
	// Mask[i] says whether token i counts in the loss (it is predicted from
	// IDs[:i]). Nil means every token after the first counts.
	Mask []bool
	// Starts are the offsets where packed examples begin (nil: one example).
	// Attention never crosses into an earlier example and RoPE positions
	// restart at each start, so a packed row trains exactly like its
	// examples one by one.
	Starts []int
}

// Engine runs the training forward and backward passes of a frozen model
// with one trainable adapter. Gradients of the adapter's A and B accumulate
// in Grads until ZeroGrads. An Engine is not safe for concurrent use; its
// matrix products use all cores.
type Engine struct {
	m     *model.Model
	ad    *adapters.Adapter
	scale float32
	pairs [][model.NumProj]*adapters.Pair
	// Grads has the adapter's shape and holds ∂loss/∂A and ∂loss/∂B.
	Grads *adapters.Adapter
	grads [][model.NumProj]*adapters.Pair

	// Dropout is the LoRA dropout probability on the adapter's input
	// (PEFT's lora_dropout); it applies in Accumulate, never in Loss.
	Dropout float32
	// Checkpoint keeps only each layer's input during the forward pass and
	// recomputes the layer in the backward pass: less memory, ~30% more work.
	Checkpoint bool
	// BF16 takes the frozen base's products (the seven projections and the
	// classifier, forward and backward) and attention's (scores, values and
	// their gradients) in bfloat16 with float32 sums, on the CPU's AMX tiles
	// or with AVX512-BF16 (see tensor.BF16Tiles; without either it changes
	// nothing): QLoRA's compute type, faster there. The adapter's own products
	// and gradients, norms, softmax, the loss and the optimiser stay
	// float32.
	BF16        bool
	seed, draws uint64

	cos, sin   []float32 // RoPE tables [maxT, headDim/2]
	cosL, sinL []float32 // the same for sliding layers where their RoPE differs (Gemma 3), else nil
	maxT       int
	bytes      int64 // allocated by grow
	caches     []layerCache
	xin        [][]float32 // per layer input (checkpoint mode)
	x, xL      []float32
	xf, dx     []float32
	inv        []float32
	dxf        []float32
	segStart   []int
	pos        []int
	// backward scratch
	dAct, dH3, dXn, dAo, dq, dk, dv, tmpIn []float32
	g, ut, loraTmp                         []float32
	dSg                                    []float32 // sigmoid of the gate, recomputed in backward
	dkt, dvt                               []float32
	att                                    attScratch
	dbt                                    []float32
	rows                                   []int
	dPost                                  []float32 // gradient through a sandwich norm
	loss                                   lossScratch
}

// lossScratch holds the loss's buffers (see head): the logits of every
// counted token for one slice of the vocabulary at a time.
type lossScratch struct {
	slice                     int       // vocabulary rows per slice (hparams.LossSlice)
	x                         []float32 // the counted tokens' final-norm outputs [rows padded to 32, D]
	u, tmp                    []float32 // Σ exp(z−max)·∂z/∂l·W rows, and one slice's part [padded, D]
	logits                    []float32 // [counted rows padded to 32, slice]
	capped                    []float32 // tanh(l/c) of soft-capped logits (Gemma 2) [counted, slice]
	mx, sum, target, targetTh []float32 // per token: running max, Σ exp(z−max), the target's logit and tanh
	wrow                      []float32 // one dequantized output row [D]
}

// attScratch holds one head's operands for the attention matrix products.
type attScratch struct {
	qh, oh, kg   []float32 // [T, headDim]
	ds           []float32 // [T, T]
	qT, doT, tmp []float32 // [headDim, T]
}

type layerCache struct {
	xin, xn1, q, k, v, ao, xmid, xn2, h1, h3, act []float32
	inv1, inv2                                    []float32
	p                                             []float32 // attention probabilities [heads, T, T]
	kt, vt                                        []float32 // keys and values transposed: [kvHeads, headDim, T]
	u                                             [model.NumProj][]float32
	drop                                          [model.NumProj][]float32 // dropout factors (0 or 1/(1-p)) of the LoRA input
	xd                                            [model.NumProj][]float32 // dropped-out LoRA input
	// Qwen3's per-head norms: q and k before them and their inverse RMS.
	qpre, kpre, qinv, kinv []float32
	// Gemma 2/3's sandwich norms: the attention and MLP outputs before
	// their post-norms, and the inverse RMS.
	attnPre, mlpPre, invPA, invPF []float32
	// th holds tanh(score/cap) of soft-capped attention [heads, T, T].
	th []float32
}

// NewEngine prepares training of ad (its A and B are updated in place by
// the optimiser) on the frozen model m. seed drives dropout.
func NewEngine(m *model.Model, ad *adapters.Adapter, seed uint64) (*Engine, error) {
	if err := Check(m, ad); err != nil {
		return nil, err
	}
	e := &Engine{m: m, ad: ad, scale: Scale(ad), seed: seed,
		pairs: make([][model.NumProj]*adapters.Pair, len(m.Layers)),
		grads: make([][model.NumProj]*adapters.Pair, len(m.Layers)),
		Grads: &adapters.Adapter{Rank: ad.Rank, Alpha: ad.Alpha, TargetModules: ad.TargetModules, Pairs: map[adapters.Key]*adapters.Pair{}},
	}
	for k, p := range ad.Pairs {
		pr, _ := projOf(k.Module)
		e.pairs[k.Layer][pr] = p
		g := &adapters.Pair{In: p.In, Out: p.Out, A: make([]float32, len(p.A)), B: make([]float32, len(p.B))}
		e.grads[k.Layer][pr] = g
		e.Grads.Pairs[k] = g
	}
	return e, nil
}

// Draws is the number of training passes run so far; with the seed it
// fixes the dropout masks of the next pass.
func (e *Engine) Draws() uint64 { return e.draws }

// SetDraws restores the pass counter (when resuming from a checkpoint).
func (e *Engine) SetDraws(n uint64) { e.draws = n }

// ZeroGrads clears the accumulated gradients.
func (e *Engine) ZeroGrads() {
	for _, g := range e.Grads.Pairs {
		clear(g.A)
		clear(g.B)
	}
}

// grow makes the buffers fit sequences of T tokens.
func (e *Engine) grow(T int) {
	if T <= e.maxT {
		return
	}
	c, r := e.m.Config, e.ad.Rank
	D, KV, F, H, QD := c.Dim, c.KVDim(), c.HiddenDim, c.Heads, c.QDim()
	e.bytes = 0
	f := func(n int) []float32 { e.bytes += 4 * int64(n); return make([]float32, n) }
	n := len(e.m.Layers)
	if e.Checkpoint {
		n = 1
		e.xin = make([][]float32, len(e.m.Layers))
		for l := range e.xin {
			e.xin[l] = f(T * D)
		}
	}
	e.caches = make([]layerCache, n)
	for i := range e.caches {
		lc := &e.caches[i]
		lc.xin, lc.xn1, lc.q, lc.ao, lc.xmid, lc.xn2 = f(T*D), f(T*D), f(T*QD), f(T*QD), f(T*D), f(T*D)
		lc.k, lc.v = f(T*KV), f(T*KV)
		lc.h1, lc.h3, lc.act = f(T*F), f(T*F), f(T*F)
		lc.inv1, lc.inv2 = f(T), f(T)
		lc.p = f(H * T * T)
		lc.kt, lc.vt = f(KV*T), f(KV*T)
		if c.QKNorm() {
			lc.qpre, lc.kpre, lc.qinv, lc.kinv = f(T*QD), f(T*KV), f(T*H), f(T*c.KVHeads)
		}
		if c.SandwichNorm() {
			lc.attnPre, lc.mlpPre, lc.invPA, lc.invPF = f(T*D), f(T*D), f(T), f(T)
		}
		if c.AttnSoftcap > 0 {
			lc.th = f(H * T * T)
		}
		for p := range model.NumProj {
			lc.u[p] = f(T * r)
			if e.Dropout > 0 {
				in := D
				switch p {
				case model.ProjDown:
					in = F
				case model.ProjO:
					in = QD
				}
				lc.drop[p], lc.xd[p] = f(T*in), f(T*in)
			}
		}
	}
	e.x, e.xL, e.xf, e.dx, e.dxf, e.inv = f(T*D), f(T*D), f(T*D), f(T*D), f(T*D), f(T)
	e.dAct, e.dH3, e.dXn, e.dAo, e.dq = f(T*F), f(T*F), f(T*D), f(T*QD), f(T*QD)
	e.dSg = f(T * F)
	e.dk, e.dv, e.tmpIn = f(T*KV), f(T*KV), f(T*max(D, F, QD))
	e.g, e.ut, e.dbt = f(T*r), f(r*T), f(r*max(D, F, KV, QD))
	e.loraTmp = f(T * max(D, F, KV, QD))
	e.dkt, e.dvt = f(KV*T), f(KV*T)
	hd := c.HeadDim()
	e.att = attScratch{qh: f(T * hd), oh: f(T * hd), kg: f(T * hd), ds: f(T * T), qT: f(hd * T), doT: f(hd * T), tmp: f(hd * T)}
	if c.SandwichNorm() {
		e.dPost = f(T * D)
	}
	// The loss: every token's logits for hparams.LossSlice vocabulary
	// entries at a time.
	e.bytes += e.growLoss(T, hparams.LossSlice(T, c.Vocab))
	e.segStart, e.pos = make([]int, T), make([]int, T)
	// RoPE tables for positions 0 … T-1 (positions restart at each packed
	// example, so none is larger).
	table := func(inv []float64) (cos, sin []float32) {
		cos, sin = f(T*hd/2), f(T*hd/2)
		for pos := range T {
			for i, freq := range inv {
				sn, cs := math.Sincos(float64(pos) * freq)
				cos[pos*hd/2+i], sin[pos*hd/2+i] = float32(cs), float32(sn)
			}
		}
		return cos, sin
	}
	e.cos, e.sin = table(e.m.RopeInvFreq())
	if inv := e.m.LocalRopeInvFreq(); inv != nil {
		e.cosL, e.sinL = table(inv)
	}
	e.maxT = T
}

// ActivationBytes is the memory the engine holds for its passes: the
// per-layer caches the backward pass needs (only each layer's input with
// Checkpoint) and the scratch, for the longest sequence run so far.
// hparams.ActivationBytes estimates it before training.
func (e *Engine) ActivationBytes() int64 { return e.bytes }

// check validates a sequence against the model.
func (e *Engine) check(s Seq) error {
	T := len(s.IDs)
	if T < 2 {
		return fmt.Errorf("lora: a training sequence needs at least 2 tokens, got %d", T)
	}
	if T > e.m.SeqLen {
		return fmt.Errorf("lora: sequence of %d tokens is longer than the model's context %d", T, e.m.SeqLen)
	}
	if s.Mask != nil && len(s.Mask) != T {
		return fmt.Errorf("lora: mask has %d entries for %d tokens", len(s.Mask), T)
	}
	for i, id := range s.IDs {
		if id < 0 || id >= e.m.Vocab {
			return fmt.Errorf("lora: token %d at position %d is outside the vocabulary of %d", id, i, e.m.Vocab)
		}
	}
	prev := 0
	for i, st := range s.Starts {
		if st < 0 || st >= T || (i > 0 && st <= prev) {
			return fmt.Errorf("lora: example starts %v are not increasing offsets inside %d tokens", s.Starts, T)
		}
		prev = st
	}
	return nil
}

// Loss runs the forward pass only (no dropout) and returns the summed
// cross-entropy over the counted tokens and their number.
func (e *Engine) Loss(s Seq) (sum float64, count int, err error) {
	if err := e.check(s); err != nil {
		return 0, 0, err
	}
	e.forward(s, false)
	sum, count = e.head(s, 0, false)
	return sum, count, nil
}

// Accumulate runs the forward and backward passes of s and adds
// weight·∂(summed loss)/∂θ to Grads. With weight = 1/(tokens counted in the
// whole batch) the gradients are those of the batch's mean loss. It returns
// the summed loss and the number of counted tokens.
func (e *Engine) Accumulate(s Seq, weight float32) (sum float64, count int, err error) {
	if err := e.check(s); err != nil {
		return 0, 0, err
	}
	e.draws++
	e.forward(s, true)
	sum, count = e.head(s, weight, true)
	if count > 0 {
		e.backward(s)
	}
	return sum, count, nil
}

// Counted is the number of tokens of s that count in the loss.
func Counted(s Seq) int {
	n := 0
	for i := 1; i < len(s.IDs); i++ {
		if s.Mask == nil || s.Mask[i] {
			n++
		}
	}
	return n
}

func (e *Engine) cache(l int) *layerCache {
	if e.Checkpoint {
		return &e.caches[0]
	}
	return &e.caches[l]
}

func (e *Engine) forward(s Seq, train bool) {
	T := len(s.IDs)
	e.grow(T)
	st, k := 0, 0
	for t := range T {
		for k < len(s.Starts) && s.Starts[k] <= t {
			st = s.Starts[k]
			k++
		}
		e.segStart[t], e.pos[t] = st, t-st
	}
	D := e.m.Dim
	scale := e.m.EmbedScale()
	for t, id := range s.IDs {
		row := e.x[t*D : (t+1)*D]
		e.m.Embed.DequantizeRow(id, row)
		if scale != 1 {
			for i := range row {
				row[i] *= scale
			}
		}
	}
	for l := range e.m.Layers {
		if e.Checkpoint {
			copy(e.xin[l], e.x[:T*D])
		}
		e.forwardLayer(l, e.cache(l), e.x, T, train)
	}
	copy(e.xL, e.x[:T*D])
	rmsRows(e.xf, e.inv, e.xL, e.m.FinalNorm, T, D, e.m.NormEps)
}

// forwardLayer runs block l on the residual stream x [T, D] in place,
// keeping in c what the backward pass needs.
func (e *Engine) forwardLayer(l int, c *layerCache, x []float32, T int, train bool) {
	cfg := e.m.Config
	D, F := cfg.Dim, cfg.HiddenDim
	L := &e.m.Layers[l]
	copy(c.xin, x[:T*D])
	rmsRows(c.xn1, c.inv1, x, L.AttnNorm, T, D, cfg.NormEps)
	e.linear(l, model.ProjQ, c, c.q, c.xn1, T, train)
	e.linear(l, model.ProjK, c, c.k, c.xn1, T, train)
	e.linear(l, model.ProjV, c, c.v, c.xn1, T, train)
	if cfg.QKNorm() {
		hd := cfg.HeadDim()
		copy(c.qpre, c.q[:T*cfg.QDim()])
		copy(c.kpre, c.k[:T*cfg.KVDim()])
		rmsRows(c.q, c.qinv, c.qpre, L.QNorm, T*cfg.Heads, hd, cfg.NormEps)
		rmsRows(c.k, c.kinv, c.kpre, L.KNorm, T*cfg.KVHeads, hd, cfg.NormEps)
	}
	e.rope(l, c.q, T, cfg.Heads, false)
	e.rope(l, c.k, T, cfg.KVHeads, false)
	e.attention(l, c, T)
	out := e.tmpIn[:T*D]
	e.linear(l, model.ProjO, c, out, c.ao, T, train)
	if L.PostAttnNorm != nil {
		copy(c.attnPre, out)
		rmsRows(out, c.invPA, c.attnPre, L.PostAttnNorm, T, D, cfg.NormEps)
	}
	for i, v := range out {
		x[i] += v
	}
	copy(c.xmid, x[:T*D])
	rmsRows(c.xn2, c.inv2, x, L.FFNNorm, T, D, cfg.NormEps)
	e.linear(l, model.ProjGate, c, c.h1, c.xn2, T, train)
	e.linear(l, model.ProjUp, c, c.h3, c.xn2, T, train)
	act := c.act[:T*F]
	if cfg.GELU() {
		gegluForward(act, c.h1[:T*F], c.h3)
	} else {
		tensor.Sigmoid(act, c.h1[:T*F])
		for i, a := range c.h1[:T*F] {
			act[i] *= a * c.h3[i]
		}
	}
	e.linear(l, model.ProjDown, c, out, c.act, T, train)
	if L.PostFFNNorm != nil {
		copy(c.mlpPre, out)
		rmsRows(out, c.invPF, c.mlpPre, L.PostFFNNorm, T, D, cfg.NormEps)
	}
	for i, v := range out {
		x[i] += v
	}
}

// baseMatMul computes out = x·Wᵀ for a frozen matrix of the base, in
// bfloat16 when e.BF16.
func (e *Engine) baseMatMul(out, x []float32, n int, w *tensor.Matrix) {
	if e.BF16 {
		tensor.MatMulBF16(out, x, n, w)
		return
	}
	tensor.MatMul(out, x, n, w)
}

// baseMatMulT computes out = dy·W for a frozen matrix of the base, in
// bfloat16 when e.BF16.
func (e *Engine) baseMatMulT(out, dy []float32, n int, w *tensor.Matrix) {
	if e.BF16 {
		tensor.MatMulTBF16(out, dy, n, w)
		return
	}
	tensor.MatMulT(out, dy, n, w)
}

// actMatMul and actMatMulT are attention's products of activations (scores,
// probabilities times values, and their gradients): in bfloat16 when
// e.BF16, as mixed-precision training takes them.
func (e *Engine) actMatMul(out, x []float32, n int, w *tensor.Matrix) { e.baseMatMul(out, x, n, w) }

func (e *Engine) actMatMulT(out, dy []float32, n int, w *tensor.Matrix) { e.baseMatMulT(out, dy, n, w) }

// linear computes out = W·x + scale·B·A·drop(x) for T rows.
func (e *Engine) linear(l int, p model.Proj, c *layerCache, out, in []float32, T int, train bool) {
	L := &e.m.Layers[l]
	e.baseMatMul(out, in, T, L.Weight(p))
	L.AddBias(p, out, T)
	pair := e.pairs[l][p]
	if pair == nil {
		return
	}
	x := in[:T*pair.In]
	if train && e.Dropout > 0 {
		// The mask comes from a generator seeded by (seed, step, layer,
		// projection), so recomputing a layer reproduces it exactly.
		rng := rand.New(rand.NewPCG(e.seed^e.draws*0x9e3779b97f4a7c15, uint64(l)*16+uint64(p)))
		keep := 1 / (1 - e.Dropout)
		drop, xd := c.drop[p][:len(x)], c.xd[p][:len(x)]
		for i, v := range x {
			if rng.Float32() < e.Dropout {
				drop[i], xd[i] = 0, 0
			} else {
				drop[i], xd[i] = keep, v*keep
			}
		}
		x = xd
	}
	r := e.ad.Rank
	u := c.u[p][:T*r]
	tensor.MatMul(u, x, T, tensor.View(r, pair.In, pair.A)) // u = x·Aᵀ
	up := e.loraTmp[:T*pair.Out]
	tensor.MatMul(up, u, T, tensor.View(pair.Out, r, pair.B)) // u·Bᵀ
	tensor.Axpy(e.scale, up, out[:T*pair.Out])
}

// rope rotates the heads of x [T, heads·headDim] of layer l to their
// positions (interleaved pairs, as model.RoPE, with the layer's RoPE
// table), or back when inverse is set.
func (e *Engine) rope(l int, x []float32, T, heads int, inverse bool) {
	hd := e.m.HeadDim()
	half := hd / 2
	cos, sin := e.cos, e.sin
	if e.cosL != nil && e.m.Sliding(l) {
		cos, sin = e.cosL, e.sinL
	}
	for t := range T {
		cs := cos[e.pos[t]*half : (e.pos[t]+1)*half]
		sn := sin[e.pos[t]*half : (e.pos[t]+1)*half]
		row := x[t*heads*hd : (t+1)*heads*hd]
		for h := range heads {
			v := row[h*hd : (h+1)*hd]
			for i := range half {
				c, s := cs[i], sn[i]
				if inverse {
					s = -s
				}
				a, b := v[2*i], v[2*i+1]
				v[2*i] = a*c - b*s
				v[2*i+1] = a*s + b*c
			}
		}
	}
}

// rowStart is the first position query t of layer l attends to: its
// example's start, or later on a sliding-window layer.
func (e *Engine) rowStart(l, t int) int {
	s := e.segStart[t]
	if e.m.Sliding(l) {
		s = max(s, t-e.m.SlidingWindow+1)
	}
	return s
}

// attention computes c.ao from c.q, c.k, c.v of layer l with a causal mask
// that also stops at example boundaries (and at the window of a sliding
// layer), keeping the probabilities in c.p (and tanh of soft-capped scores
// in c.th). Keys and values are transposed per head ([headDim, T]) so every
// inner loop runs over positions: long vectors even when heads are narrow.
func (e *Engine) attention(l int, c *layerCache, T int) {
	cfg := e.m.Config
	D, KV, hd, H := cfg.QDim(), cfg.KVDim(), cfg.HeadDim(), cfg.Heads // D: the width of q and of the output
	group := H / cfg.KVHeads
	scale := cfg.AttnScale()
	capC := cfg.AttnSoftcap
	for t := range T {
		for i := range KV {
			c.kt[i*T+t] = c.k[t*KV+i]
			c.vt[i*T+t] = c.v[t*KV+i]
		}
	}
	// Per head, with the matrix kernels: S = (q/√hd)·Kᵀ over all T×T pairs
	// (the masked ones are cleared after), softmax of each row over its
	// segment up to t, then O = P·V.
	qh, oh, kg := e.att.qh[:T*hd], e.att.oh[:T*hd], e.att.kg[:T*hd]
	for g := range cfg.KVHeads {
		gatherHead(kg, c.k, T, KV, g*hd, hd, 1)
		kmat := tensor.View(T, hd, kg)
		vmat := tensor.View(hd, T, c.vt[g*hd*T:(g+1)*hd*T])
		for h := g * group; h < (g+1)*group; h++ {
			gatherHead(qh, c.q, T, D, h*hd, hd, scale)
			p := c.p[h*T*T : (h+1)*T*T]
			e.actMatMul(p, qh, T, kmat)
			for t := range T {
				row := p[t*T : (t+1)*T]
				s0 := e.rowStart(l, t)
				clear(row[:s0])
				clear(row[t+1:])
				if capC > 0 {
					th := c.th[h*T*T+t*T : h*T*T+(t+1)*T]
					for s := s0; s <= t; s++ {
						th[s] = float32(math.Tanh(float64(row[s] / capC)))
						row[s] = th[s] * capC
					}
				}
				softmax(row[s0 : t+1])
			}
			e.actMatMul(oh, p, T, vmat)
			for t := range T {
				copy(c.ao[t*D+h*hd:t*D+(h+1)*hd], oh[t*hd:(t+1)*hd])
			}
		}
	}
}

// gatherHead copies columns [off, off+hd) of the T rows of x (row length
// stride) into dst [T, hd], times f.
func gatherHead(dst, x []float32, T, stride, off, hd int, f float32) {
	for t := range T {
		src, d := x[t*stride+off:t*stride+off+hd], dst[t*hd:(t+1)*hd]
		if f == 1 {
			copy(d, src)
			continue
		}
		for i, v := range src {
			d[i] = v * f
		}
	}
}

// transposeInto writes the [rows, cols] matrix x transposed into dst
// [cols, rows].
func transposeInto(dst, x []float32, rows, cols int) {
	for r := range rows {
		for c, v := range x[r*cols : (r+1)*cols] {
			dst[c*rows+r] = v
		}
	}
}

func (e *Engine) backward(s Seq) {
	T := len(s.IDs)
	cfg := e.m.Config
	D, KV, F := cfg.Dim, cfg.KVDim(), cfg.HiddenDim
	dx := e.dx[:T*D]
	clear(dx)
	rmsBack(dx, e.dxf, e.xL, e.m.FinalNorm, e.inv, T, D)
	for l := len(e.m.Layers) - 1; l >= 0; l-- {
		c := e.cache(l)
		L := &e.m.Layers[l]
		if e.Checkpoint {
			x := e.xL[:T*D] // free now: the head is done
			copy(x, e.xin[l])
			e.forwardLayer(l, c, x, T, true)
		}
		// MLP: x += Down(act(Gate·xn2) ⊙ Up·xn2), act SiLU (or GELU)
		dAct, dH3 := e.dAct[:T*F], e.dH3[:T*F]
		dy := dx // the gradient of the MLP's output (and below of attention's)
		if L.PostFFNNorm != nil {
			dy = e.dPost[:T*D]
			clear(dy)
			rmsBack(dy, dx, c.mlpPre, L.PostFFNNorm, c.invPF, T, D)
		}
		e.linearBack(l, model.ProjDown, c, dAct, dy, c.act, T, false)
		if cfg.GELU() {
			gegluBackward(dAct, dH3, c.h1[:T*F], c.h3, e.dSg)
		} else {
			sgs := e.dSg[:T*F]
			tensor.Sigmoid(sgs, c.h1[:T*F])
			for i, a := range c.h1[:T*F] {
				sg := sgs[i]
				d := dAct[i]
				dH3[i] = d * a * sg
				dAct[i] = d * c.h3[i] * sg * (1 + a*(1-sg))
			}
		}
		dXn := e.dXn[:T*D]
		e.linearBack(l, model.ProjGate, c, dXn, dAct, c.xn2, T, false)
		e.linearBack(l, model.ProjUp, c, dXn, dH3, c.xn2, T, true)
		rmsBack(dx, dXn, c.xmid, L.FFNNorm, c.inv2, T, D)
		// attention: x += O·attn(rope(Q·xn1), rope(K·xn1), V·xn1)
		dAo := e.dAo[:T*cfg.QDim()]
		dy = dx
		if L.PostAttnNorm != nil {
			dy = e.dPost[:T*D]
			clear(dy)
			rmsBack(dy, dx, c.attnPre, L.PostAttnNorm, c.invPA, T, D)
		}
		e.linearBack(l, model.ProjO, c, dAo, dy, c.ao, T, false)
		dq, dk, dv := e.dq[:T*cfg.QDim()], e.dk[:T*KV], e.dv[:T*KV]
		e.attentionBack(l, c, T, dAo, dq, dk, dv)
		e.rope(l, dq, T, cfg.Heads, true)
		e.rope(l, dk, T, cfg.KVHeads, true)
		if cfg.QKNorm() {
			// Back through the per-head norms: dq and dk become the
			// gradients of the projections' outputs.
			hd, tmp := cfg.HeadDim(), e.tmpIn[:T*cfg.QDim()]
			copy(tmp, dq)
			clear(dq)
			rmsBack(dq, tmp, c.qpre, L.QNorm, c.qinv, T*cfg.Heads, hd)
			tmp = tmp[:T*KV]
			copy(tmp, dk)
			clear(dk)
			rmsBack(dk, tmp, c.kpre, L.KNorm, c.kinv, T*cfg.KVHeads, hd)
		}
		e.linearBack(l, model.ProjQ, c, dXn, dq, c.xn1, T, false)
		e.linearBack(l, model.ProjK, c, dXn, dk, c.xn1, T, true)
		e.linearBack(l, model.ProjV, c, dXn, dv, c.xn1, T, true)
		rmsBack(dx, dXn, c.xin, L.AttnNorm, c.inv1, T, D)
	}
}

// linearBack writes (or adds, with add) the input gradient of projection p
// for output gradient dy into din, and accumulates the LoRA gradients.
func (e *Engine) linearBack(l int, p model.Proj, c *layerCache, din, dy, in []float32, T int, add bool) {
	W := e.m.Layers[l].Weight(p)
	if add {
		tmp := e.tmpIn[:T*W.Cols]
		e.baseMatMulT(tmp, dy, T, W)
		for i, v := range tmp {
			din[i] += v
		}
	} else {
		e.baseMatMulT(din, dy, T, W)
	}
	pair := e.pairs[l][p]
	if pair == nil {
		return
	}
	gp := e.grads[l][p]
	r, in_, out, s := e.ad.Rank, pair.In, pair.Out, e.scale
	x := in[:T*in_]
	if e.Dropout > 0 {
		x = c.xd[p][:T*in_]
	}
	u := c.u[p][:T*r]
	// All six products go through the matrix kernels (float32 always: the
	// adapter's side is never rounded), with views of A, B and the
	// activations as matrices.
	g := e.g[:T*r]
	tensor.MatMulT(g, dy, T, tensor.View(out, r, pair.B)) // g = dy·B
	// ∂B[o, j] += s·Σ_t dy[t, o]·u[t, j], built as its transpose uᵀ·dy.
	ut := e.ut[:r*T]
	transposeInto(ut, u, T, r)
	dbt := e.dbt[:r*out]
	tensor.MatMulT(dbt, ut, r, tensor.View(T, out, dy))
	for o := range out {
		gb := gp.B[o*r : (o+1)*r]
		for j := range r {
			gb[j] += s * dbt[j*out+o]
		}
	}
	// ∂A[j, i] += s·Σ_t g[t, j]·x[t, i]: gᵀ·x.
	transposeInto(ut, g, T, r)
	da := e.dbt[:r*in_]
	tensor.MatMulT(da, ut, r, tensor.View(T, in_, x))
	tensor.Axpy(s, da, gp.A)
	// ∂x[t, i] += s·Σ_j g[t, j]·A[j, i] (· the dropout factor): g·A.
	dx := e.loraTmp[:T*in_]
	tensor.MatMulT(dx, g, T, tensor.View(r, in_, pair.A))
	if e.Dropout > 0 {
		for i, d := range c.drop[p][:T*in_] {
			dx[i] *= d
		}
	}
	tensor.Axpy(s, dx, din[:T*in_])
}

// attentionBack turns the gradient of the attention output into gradients
// of the (rotated) queries, keys and values.
func (e *Engine) attentionBack(l int, c *layerCache, T int, dAo, dq, dk, dv []float32) {
	cfg := e.m.Config
	D, KV, hd, H := cfg.QDim(), cfg.KVDim(), cfg.HeadDim(), cfg.Heads // D: the width of q and of the output
	group := H / cfg.KVHeads
	scale := cfg.AttnScale()
	capped := cfg.AttnSoftcap > 0
	dkt, dvt := e.dkt[:KV*T], e.dvt[:KV*T]
	clear(dkt)
	clear(dvt)
	a := &e.att
	doh, vg, dqh := a.qh[:T*hd], a.kg[:T*hd], a.oh[:T*hd]
	dS := a.ds[:T*T]
	qT, doT, tmp := a.qT[:hd*T], a.doT[:hd*T], a.tmp[:hd*T]
	for g := range cfg.KVHeads {
		gatherHead(vg, c.v, T, KV, g*hd, hd, 1)
		vmat := tensor.View(T, hd, vg)
		ktmat := tensor.View(hd, T, c.kt[g*hd*T:(g+1)*hd*T])
		gk, gv := dkt[g*hd*T:(g+1)*hd*T], dvt[g*hd*T:(g+1)*hd*T]
		for h := g * group; h < (g+1)*group; h++ {
			p := c.p[h*T*T : (h+1)*T*T]
			gatherHead(doh, dAo, T, D, h*hd, hd, 1)
			e.actMatMul(dS, doh, T, vmat) // dP = dO·Vᵀ
			for t := range T {
				s0 := e.rowStart(l, t)
				pr, dr := p[t*T+s0:t*T+t+1], dS[t*T+s0:t*T+t+1]
				sum := tensor.Dot(pr, dr)
				for s := range dr {
					dr[s] = pr[s] * (dr[s] - sum) * scale // dS, with the 1/√hd
				}
				if capped {
					// Through the soft cap: d(tanh(s/c)·c)/ds = 1 − tanh².
					for s, th := range c.th[h*T*T+t*T+s0 : h*T*T+t*T+t+1] {
						dr[s] *= 1 - th*th
					}
				}
				clear(dS[t*T : t*T+s0])
				clear(dS[t*T+t+1 : (t+1)*T])
			}
			e.actMatMul(dqh, dS, T, ktmat) // dQ = dS·K
			for t := range T {
				copy(dq[t*D+h*hd:t*D+(h+1)*hd], dqh[t*hd:(t+1)*hd])
			}
			// dKᵀ += Qᵀ·dS and dVᵀ += dOᵀ·P, [hd, T] like dkt and dvt.
			for t := range T {
				for i, v := range c.q[t*D+h*hd : t*D+(h+1)*hd] {
					qT[i*T+t] = v
				}
			}
			e.actMatMulT(tmp, qT, hd, tensor.View(T, T, dS))
			tensor.Axpy(1, tmp, gk)
			transposeInto(doT, doh, T, hd)
			e.actMatMulT(tmp, doT, hd, tensor.View(T, T, p))
			tensor.Axpy(1, tmp, gv)
		}
	}
	for t := range T {
		for i := range KV {
			dk[t*KV+i] = dkt[i*T+t]
			dv[t*KV+i] = dvt[i*T+t]
		}
	}
}

// rmsRows normalises the T rows of x [T, D] into out, keeping 1/rms in inv.
func rmsRows(out, inv, x, w []float32, T, D int, eps float32) {
	for t := range T {
		xr := x[t*D : (t+1)*D]
		var ss float32
		for _, v := range xr {
			ss += v * v
		}
		r := float32(1 / math.Sqrt(float64(ss/float32(D)+eps)))
		inv[t] = r
		or := out[t*D : (t+1)*D]
		for i, v := range xr {
			or[i] = w[i] * (r * v)
		}
	}
}

// rmsBack adds to dx the input gradient of RMSNorm for output gradient dy.
func rmsBack(dx, dy, x, w, inv []float32, T, D int) {
	for t := range T {
		xr, dr, r := x[t*D:(t+1)*D], dy[t*D:(t+1)*D], inv[t]
		var sum float32
		for i, v := range xr {
			sum += w[i] * dr[i] * v
		}
		coef := r * r * r * sum / float32(D)
		o := dx[t*D : (t+1)*D]
		for i, v := range xr {
			o[i] += r*w[i]*dr[i] - coef*v
		}
	}
}
