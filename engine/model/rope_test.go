package model

import (
	"math"
	"path/filepath"
	"testing"

	"orchmind/engine/quant"
)

// hfLlama3InvFreq is transformers' _compute_llama3_parameters, written out
// in float64: the scaled inverse frequencies of Llama 3.1+ RoPE.
func hfLlama3InvFreq(theta float64, dim int, factor, low, high float64, orig int) []float64 {
	out := make([]float64, dim/2)
	lowWave, highWave := float64(orig)/low, float64(orig)/high
	for i := range out {
		inv := 1 / math.Pow(theta, float64(2*i)/float64(dim))
		wave := 2 * math.Pi / inv
		v := inv
		if wave > lowWave {
			v = inv / factor
		}
		if !(wave < highWave) && !(wave > lowWave) {
			smooth := (float64(orig)/wave - low) / (high - low)
			v = (1-smooth)*inv/factor + smooth*inv
		}
		out[i] = v
	}
	return out
}

// TestLlama3RopeFactors: with Llama 3.2's parameters the factors give the
// inverse frequencies transformers computes (to float32 precision), keep
// the fastest pairs and divide the slowest by the factor.
func TestLlama3RopeFactors(t *testing.T) {
	const theta, hd = 500000, 64
	f := Llama3RopeFactors(theta, hd, 32, 1, 4, 8192)
	if f[0] != 1 || f[len(f)-1] != 32 {
		t.Fatalf("factors run %g … %g, want 1 … 32", f[0], f[len(f)-1])
	}
	m := &Model{Config: Config{Dim: hd * 2, Heads: 2, RopeTheta: theta}, RopeFactors: f}
	want := hfLlama3InvFreq(theta, hd, 32, 1, 4, 8192)
	blended := 0
	for i, got := range m.RopeInvFreq() {
		if math.Abs(got-want[i]) > 1e-6*want[i] {
			t.Errorf("pair %d: inverse frequency %g, transformers %g", i, got, want[i])
		}
		if f[i] != 1 && f[i] != 32 {
			blended++
		}
	}
	if blended == 0 {
		t.Error("no pair falls in the blended band; the test does not cover it")
	}
}

// TestRopeFactorsGGUFRoundTrip: a model with RoPE factors writes them as
// rope_freqs.weight and loads them back with the same logits; the factors
// change the logits and the fingerprint (but not for models without them).
func TestRopeFactorsGGUFRoundTrip(t *testing.T) {
	c := Config{Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 50, SeqLen: 300, NormEps: 1e-5, RopeTheta: 10000}
	plain, err := Random(c, quant.Q8_0, 9)
	if err != nil {
		t.Fatal(err)
	}
	scaled := *plain
	scaled.RopeFactors = Llama3RopeFactors(c.RopeTheta, c.HeadDim(), 8, 1, 4, 64)
	p := filepath.Join(t.TempDir(), "scaled.gguf")
	if err := WriteGGUF(p, &scaled, "scaled", AsStored, nil, nil); err != nil {
		t.Fatal(err)
	}
	back, _, err := Load(p, AsStored)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.RopeFactors) != len(scaled.RopeFactors) {
		t.Fatalf("%d factors loaded, %d written", len(back.RopeFactors), len(scaled.RopeFactors))
	}
	ids := []int{1, 7, 3, 44, 12, 9, 30, 2, 2, 18}
	pos := make([]int, 250) // positions beyond the scaled wavelengths
	for i := range pos {
		pos[i] = (i * 13) % c.Vocab
	}
	ids = append(ids, pos...)
	a, b, q := logitsOf(&scaled, ids), logitsOf(back, ids), logitsOf(plain, ids)
	var diff float64
	for i := range a {
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				t.Fatalf("position %d: logits differ after the round trip", i)
			}
			diff = max(diff, math.Abs(float64(a[i][j]-q[i][j])))
		}
	}
	if diff < 1e-2 {
		t.Errorf("RoPE factors change the logits by only %g", diff)
	}
	if Fingerprint(&scaled) == Fingerprint(plain) || Fingerprint(back) != Fingerprint(&scaled) {
		t.Error("the fingerprint must cover the RoPE factors and survive the round trip")
	}
}
