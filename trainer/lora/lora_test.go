package lora

import (
	"math"
	"math/rand/v2"
	"orchmind/internal/cputime"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"orchmind/adapters"
	"orchmind/engine/gguf"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tensor"
	"orchmind/trainer/hparams"
)

// randomModel builds a small Llama with random weights held as typ.
func randomModel(t testing.TB, c model.Config, typ quant.Type, seed uint64) *model.Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	vec := func(n int, s float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * s)
		}
		return v
	}
	// mat quantizes 1,024 rows at a time (the same values in the same
	// order as one vec of the whole), so that building a model with a
	// 262,144-token embedding never holds it in float32 and the
	// benchmarks' peak RSS is that of training, not of making the weights.
	mat := func(rows, cols int) *tensor.Matrix {
		st := model.StorageType(typ, cols)
		rb, err := quant.RowBytes(st, cols)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 0, rows*rb)
		for r := 0; r < rows; r += 1024 {
			if data, err = quant.Quantize(st, vec(min(1024, rows-r)*cols, 1/math.Sqrt(float64(cols))), data); err != nil {
				t.Fatal(err)
			}
		}
		m, err := tensor.NewMatrix(st, rows, cols, data)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	norm := func() []float32 {
		v := vec(c.Dim, 0.1)
		for i := range v {
			v[i]++
		}
		return v
	}
	m := &model.Model{Config: c, Layers: make([]model.Layer, c.Layers)}
	m.Embed = mat(c.Vocab, c.Dim)
	for l := range m.Layers {
		m.Layers[l] = model.Layer{AttnNorm: norm(), FFNNorm: norm(),
			Wq: mat(c.QDim(), c.Dim), Wk: mat(c.KVDim(), c.Dim), Wv: mat(c.KVDim(), c.Dim), Wo: mat(c.Dim, c.QDim()),
			Gate: mat(c.HiddenDim, c.Dim), Up: mat(c.HiddenDim, c.Dim), Down: mat(c.Dim, c.HiddenDim)}
		if c.QKNorm() {
			L := &m.Layers[l]
			L.QNorm, L.KNorm = vec(c.HeadDim(), 0.3), vec(c.HeadDim(), 0.3)
			for i := range L.QNorm {
				L.QNorm[i]++
				L.KNorm[i]++
			}
		}
		if c.SandwichNorm() {
			m.Layers[l].PostAttnNorm, m.Layers[l].PostFFNNorm = norm(), norm()
		}
		if c.QKVBias() {
			L := &m.Layers[l]
			L.Bias[model.ProjQ], L.Bias[model.ProjK], L.Bias[model.ProjV] = vec(c.QDim(), 0.3), vec(c.KVDim(), 0.3), vec(c.KVDim(), 0.3)
		}
	}
	m.FinalNorm = norm()
	m.Output = m.Embed
	if !c.SharedClassifier {
		m.Output = mat(c.Vocab, c.Dim)
	}
	return m
}

// gemmaTiny is tiny as Gemma 2 or 3 with every feature on: a window of 4
// (shorter than the test sequences) on layer 0 (a sliding layer) and layer
// 1 global, heads of 8 (q 32 wide in a width of 16), query_pre_attn_scalar
// 6; Gemma 3 with local and global RoPE bases and linear scaling, Gemma 2
// with small soft caps so that tanh is far from linear.
func gemmaTiny(arch string) model.Config {
	c := tiny
	c.Arch, c.HeadSize, c.SharedClassifier = arch, 8, true
	c.SlidingWindow, c.SlidingPattern, c.QueryScale = 4, 2, 6
	if arch == model.ArchGemma3 {
		c.RopeTheta, c.RopeLocalTheta, c.RopeScale = 1000, 10, 4
	} else {
		c.AttnSoftcap, c.FinalSoftcap = 1.5, 2
	}
	return c
}

var tiny = model.Config{Dim: 16, HiddenDim: 24, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 19, SeqLen: 32,
	NormEps: 1e-5, RopeTheta: 10000}

// randomAdapter has non-zero B so every gradient is exercised.
func randomAdapter(t testing.TB, m *model.Model, rank int, seed uint64) *adapters.Adapter {
	t.Helper()
	a, err := New(m, rank, float32(2*rank), nil, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	for _, k := range a.SortedKeys() { // map order would make the weights differ run to run
		p := a.Pairs[k]
		for i := range p.B {
			p.B[i] = float32(rng.NormFloat64() * 0.2)
		}
	}
	return a
}

func randomSeq(n, vocab int, seed uint64) Seq {
	rng := rand.New(rand.NewPCG(seed, 3))
	s := Seq{IDs: make([]int, n), Mask: make([]bool, n)}
	for i := range s.IDs {
		s.IDs[i] = rng.IntN(vocab)
		s.Mask[i] = i > n/3 // an "answer" after a prompt
	}
	return s
}

// TestGradientsMatchFiniteDifferences checks every LoRA gradient entry of a
// small model against central finite differences of the loss.
func TestGradientsMatchFiniteDifferences(t *testing.T) {
	for _, tc := range []struct {
		name       string
		shared     bool
		checkpoint bool
		starts     []int
		arch       string
	}{
		{"untied", false, false, nil, ""},
		{"tied+checkpoint", true, true, nil, ""},
		{"packed", false, false, []int{0, 5}, ""},
		{"qwen2 q/k/v biases", true, false, nil, model.ArchQwen2},
		{"gemma GELU, scaled embeddings", true, true, nil, model.ArchGemma},
		{"heads of 8 in a width of 16 (q 32 wide)", false, false, []int{0, 5}, ""},
		{"heads of 8, qwen3 q/k norms", true, true, nil, model.ArchQwen3},
		{"gemma3: sandwich and q/k norms, sliding window, two RoPE bases, linear scaling", true, true, []int{0, 3}, model.ArchGemma3},
		{"gemma3 without checkpointing", true, false, nil, model.ArchGemma3},
		{"gemma2: soft-capped scores and logits, sliding window", true, false, nil, model.ArchGemma2},
		{"gemma2 packed, checkpoint", true, true, []int{0, 5}, model.ArchGemma2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tiny
			c.SharedClassifier = tc.shared
			c.Arch = tc.arch
			if strings.HasPrefix(tc.name, "heads of 8") || tc.arch == model.ArchQwen3 {
				c.HeadSize = 8
			}
			if tc.arch == model.ArchGemma2 || tc.arch == model.ArchGemma3 {
				c = gemmaTiny(tc.arch)
			}
			m := randomModel(t, c, quant.F32, 7)
			a := randomAdapter(t, m, 3, 11)
			e, err := NewEngine(m, a, 1)
			if err != nil {
				t.Fatal(err)
			}
			e.Checkpoint = tc.checkpoint
			s := randomSeq(12, c.Vocab, 5)
			s.Starts = tc.starts
			n := Counted(s)
			if _, _, err := e.Accumulate(s, 1/float32(n)); err != nil {
				t.Fatal(err)
			}
			loss := func() float64 {
				sum, cnt, err := e.Loss(s)
				if err != nil {
					t.Fatal(err)
				}
				return sum / float64(cnt)
			}
			const h = 1e-2
			var worst float64
			checked := 0
			for k, p := range a.Pairs {
				g := e.Grads.Pairs[k]
				for _, v := range [2][2][]float32{{p.A, g.A}, {p.B, g.B}} {
					w, gr := v[0], v[1]
					for i := 0; i < len(w); i += 7 {
						old := w[i]
						central := func(h float32) float64 {
							w[i] = old + h
							up := loss()
							w[i] = old - h
							down := loss()
							w[i] = old
							return (up - down) / float64(2*h)
						}
						// Richardson extrapolation of central differences
						// at h and h/2: error O(h⁴) instead of O(h²), which
						// the curvature of q/k norms and soft caps needs.
						fd := (4*central(h/2) - central(h)) / 3
						diff := math.Abs(fd - float64(gr[i]))
						tol := 5e-4 + 5e-3*math.Abs(fd)
						if diff > tol {
							t.Errorf("%d/%s [%d]: backward %.6g, finite differences %.6g", k.Layer, k.Module, i, gr[i], fd)
						}
						worst = max(worst, diff)
						checked++
					}
				}
			}
			t.Logf("%d entries checked, worst absolute difference %.2g", checked, worst)
		})
	}
}

// TestEngineMatchesInference checks that the training forward pass and the
// inference path (model.State with a plugged adapter) agree on the loss.
func TestEngineMatchesInference(t *testing.T) {
	for _, typ := range []quant.Type{quant.F32, quant.Q8_0, quant.Q4_0, quant.F16, quant.BF16} {
		c := model.Config{Dim: 32, HiddenDim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 40, SeqLen: 32, NormEps: 1e-5, RopeTheta: 10000}
		if typ == quant.F16 {
			c.Arch = model.ArchQwen2 // with q/k/v biases
		}
		if typ == quant.Q4_0 {
			c.Arch, c.SharedClassifier = model.ArchGemma, true // GELU, embeddings × √Dim
		}
		if typ == quant.Q8_0 {
			c.HeadSize = 16 // 4 heads of 16 in a width of 32: q and o 64 wide
		}
		if typ == quant.F32 {
			c.Arch, c.HeadSize = model.ArchQwen3, 16 // per-head q/k norms
		}
		m := randomModel(t, c, typ, 3)
		if typ == quant.BF16 {
			// Llama 3.1+ RoPE frequency factors.
			m.RopeFactors = model.Llama3RopeFactors(c.RopeTheta, c.HeadDim(), 8, 1, 4, 16)
		}
		a := randomAdapter(t, m, 4, 4)
		e, err := NewEngine(m, a, 1)
		if err != nil {
			t.Fatal(err)
		}
		s := randomSeq(20, c.Vocab, 9)
		s.Mask = nil
		sum, n, err := e.Loss(s)
		if err != nil {
			t.Fatal(err)
		}
		plug, err := NewPlug(m, Weighted{a, 1})
		if err != nil {
			t.Fatal(err)
		}
		st := m.NewState()
		st.SetFloat32(true) // the float32 arithmetic of training, not generation's int8 dot products
		st.SetDelta(plug)
		var ref float64
		for pos := 0; pos+1 < len(s.IDs); pos++ {
			lg := st.Forward(s.IDs[pos], pos)
			mx := lg[0]
			for _, v := range lg {
				mx = max(mx, v)
			}
			var z float64
			for _, v := range lg {
				z += math.Exp(float64(v - mx))
			}
			ref += float64(mx) + math.Log(z) - float64(lg[s.IDs[pos+1]])
		}
		if n != len(s.IDs)-1 || math.Abs(sum-ref) > 1e-4*math.Abs(ref) {
			t.Errorf("%s: engine loss %.7g over %d tokens, inference %.7g", typ, sum, n, ref)
		}
	}
}

// TestPackedEqualsSeparate: a packed row gives the same loss and gradients
// as its examples run one by one.
func TestPackedEqualsSeparate(t *testing.T) {
	m := randomModel(t, tiny, quant.F32, 1)
	a := randomAdapter(t, m, 2, 2)
	e1, _ := NewEngine(m, a, 1)
	e2, _ := NewEngine(m, a, 1)
	x, y := randomSeq(7, tiny.Vocab, 1), randomSeq(9, tiny.Vocab, 2)
	x.Mask[0], y.Mask[0] = false, false
	packed := Seq{IDs: append(append([]int{}, x.IDs...), y.IDs...), Mask: append(append([]bool{}, x.Mask...), y.Mask...), Starts: []int{0, 7}}
	s1, n1, _ := e1.Accumulate(packed, 1)
	sx, nx, _ := e2.Accumulate(x, 1)
	sy, ny, _ := e2.Accumulate(y, 1)
	if n1 != nx+ny || math.Abs(s1-(sx+sy)) > 1e-4 {
		t.Fatalf("packed loss %g (%d tokens), separate %g (%d)", s1, n1, sx+sy, nx+ny)
	}
	for k, g := range e1.Grads.Pairs {
		h := e2.Grads.Pairs[k]
		for i := range g.A {
			if math.Abs(float64(g.A[i]-h.A[i])) > 1e-4 {
				t.Fatalf("%v A[%d]: packed %g, separate %g", k, i, g.A[i], h.A[i])
			}
		}
	}
}

// TestDropoutCheckpointReproducible: with dropout, recomputing layers in
// the backward pass must reproduce the same masks, so gradients equal the
// stored-activation path.
func TestDropoutCheckpointReproducible(t *testing.T) {
	m := randomModel(t, tiny, quant.F32, 1)
	a := randomAdapter(t, m, 2, 2)
	s := randomSeq(10, tiny.Vocab, 4)
	var gs [2]*adapters.Adapter
	for i, ck := range []bool{false, true} {
		e, _ := NewEngine(m, a, 42)
		e.Dropout, e.Checkpoint = 0.3, ck
		if _, _, err := e.Accumulate(s, 1); err != nil {
			t.Fatal(err)
		}
		gs[i] = e.Grads
	}
	for k, g := range gs[0].Pairs {
		h := gs[1].Pairs[k]
		for i := range g.B {
			if g.B[i] != h.B[i] {
				t.Fatalf("%v B[%d]: %g vs %g", k, i, g.B[i], h.B[i])
			}
		}
	}
	if GradNorm(gs[0]) == 0 {
		t.Fatal("zero gradients")
	}
}

func TestNewStartsAtBase(t *testing.T) {
	m := randomModel(t, tiny, quant.F32, 1)
	a, err := New(m, 8, 16, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Pairs) != 7*tiny.Layers {
		t.Fatalf("%d pairs", len(a.Pairs))
	}
	for k, p := range a.Pairs {
		bound := float32(1 / math.Sqrt(float64(p.In)))
		for _, v := range p.A {
			if v < -bound || v > bound {
				t.Fatalf("%v: A value %g outside ±%g", k, v, bound)
			}
		}
		for _, v := range p.B {
			if v != 0 {
				t.Fatalf("%v: B must start at zero", k)
			}
		}
	}
	bad := *a
	bad.Pairs = map[adapters.Key]*adapters.Pair{{Layer: 5, Module: adapters.Q}: a.Pairs[adapters.Key{Layer: 0, Module: adapters.Q}]}
	if err := Check(m, &bad); err == nil {
		t.Fatal("an adapter for a deeper model was accepted")
	}
}

func TestAdamWMatchesTorchFormula(t *testing.T) {
	// One parameter, two steps, computed by hand from torch's AdamW.
	a := &adapters.Adapter{Rank: 1, Alpha: 1, Pairs: map[adapters.Key]*adapters.Pair{{Layer: 0, Module: adapters.Q}: {In: 1, Out: 1, A: []float32{1}, B: []float32{0}}}}
	g := &adapters.Adapter{Rank: 1, Alpha: 1, Pairs: map[adapters.Key]*adapters.Pair{{Layer: 0, Module: adapters.Q}: {In: 1, Out: 1, A: []float32{0.5}, B: []float32{0}}}}
	o := NewAdamW(a)
	o.WeightDecay = 0.01
	w := 1.0
	m, v := 0.0, 0.0
	for step := 1; step <= 2; step++ {
		if err := o.Update(a, g, 0.1); err != nil {
			t.Fatal(err)
		}
		w *= 1 - 0.1*0.01
		m = 0.9*m + 0.1*0.5
		v = 0.999*v + 0.001*0.25
		w -= 0.1 / (1 - math.Pow(0.9, float64(step))) * m / (math.Sqrt(v)/math.Sqrt(1-math.Pow(0.999, float64(step))) + 1e-8)
	}
	if got := a.Pairs[adapters.Key{Layer: 0, Module: adapters.Q}].A[0]; math.Abs(float64(got)-w) > 1e-5 {
		t.Fatalf("AdamW gave %g, torch's formula %g", got, w)
	}
}

func TestLRSchedule(t *testing.T) {
	for _, c := range []struct {
		step, warm, total int
		want              float64
	}{{0, 10, 100, 0}, {5, 10, 100, 0.5}, {10, 10, 100, 1}, {55, 10, 100, 0.5}, {100, 10, 100, 0}, {0, 0, 10, 1}} {
		if got := LR(1, c.step, c.warm, c.total); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("LR(step %d, warm-up %d, total %d) = %g, want %g", c.step, c.warm, c.total, got, c.want)
		}
	}
}

// gemma3Dims is a Gemma 3 text model's config of the given width, MLP
// width and depth (heads of 256 as all Gemma 3 sizes have).
func gemma3Dims(dim, ffn, layers int) model.Config {
	return model.Config{Dim: dim, HiddenDim: ffn, Layers: layers, Heads: 4, KVHeads: 1, HeadSize: 256, Vocab: 262144, SeqLen: 256,
		NormEps: 1e-6, RopeTheta: 1e6, Arch: model.ArchGemma3, SharedClassifier: true, SlidingWindow: 512, SlidingPattern: 6,
		RopeLocalTheta: 10000, QueryScale: 256}
}

// benchEnv is the positive integer in the environment variable name, or
// def when it is unset (make bench-train sets the batch and sequence of the
// Gemma runs this way).
func benchEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive whole number", name, s)
	}
	return n
}

// BenchmarkTrainStep measures full optimiser steps as the issue defines
// them: batch 8 × 256 tokens (ORCHMIND_BENCH_BATCH, ORCHMIND_BENCH_SEQ to
// change), r=16 on all seven projections, forward, backward, clipping and
// AdamW, on random weights held Q8_0 or Q4_0. Run one configuration per
// process (make bench-train) so peak-rss-MB is its own; loss-MB is what the
// loss over the vocabulary holds at once (ORCHMIND_BENCH_LOSS_SLICE sets its
// vocabulary slice by hand, e.g. 262144 for the memory of an unsliced loss).
func BenchmarkTrainStep(b *testing.B) {
	dims := map[string]model.Config{
		"stories15M":  {Dim: 288, HiddenDim: 768, Layers: 6, Heads: 6, KVHeads: 6, Vocab: 32000, SeqLen: 256, NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true},
		"smollm-135M": {Dim: 576, HiddenDim: 1536, Layers: 30, Heads: 9, KVHeads: 3, Vocab: 49152, SeqLen: 256, NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true},
		// Gemma 3 270M and 1B: 4 heads of 256, one key/value head, a window
		// of 512 (the whole 256-token sequence) on 5 of every 6 layers,
		// the 262,144-token vocabulary.
		"gemma3-270M": gemma3Dims(640, 2048, 18),
		"gemma3-1B":   gemma3Dims(1152, 6912, 26),
	}
	for _, name := range []string{"stories15M", "smollm-135M", "gemma3-270M", "gemma3-1B"} {
		for _, v := range []struct {
			typ  quant.Type
			bf16 bool
		}{{quant.Q8_0, false}, {quant.Q4_0, false}, {quant.Q8_0, true}, {quant.Q4_0, true}} {
			typ := v.typ
			sub := name + "/" + typ.String() + "/f32"
			if v.bf16 {
				sub = name + "/" + typ.String() + "/bf16"
			}
			b.Run(sub, func(b *testing.B) {
				if v.bf16 && !tensor.BF16Tiles() {
					b.Skipf("no bfloat16 products on this CPU or kernel set (%s): bf16 would be the float32 run again", tensor.ISASummary())
				}
				c := dims[name]
				m := randomModel(b, c, typ, 1)
				a, _ := New(m, 16, 32, nil, 1)
				e, _ := NewEngine(m, a, 1)
				e.BF16 = v.bf16
				opt := NewAdamW(a)
				batch, seq := benchEnv(b, "ORCHMIND_BENCH_BATCH", 8), benchEnv(b, "ORCHMIND_BENCH_SEQ", 256)
				if slice := benchEnv(b, "ORCHMIND_BENCH_LOSS_SLICE", 0); slice > 0 {
					// The loss's slice (vocabulary entries whose logits
					// are held at once for every token) set by hand:
					// 262144 is the whole vocabulary's logits, for the
					// memory an unsliced loss would take.
					e.grow(seq)
					e.growLoss(seq, min(slice, c.Vocab))
				}
				seqs := make([]Seq, batch)
				for i := range seqs {
					seqs[i] = randomSeq(seq, c.Vocab, uint64(i))
					seqs[i].Mask = nil
				}
				// One untimed step first, as scripts/torch_lora_bench.py
				// gives PyTorch: the first step grows the engine's
				// buffers (and faults their pages in), which later steps
				// reuse.
				step := func() {
					for _, s := range seqs {
						if _, _, err := e.Accumulate(s, 1/float32(batch*(seq-1))); err != nil {
							b.Fatal(err)
						}
					}
					ClipGradNorm(e.Grads, 1)
					if err := opt.Update(a, e.Grads, 1e-3); err != nil {
						b.Fatal(err)
					}
					e.ZeroGrads()
				}
				step()
				b.ResetTimer()
				cpu0 := cputime.Process().Seconds()
				for range b.N {
					step()
				}
				b.ReportMetric(float64(batch*seq*b.N)/b.Elapsed().Seconds(), "tok/s")
				if cpu := cputime.Process().Seconds() - cpu0; cpu > 0 {
					b.ReportMetric(float64(batch*seq*b.N)/cpu, "tok/cpu-s")
				}
				b.ReportMetric(float64(peakRSS())/(1<<20), "peak-rss-MB")
				ls := &e.loss
				b.ReportMetric(float64(4*(len(ls.x)+len(ls.u)+len(ls.tmp)+len(ls.logits)+len(ls.capped)))/(1<<20), "loss-MB")
				b.Logf("%s; batch %d × %d tokens, the loss %d vocabulary entries at a time", tensor.ISASummary(), batch, seq, ls.slice)
			})
		}
	}
}

func TestPEFTLayoutRoundTrip(t *testing.T) {
	m := randomModel(t, tiny, quant.F32, 1)
	a := randomAdapter(t, m, 3, 5)
	dir := t.TempDir() + "/ad"
	if err := WritePEFT(dir, a, adapters.Manifest{Announced: adapters.Announced{Name: "x"}}, m); err != nil {
		t.Fatal(err)
	}
	raw, _, err := adapters.ReadFolder(dir, adapters.SafetensorsCodec{})
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := ReadPEFT(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	q := adapters.Key{Layer: 0, Module: adapters.Q}
	hd, r := tiny.HeadDim(), a.Rank
	// HF row 1 of head 0 (first half, i=1) is interleaved row 2.
	if raw.Pairs[q].B[1*r] != a.Pairs[q].B[2*r] {
		t.Fatal("q_proj B was not written in HF (rotate-half) order")
	}
	// Second half, i=0 of head 1 is HF row hd+hd/2 and interleaved row hd+1.
	if raw.Pairs[q].B[(hd+hd/2)*r] != a.Pairs[q].B[(hd+1)*r] {
		t.Fatal("q_proj B second half misplaced")
	}
	for k, p := range a.Pairs {
		for i := range p.B {
			if p.B[i] != back.Pairs[k].B[i] {
				t.Fatalf("%v: B[%d] changed in a write/read round trip", k, i)
			}
		}
	}
	v := adapters.Key{Layer: 1, Module: adapters.V}
	if raw.Pairs[v].B[0] != a.Pairs[v].B[0] || raw.Pairs[v].B[5] != a.Pairs[v].B[5] {
		t.Fatal("v_proj must not be permuted")
	}
}

func TestGGUFLoRAFile(t *testing.T) {
	m := randomModel(t, tiny, quant.F32, 1)
	a := randomAdapter(t, m, 3, 5)
	p := t.TempDir() + "/a.gguf"
	if err := WriteGGUF(p, a, "tiny", m.Config); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["general.type"] != "adapter" || f.Metadata["adapter.type"] != "lora" || f.Metadata["adapter.lora.alpha"] != a.Alpha {
		t.Fatalf("metadata %v", f.Metadata)
	}
	if len(f.Tensors) != 2*len(a.Pairs) {
		t.Fatalf("%d tensors for %d pairs", len(f.Tensors), len(a.Pairs))
	}
	la, _ := f.Tensor("blk.1.ffn_down.weight.lora_a")
	lb, _ := f.Tensor("blk.1.ffn_down.weight.lora_b")
	// llama.cpp checks lora_a ne = [in, r] and lora_b ne = [r, out].
	if la == nil || lb == nil || la.Dims[0] != uint64(tiny.HiddenDim) || la.Dims[1] != 3 || lb.Dims[0] != 3 || lb.Dims[1] != uint64(tiny.Dim) {
		t.Fatalf("lora_a %v, lora_b %v", la, lb)
	}
	p0 := a.Pairs[adapters.Key{Layer: 1, Module: adapters.Down}]
	got := make([]float32, len(p0.B))
	if err := quant.Dequantize(quant.F32, lb.Data, got); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != p0.B[i] {
			t.Fatalf("lora_b[%d] = %g, want %g", i, got[i], p0.B[i])
		}
	}
}

// TestGGUFLoRAFileQwen2: for a Qwen2 base the GGUF LoRA names the qwen2
// architecture and holds q/k lora_b rows in the rotate-half order of
// qwen2's GGUF q/k weights (the PEFT order); v is left as it is.
func TestGGUFLoRAFileQwen2(t *testing.T) {
	c := tiny
	c.Arch = model.ArchQwen2
	m := randomModel(t, c, quant.F32, 1)
	a := randomAdapter(t, m, 3, 5)
	p := t.TempDir() + "/a.gguf"
	if err := WriteGGUF(p, a, "tiny", m.Config); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata["general.architecture"] != "qwen2" {
		t.Fatalf("general.architecture %v", f.Metadata["general.architecture"])
	}
	hf := permuteB(a, c, true)
	for _, k := range []adapters.Key{{Layer: 1, Module: adapters.Q}, {Layer: 0, Module: adapters.K}, {Layer: 1, Module: adapters.V}} {
		_, bn, _ := adapters.GGUFNames(k)
		ti, ok := f.Tensor(bn)
		if !ok {
			t.Fatalf("no %s", bn)
		}
		got := make([]float32, len(hf.Pairs[k].B))
		if err := quant.Dequantize(ti.Type, ti.Data, got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, hf.Pairs[k].B) {
			t.Errorf("%s: not in the rotate-half (PEFT) row order", bn)
		}
		if k.Module == adapters.V && !slices.Equal(got, a.Pairs[k].B) {
			t.Errorf("%s: v rows must stay as they are", bn)
		}
	}
}

// TestActivationEstimate: hparams.ActivationBytes, which decides gradient
// checkpointing before training, matches what the engine really allocates
// (within 10%), with and without checkpointing and dropout.
func TestActivationEstimate(t *testing.T) {
	for _, v := range []struct {
		head int
		arch string
	}{{0, ""}, {16, ""}, {16, model.ArchQwen3}, {16, model.ArchGemma3}, {16, model.ArchGemma2}} {
		c := model.Config{Dim: 64, HiddenDim: 160, Layers: 3, Heads: 8, KVHeads: 2, Vocab: 50, SeqLen: 128, NormEps: 1e-5, RopeTheta: 10000, HeadSize: v.head, Arch: v.arch}
		if v.arch == model.ArchGemma2 || v.arch == model.ArchGemma3 {
			g := gemmaTiny(v.arch)
			c.SlidingWindow, c.SlidingPattern, c.AttnSoftcap, c.FinalSoftcap, c.RopeLocalTheta, c.RopeScale = g.SlidingWindow, g.SlidingPattern, g.AttnSoftcap, g.FinalSoftcap, g.RopeLocalTheta, g.RopeScale
			c.Vocab = 5000
		}
		activationEstimate(t, c)
	}
}

func activationEstimate(t *testing.T, c model.Config) {
	m := randomModel(t, c, quant.Q8_0, 1)
	hm := hparams.Model{Layers: c.Layers, Dim: c.Dim, HiddenDim: c.HiddenDim, Heads: c.Heads, KVDim: c.KVDim(), QDim: c.QDim(), KVHeads: c.KVHeads, QKNorm: c.QKNorm(),
		Vocab: c.Vocab, SandwichNorm: c.SandwichNorm(), AttnSoftcap: c.AttnSoftcap > 0, FinalSoftcap: c.FinalSoftcap > 0}
	for _, ck := range []bool{false, true} {
		for _, drop := range []float32{0, 0.1} {
			a := randomAdapter(t, m, 4, 2)
			e, err := NewEngine(m, a, 1)
			if err != nil {
				t.Fatal(err)
			}
			e.Checkpoint, e.Dropout = ck, drop
			if _, _, err := e.Accumulate(randomSeq(100, c.Vocab, 3), 1); err != nil {
				t.Fatal(err)
			}
			got, est := e.ActivationBytes(), hparams.ActivationBytes(hm, 4, 100, drop > 0, ck)
			if r := float64(est) / float64(got); r < 0.9 || r > 1.1 {
				t.Errorf("head size %d, checkpoint %v dropout %g: estimate %d bytes, engine holds %d (ratio %.2f)", c.HeadDim(), ck, drop, est, got, r)
			}
		}
	}
}
