package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestExp32Accuracy: Exp32 against math.Exp over its whole range, to a few
// ulp relative (denormal results excepted).
func TestExp32Accuracy(t *testing.T) {
	var worst float64
	for x := float32(-87); x <= 0; x += 0.00037 {
		want := math.Exp(float64(x))
		got := float64(Exp32(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 4e-7 {
		t.Fatalf("Exp32 relative error up to %g", worst)
	}
	if Exp32(-1000) > 1e-37 || Exp32(0) != 1 {
		t.Fatalf("Exp32(-1000) = %g, Exp32(0) = %g", Exp32(-1000), Exp32(0))
	}
	t.Logf("worst relative error %.2g", worst)
}

// TestSigmoid32 against float64 math over ±100 (relative error; absolute
// below 1e-30, where Exp32 clamps its argument at −87).
func TestSigmoid32(t *testing.T) {
	var worst float64
	for x := float32(-100); x <= 100; x += 0.00131 {
		want := 1 / (1 + math.Exp(-float64(x)))
		err := math.Abs(float64(Sigmoid32(x)) - want)
		if want > 1e-30 {
			err /= want // relative, except where float32 underflows anyway
		}
		worst = max(worst, err)
	}
	if worst > 1e-6 {
		t.Fatalf("Sigmoid32 relative error up to %g", worst)
	}
}

// TestSigmoidKernels: every kernel set's Sigmoid against float64 math,
// lengths around the vector width, in place and not.
func TestSigmoidKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, k := range availableKernels() {
		for _, n := range []int{1, 7, 8, 9, 16, 33, 1000} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.NormFloat64() * 12)
			}
			x[0] = -200
			got := make([]float32, n)
			k.sigmoid(got, x)
			for i, v := range x {
				want := 1 / (1 + math.Exp(-float64(v)))
				err := math.Abs(float64(got[i]) - want)
				if want > 1e-30 {
					err /= want
				}
				if err > 1e-6 {
					t.Fatalf("%s n=%d: sigmoid(%g) = %g, want %g", k.name, n, v, got[i], want)
				}
			}
			k.sigmoid(x, x)
			for i := range x {
				if x[i] != got[i] {
					t.Fatalf("%s: in place differs at %d", k.name, i)
				}
			}
		}
	}
}

// TestMaxAndExpSubKernelsAgree: every kernel set gives the pure-Go
// results: Max exactly, ExpSub's values to 1 ulp and their sum to 1e-5 (another summation order),
// for lengths around the vector widths and with the maximum anywhere.
func TestMaxAndExpSubKernelsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, k := range availableKernels() {
		for _, n := range []int{1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 32000} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.NormFloat64() * 8)
			}
			x[r.IntN(n)] = 30 // the maximum somewhere, also in the tail
			name := fmt.Sprintf("%s/n=%d", k.name, n)
			if got, want := k.max(x), maxGo(x); got != want {
				t.Fatalf("%s: max %g, want %g", name, got, want)
			}
			m := maxGo(x)
			want := append([]float32(nil), x...)
			zw := expSubGo(want, m)
			got := append([]float32(nil), x...)
			zg := k.expSub(got, m)
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 1.2e-7*float64(want[i])+1e-38 {
					t.Fatalf("%s: exp[%d] = %g, want %g", name, i, got[i], want[i])
				}
			}
			if math.Abs(float64(zg-zw)) > 1e-5*float64(zw) {
				t.Fatalf("%s: sum %g, want %g", name, zg, zw)
			}
			var z64 float64
			for _, v := range x {
				z64 += math.Exp(float64(v - m))
			}
			if math.Abs(float64(zg)-z64) > 1e-5*z64 {
				t.Fatalf("%s: sum %g, float64 reference %g", name, zg, z64)
			}
		}
	}
}

// BenchmarkSoftmax32000: max and exponentials of one row of logits at a
// 32,000-token vocabulary, per kernel set.
func BenchmarkSoftmax32000(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 32000)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 4)
	}
	work := make([]float32, len(x))
	for _, k := range availableKernels() {
		b.Run(k.name, func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				copy(work, x)
				m := k.max(work)
				k.expSub(work, m)
			}
		})
	}
}
