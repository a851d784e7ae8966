package tensor

import (
	"math"
	"math/rand/v2"
	"testing"

	"orchmind/engine/quant"
)

func randVals(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// naive computes out = x·Wᵀ and dx = dy·W in float64 from dense values.
func naive(w []float32, rows, cols int, x []float32, n int) []float64 {
	out := make([]float64, n*rows)
	for i := 0; i < n; i++ {
		for r := 0; r < rows; r++ {
			var s float64
			for k := 0; k < cols; k++ {
				s += float64(w[r*cols+k]) * float64(x[i*cols+k])
			}
			out[i*rows+r] = s
		}
	}
	return out
}

func TestMatMulMatchesDenseMath(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q4_1} {
		rows, cols, n := 7, 64, 3
		m, err := Quantized(typ, rows, cols, randVals(r, rows*cols))
		if err != nil {
			t.Fatal(err)
		}
		dense := m.Float32() // the values the quantized matrix really holds
		x := randVals(r, n*cols)
		out := make([]float32, n*rows)
		MatMul(out, x, n, m)
		want := naive(dense, rows, cols, x, n)
		for i := range out {
			if math.Abs(float64(out[i])-want[i]) > 1e-4*(1+math.Abs(want[i])) {
				t.Fatalf("%s: out[%d] = %g, want %g", typ, i, out[i], want[i])
			}
		}
		// MatMulT is the transpose: <dy, x·Wᵀ> == <dy·W, x>.
		dy := randVals(r, n*rows)
		dx := make([]float32, n*cols)
		MatMulT(dx, dy, n, m)
		var lhs, rhs float64
		for i := range dy {
			lhs += float64(dy[i]) * float64(out[i])
		}
		for i := range dx {
			rhs += float64(dx[i]) * float64(x[i])
		}
		if math.Abs(lhs-rhs) > 1e-3*(1+math.Abs(lhs)) {
			t.Fatalf("%s: <dy, xWᵀ> = %g but <dyW, x> = %g", typ, lhs, rhs)
		}
	}
}

func TestNewMatrixChecksSize(t *testing.T) {
	if _, err := NewMatrix(quant.Q8_0, 2, 32, make([]byte, 67)); err == nil {
		t.Error("accepted 67 bytes for a 2×32 Q8_0 matrix (needs 68)")
	}
	if _, err := NewMatrix(quant.Q4_0, 1, 31, nil); err == nil {
		t.Error("accepted 31 columns of Q4_0")
	}
	if _, err := Quantized(quant.F32, 2, 2, []float32{1}); err == nil {
		t.Error("accepted too few values")
	}
	m, err := NewMatrix(quant.Q8_0, 2, 32, make([]byte, 68))
	if err != nil || m.RowBytes() != 34 || len(m.Row(1)) != 34 {
		t.Fatalf("%v %v", m, err)
	}
}

func TestDotAxpyTails(t *testing.T) {
	for n := 0; n < 40; n++ {
		a, b := make([]float32, n), make([]float32, n)
		var want float32
		for i := range a {
			a[i], b[i] = float32(i+1), float32(2*i-3)
			want += a[i] * b[i]
		}
		if got := Dot(a, b); got != want {
			t.Fatalf("Dot n=%d: %g, want %g", n, got, want)
		}
		Axpy(2, a, b)
		for i := range b {
			if b[i] != float32(2*i-3)+2*float32(i+1) {
				t.Fatalf("Axpy n=%d at %d: %g", n, i, b[i])
			}
		}
	}
}

// TestMatMulParallelMatchesReference exercises the multi-worker path.
func TestMatMulParallelMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	rows, cols, n := 257, 256, 5
	m, _ := Quantized(quant.Q4_0, rows, cols, randVals(r, rows*cols))
	x := randVals(r, n*cols)
	got, want := make([]float32, n*rows), make([]float32, n*rows)
	MatMul(got, x, n, m)
	MatMulRef(want, x, n, m)
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("MatMul[%d] = %g, reference %g", i, got[i], want[i])
		}
	}
	dy := randVals(r, n*rows)
	gotT, wantT := make([]float32, n*cols), make([]float32, n*cols)
	MatMulT(gotT, dy, n, m)
	MatMulTRef(wantT, dy, n, m)
	for i := range gotT {
		if math.Abs(float64(gotT[i]-wantT[i])) > 1e-4*(1+math.Abs(float64(wantT[i]))) {
			t.Fatalf("MatMulT[%d] = %g, reference %g", i, gotT[i], wantT[i])
		}
	}
}

func BenchmarkMatMulRefQ8_0_1536x576_n64(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	m, _ := Quantized(quant.Q8_0, 1536, 576, randVals(r, 1536*576))
	x := randVals(r, 64*576)
	out := make([]float32, 64*1536)
	for b.Loop() {
		MatMulRef(out, x, 64, m)
	}
	b.ReportMetric(2*float64(1536*576*64)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkMatMulRefQ8_0_1536x576_n1(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	m, _ := Quantized(quant.Q8_0, 1536, 576, randVals(r, 1536*576))
	x := randVals(r, 576)
	out := make([]float32, 1536)
	for b.Loop() {
		MatMulRef(out, x, 1, m)
	}
	b.ReportMetric(2*float64(1536*576)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
