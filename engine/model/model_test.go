package model

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"orchmind/engine/quant"
	"orchmind/engine/tokenizer"
	"orchmind/internal/testshared"
)

// The fixture is what llama2.c's run.c prints for
//
//	./run stories260K.bin -z tok512.bin -t 0 -i "Once upon a time"
//
// (karpathy/llama2.c, built with gcc -O2; 256 steps, the default).
const runCFixture = "testdata/stories260K_once_upon_a_time.runc.txt"

func loadStories(t *testing.T, typ quant.Type) (*Model, *tokenizer.Llama2C) {
	t.Helper()
	p := testshared.Path(t, "models/stories260K/stories260K.bin")
	m, err := LoadLlama2C(p, typ)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadLlama2C(strings.TrimSuffix(p, "stories260K.bin")+"tok512.bin", m.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

func generate(t *testing.T, m *Model, tok Tokenizer) string {
	t.Helper()
	var b strings.Builder
	err := Generate(context.Background(), m, tok, "Once upon a time", Sampling{MaxNew: -1}, func(s string) error {
		b.WriteString(s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String() + "\n"
}

func TestGreedyMatchesRunC(t *testing.T) {
	want, err := os.ReadFile(runCFixture)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []quant.Type{quant.F32, quant.F16} {
		m, tok := loadStories(t, typ)
		if got := generate(t, m, tok); got != string(want) {
			t.Errorf("%s: greedy output differs from run.c at byte %d:\n%s", typ, commonPrefix(got, string(want)), got)
		}
	}
	// Quantized weights drift from the f32 text after a while; the first
	// sentence must survive 8-bit.
	m, tok := loadStories(t, quant.Q8_0)
	got := generate(t, m, tok)
	n := commonPrefix(got, string(want))
	t.Logf("Q8_0 matches run.c's f32 text for %d of %d bytes", n, len(want))
	if n < 80 {
		t.Errorf("Q8_0 diverges after %d bytes: %q", n, got[:n])
	}
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// naiveLogits is an independent float64 implementation of the Llama
// forward pass over a whole sequence (no KV cache), used to check Forward.
func naiveLogits(m *Model, ids []int) [][]float64 {
	c := m.Config
	D, hd, KV := c.Dim, c.HeadDim(), c.KVDim()
	get := func(w interface{ Float32() []float32 }) []float64 {
		f := w.Float32()
		out := make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(v)
		}
		return out
	}
	matvec := func(w []float64, rows, cols int, x []float64) []float64 {
		y := make([]float64, rows)
		for r := range rows {
			for i := range cols {
				y[r] += w[r*cols+i] * x[i]
			}
		}
		return y
	}
	norm := func(x []float64, w []float32) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(len(x))+float64(c.NormEps))
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * inv * float64(w[i])
		}
		return y
	}
	rope := func(x []float64, pos int) {
		for i := 0; i < len(x); i += 2 {
			j := i % hd
			a := float64(pos) / math.Pow(float64(c.RopeTheta), float64(j)/float64(hd))
			x0, x1 := x[i], x[i+1]
			x[i], x[i+1] = x0*math.Cos(a)-x1*math.Sin(a), x0*math.Sin(a)+x1*math.Cos(a)
		}
	}
	emb := get(m.Embed)
	T := len(ids)
	xs := make([][]float64, T)
	for t, id := range ids {
		xs[t] = append([]float64(nil), emb[id*D:(id+1)*D]...)
	}
	for _, L := range m.Layers {
		wq, wk, wv, wo := get(L.Wq), get(L.Wk), get(L.Wv), get(L.Wo)
		w1, w2, w3 := get(L.Gate), get(L.Down), get(L.Up)
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for t := range T {
			h := norm(xs[t], L.AttnNorm)
			qs[t], ks[t], vs[t] = matvec(wq, D, D, h), matvec(wk, KV, D, h), matvec(wv, KV, D, h)
			rope(qs[t], t)
			rope(ks[t], t)
		}
		for t := range T {
			att := make([]float64, D)
			for h := range c.Heads {
				g := h / (c.Heads / c.KVHeads)
				sc := make([]float64, t+1)
				mx := math.Inf(-1)
				for s := 0; s <= t; s++ {
					for i := range hd {
						sc[s] += qs[t][h*hd+i] * ks[s][g*hd+i]
					}
					sc[s] /= math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[s])
				}
				var z float64
				for s := range sc {
					sc[s] = math.Exp(sc[s] - mx)
					z += sc[s]
				}
				for s := range sc {
					for i := range hd {
						att[h*hd+i] += sc[s] / z * vs[s][g*hd+i]
					}
				}
			}
			o := matvec(wo, D, D, att)
			for i := range o {
				xs[t][i] += o[i]
			}
			h := norm(xs[t], L.FFNNorm)
			a, b := matvec(w1, c.HiddenDim, D, h), matvec(w3, c.HiddenDim, D, h)
			for i := range a {
				a[i] = a[i] / (1 + math.Exp(-a[i])) * b[i]
			}
			d := matvec(w2, D, c.HiddenDim, a)
			for i := range d {
				xs[t][i] += d[i]
			}
		}
	}
	out := get(m.Output)
	logits := make([][]float64, T)
	for t := range T {
		logits[t] = matvec(out, c.Vocab, D, norm(xs[t], m.FinalNorm))
	}
	return logits
}

func TestForwardMatchesNaiveFloat64(t *testing.T) {
	m, tok := loadStories(t, quant.F32)
	ids := tok.Encode("Lily saw a big dog in the park.", true, false)
	want := naiveLogits(m, ids)
	st := m.NewState()
	var worst float64
	for pos, id := range ids {
		got := st.Forward(id, pos)
		for i, v := range got {
			worst = math.Max(worst, math.Abs(float64(v)-want[pos][i]))
		}
	}
	if worst > 1e-3 {
		t.Fatalf("Forward differs from the float64 reference by %g", worst)
	}
	t.Logf("max |Forward − float64 reference| = %.2g over %d positions", worst, len(ids))
}

func TestLoadRejectsBadCheckpoints(t *testing.T) {
	p := testshared.Path(t, "models/stories260K/stories260K.bin")
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"empty":     nil,
		"header":    good[:20],
		"truncated": good[:len(good)/2],
		"zero dim":  append(make([]byte, 28), good[28:]...),
	} {
		if _, err := ParseLlama2C(data, quant.F32); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseLlama2C(good, quant.Q4_K); err == nil {
		t.Error("load as Q4_K accepted")
	}
}

func TestSampleTop(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := []float32{0, 5, 4.9, -3, 1}
	counts := map[int]int{}
	for range 2000 {
		l := append([]float32(nil), logits...)
		counts[SampleTop(l, 1, 2, 0, rng)]++
	}
	if len(counts) != 2 || counts[1] == 0 || counts[2] == 0 {
		t.Fatalf("top-k 2 drew %v, want only tokens 1 and 2", counts)
	}
	clear(counts)
	for range 2000 {
		l := append([]float32(nil), logits...)
		counts[SampleTop(l, 1, 0, 0.3, rng)]++
	}
	if len(counts) != 1 || counts[1] != 2000 {
		t.Fatalf("top-p 0.3 drew %v, want only the most likely token", counts)
	}
	if got := SampleTop([]float32{1, 3, 2}, 0, 1, 0.5, rng); got != 1 {
		t.Fatalf("greedy gave %d", got)
	}
}
