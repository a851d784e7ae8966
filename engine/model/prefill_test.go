package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"orchmind/engine/quant"
)

// lowRank is a test Delta: out += B·(A·x) for every projection of every
// layer, with fixed random A [2, in] and B [out, 2].
type lowRank struct {
	m    *Model
	a, b map[[2]int][]float32
}

func newLowRank(m *Model, seed uint64) *lowRank {
	rng := rand.New(rand.NewPCG(seed, 5))
	d := &lowRank{m: m, a: map[[2]int][]float32{}, b: map[[2]int][]float32{}}
	for l := range m.Layers {
		for p := range NumProj {
			w := m.Layers[l].Weight(p)
			a, b := make([]float32, 2*w.Cols), make([]float32, w.Rows*2)
			for i := range a {
				a[i] = float32(rng.NormFloat64() * 0.1)
			}
			for i := range b {
				b[i] = float32(rng.NormFloat64() * 0.1)
			}
			d.a[[2]int{l, int(p)}], d.b[[2]int{l, int(p)}] = a, b
		}
	}
	return d
}

func (d *lowRank) AddDelta(l int, p Proj, x []float32, n int, out []float32) {
	w := d.m.Layers[l].Weight(p)
	a, b := d.a[[2]int{l, int(p)}], d.b[[2]int{l, int(p)}]
	for t := range n {
		xt, ot := x[t*w.Cols:(t+1)*w.Cols], out[t*w.Rows:(t+1)*w.Rows]
		var u [2]float32
		for j := range 2 {
			for i, v := range xt {
				u[j] += a[j*w.Cols+i] * v
			}
		}
		for i := range ot {
			ot[i] += b[2*i]*u[0] + b[2*i+1]*u[1]
		}
	}
}

// TestPrefillMatchesForward: Prefill over a prompt longer than one batch,
// and in two parts (the second starting at a later position), gives the
// logits and KV cache that token-by-token Forward gives, up to float32
// summation order, for float and quantized weights, grouped-query
// attention, Qwen2 biases and a plugged delta.
func TestPrefillMatchesForward(t *testing.T) {
	c := Config{Dim: 64, HiddenDim: 96, Layers: 2, Heads: 8, KVHeads: 2, Vocab: 77, SeqLen: 320, NormEps: 1e-5, RopeTheta: 10000}
	for _, tc := range []struct {
		name  string
		typ   quant.Type
		arch  string
		delta bool
	}{{"f32", quant.F32, "", false}, {"q8_0", quant.Q8_0, "", true}, {"q4_0-qwen2", quant.Q4_0, ArchQwen2, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cc := c
			cc.Arch = tc.arch
			m, err := Random(cc, tc.typ, 3)
			if err != nil {
				t.Fatal(err)
			}
			if cc.QKVBias() {
				rng := rand.New(rand.NewPCG(4, 4))
				for l := range m.Layers {
					L := &m.Layers[l]
					for _, p := range []Proj{ProjQ, ProjK, ProjV} {
						L.Bias[p] = make([]float32, L.Weight(p).Rows)
						for i := range L.Bias[p] {
							L.Bias[p][i] = float32(rng.NormFloat64() * 0.3)
						}
					}
				}
			}
			var d Delta
			if tc.delta {
				d = newLowRank(m, 6)
			}
			ids := make([]int, 300)
			for i := range ids {
				ids[i] = (i*31 + 7) % c.Vocab
			}
			// Every State on the float32 path: a prompt's last batch of
			// fewer than 4 tokens and single tokens would otherwise take
			// integer dot products (generation's default), which differ
			// from the batches' by the activations' quantization.
			ref := m.NewState()
			ref.SetFloat32(true)
			ref.SetDelta(d)
			var want []float32
			for pos, id := range ids {
				want = ref.Forward(id, pos)
			}
			want = append([]float32(nil), want...)
			wantNext := append([]float32(nil), ref.Forward(5, len(ids))...)

			whole := m.NewState()
			whole.SetFloat32(true)
			whole.SetDelta(d)
			check(t, "prefill in one call", whole.Prefill(ids, 0), want)
			check(t, "next token after prefill", whole.Forward(5, len(ids)), wantNext)

			parts := m.NewState()
			parts.SetFloat32(true)
			parts.SetDelta(d)
			parts.Prefill(ids[:100], 0)
			check(t, "prefill in two parts", parts.Prefill(ids[100:], 100), want)
			check(t, "next token after two parts", parts.Forward(5, len(ids)), wantNext)
		})
	}
}

// check fails unless got and want agree to 1e-4 of want's largest value.
func check(t *testing.T, what string, got, want []float32) {
	t.Helper()
	var worst, top float64
	for i := range want {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
		top = math.Max(top, math.Abs(float64(want[i])))
	}
	if worst > 1e-4*top {
		t.Fatalf("%s: logits differ by %g (largest logit %g)", what, worst, top)
	}
}
