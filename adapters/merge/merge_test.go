package merge

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"orchmind/adapters"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tensor"
	"orchmind/trainer/lora"
)

func tinyModel(t *testing.T) *model.Model {
	t.Helper()
	c := model.Config{Dim: 32, HiddenDim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 50, SeqLen: 16, NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true}
	rng := rand.New(rand.NewPCG(1, 1))
	mat := func(rows, cols int) *tensor.Matrix {
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32(rng.NormFloat64() / math.Sqrt(float64(cols)))
		}
		m, err := tensor.Quantized(quant.Q8_0, rows, cols, v)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ones := make([]float32, c.Dim)
	for i := range ones {
		ones[i] = 1
	}
	m := &model.Model{Config: c, Layers: make([]model.Layer, c.Layers), FinalNorm: ones, Embed: mat(c.Vocab, c.Dim)}
	m.Output = m.Embed
	for l := range m.Layers {
		m.Layers[l] = model.Layer{AttnNorm: ones, FFNNorm: ones, Wq: mat(c.Dim, c.Dim), Wk: mat(c.KVDim(), c.Dim),
			Wv: mat(c.KVDim(), c.Dim), Wo: mat(c.Dim, c.Dim), Gate: mat(c.HiddenDim, c.Dim), Up: mat(c.HiddenDim, c.Dim), Down: mat(c.Dim, c.HiddenDim)}
	}
	return m
}

func trainedLike(t *testing.T, m *model.Model, rank int, alpha float32, mods []adapters.Module, seed uint64) *adapters.Adapter {
	t.Helper()
	a, err := lora.New(m, rank, alpha, mods, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	for _, k := range a.SortedKeys() { // map order would make the weights differ run to run
		p := a.Pairs[k]
		for i := range p.B {
			p.B[i] = float32(rng.NormFloat64() * 0.3)
		}
	}
	a.BaseFingerprint = "sha256:base"
	return a
}

func logits(t *testing.T, m *model.Model, ws ...lora.Weighted) []float32 {
	t.Helper()
	p, err := lora.NewPlug(m, ws...)
	if err != nil {
		t.Fatal(err)
	}
	st := m.NewState()
	st.SetDelta(p)
	var out []float32
	for pos, id := range []int{1, 7, 3, 42, 9} {
		out = append(out, st.Forward(id, pos)...)
	}
	return out
}

func maxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func TestCatAndFullSVDEqualPluggingBoth(t *testing.T) {
	m := tinyModel(t)
	a := trainedLike(t, m, 4, 8, nil, 1)
	b := trainedLike(t, m, 2, 16, []adapters.Module{adapters.Q, adapters.V, adapters.Down}, 2)
	in := []Input{{a, 0.7, "a"}, {b, 0.3, "b"}}
	want := logits(t, m, lora.Weighted{Adapter: a, Weight: 0.7}, lora.Weighted{Adapter: b, Weight: 0.3})

	cat, rep, err := Cat(in)
	if err != nil {
		t.Fatal(err)
	}
	if cat.Rank != 6 || rep.MinEnergy != 1 || cat.BaseFingerprint != "sha256:base" {
		t.Fatalf("cat: rank %d, energy %g, base %q", cat.Rank, rep.MinEnergy, cat.BaseFingerprint)
	}
	if d := maxDiff(logits(t, m, lora.Weighted{Adapter: cat, Weight: 1}), want); d > 1e-5 {
		t.Errorf("cat: logits differ from plugging both by %g", d)
	}

	full, rep, err := SVD(in, 6)
	if err != nil {
		t.Fatal(err)
	}
	if rep.MinEnergy < 1-1e-9 {
		t.Errorf("svd at full rank kept only %g of the energy", rep.MinEnergy)
	}
	if d := maxDiff(logits(t, m, lora.Weighted{Adapter: full, Weight: 1}), want); d > 1e-4 {
		t.Errorf("svd at full rank: logits differ by %g", d)
	}

	low, rep, err := SVD(in, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !(rep.MinEnergy > 0 && rep.MinEnergy < 1) {
		t.Errorf("svd at rank 2 reports energy %g, want in (0, 1)", rep.MinEnergy)
	}
	t.Logf("svd rank 2 keeps ≥ %.3f of each update's energy; logits move by %.3g", rep.MinEnergy, maxDiff(logits(t, m, lora.Weighted{Adapter: low, Weight: 1}), want))
}

// TestNaiveAveragingIsWrong documents why: averaging A and B separately
// changes the update (the original app's bug).
func TestNaiveAveragingIsWrong(t *testing.T) {
	m := tinyModel(t)
	a := trainedLike(t, m, 4, 8, nil, 1)
	b := trainedLike(t, m, 4, 8, nil, 2)
	naive := trainedLike(t, m, 4, 8, nil, 3)
	for k, p := range naive.Pairs {
		for i := range p.A {
			p.A[i] = (a.Pairs[k].A[i] + b.Pairs[k].A[i]) / 2
		}
		for i := range p.B {
			p.B[i] = (a.Pairs[k].B[i] + b.Pairs[k].B[i]) / 2
		}
	}
	want := logits(t, m, lora.Weighted{Adapter: a, Weight: 0.5}, lora.Weighted{Adapter: b, Weight: 0.5})
	cat, _, err := Cat([]Input{{a, 0.5, "a"}, {b, 0.5, "b"}})
	if err != nil {
		t.Fatal(err)
	}
	right, wrong := maxDiff(logits(t, m, lora.Weighted{Adapter: cat, Weight: 1}), want), maxDiff(logits(t, m, lora.Weighted{Adapter: naive, Weight: 1}), want)
	if right > 1e-5 || wrong < 100*right {
		t.Fatalf("cat error %g, naive averaging error %g", right, wrong)
	}
}

func TestRefusesOtherBases(t *testing.T) {
	m := tinyModel(t)
	a := trainedLike(t, m, 2, 4, nil, 1)
	b := trainedLike(t, m, 2, 4, nil, 2)
	b.BaseFingerprint = "sha256:other"
	_, _, err := Cat([]Input{{a, 1, "a"}, {b, 1, "b"}})
	if err == nil || !strings.Contains(err.Error(), "sha256:base") || !strings.Contains(err.Error(), "sha256:other") {
		t.Fatalf("got %v, want a refusal naming both fingerprints", err)
	}
	if _, _, err := SVD([]Input{{a, 1, "a"}}, 0); err == nil {
		t.Fatal("rank 0 accepted")
	}
	if _, _, err := Cat(nil); err == nil {
		t.Fatal("empty merge accepted")
	}
}

func TestSVDOfKnownMatrix(t *testing.T) {
	// diag(3, 1) rotated: singular values 3 and 1.
	c, s := math.Cos(0.3), math.Sin(0.3)
	a := []float64{3 * c, -s, 3 * s, c}
	_, sig, _ := svd(a, 2)
	if math.Abs(sig[0]-3) > 1e-12 || math.Abs(sig[1]-1) > 1e-12 {
		t.Fatalf("σ = %v, want [3 1]", sig)
	}
}
