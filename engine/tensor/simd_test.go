package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"orchmind/engine/quant"
)

var allTypes = []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q4_1}

// values returns n test values of the given flavour: normal, large (±3000
// scale, exercising f16 scales far from 1) or spiky (mostly small with rare
// ±1000 outliers, the worst case for block quantization).
func values(r *rand.Rand, n int, flavour string) []float32 {
	v := randVals(r, n)
	for i := range v {
		switch flavour {
		case "large":
			v[i] *= 3000
		case "spiky":
			if r.IntN(37) == 0 {
				v[i] = float32(1000 * (2*r.Float64() - 1))
			}
		}
	}
	return v
}

// within reports whether got is within rel·scale+abs of want, where scale is
// Σ|terms| of the sum (a bound on float32 rounding that does not explode
// when the sum cancels).
func within(got float32, want, scale float64) bool {
	return math.Abs(float64(got)-want) <= 2e-5*scale+1e-30
}

// dense64 computes out = x·Wᵀ and Σ|w·x| in float64.
func dense64(w []float32, rows, cols int, x []float32, n int) (out, scale []float64) {
	out, scale = make([]float64, n*rows), make([]float64, n*rows)
	for i := 0; i < n; i++ {
		for r := 0; r < rows; r++ {
			var s, a float64
			for k := 0; k < cols; k++ {
				p := float64(w[r*cols+k]) * float64(x[i*cols+k])
				s += p
				a += math.Abs(p)
			}
			out[i*rows+r], scale[i*rows+r] = s, a
		}
	}
	return out, scale
}

// denseT64 computes out = dy·W and Σ|dy·w| in float64.
func denseT64(w []float32, rows, cols int, dy []float32, n int) (out, scale []float64) {
	out, scale = make([]float64, n*cols), make([]float64, n*cols)
	for i := 0; i < n; i++ {
		for r := 0; r < rows; r++ {
			g := float64(dy[i*rows+r])
			for k := 0; k < cols; k++ {
				p := g * float64(w[r*cols+k])
				out[i*cols+k] += p
				scale[i*cols+k] += math.Abs(p)
			}
		}
	}
	return out, scale
}

func TestKernelSetsAvailable(t *testing.T) {
	ks := availableKernels()
	if ks[0] != generic {
		t.Fatalf("first kernel set is %q, want generic", ks[0].name)
	}
	names := []string{}
	for _, k := range ks {
		names = append(names, k.name)
	}
	if !strings.Contains(strings.Join(names, ","), SIMD()) {
		t.Fatalf("active kernels %q not among available %v", SIMD(), names)
	}
	t.Logf("kernel sets: %v; active: %s", names, SIMD())
	// On arm64 the NEON set must be there (Advanced SIMD is mandatory), or
	// the tests below would only compare generic with itself.
	if runtime.GOARCH == "arm64" && os.Getenv("ORCHMIND_NOSIMD") != "1" && SIMD() != "neon" {
		t.Fatalf("arm64 runs %q kernels, want neon", SIMD())
	}
}

func TestNoSIMDEnvForcesGeneric(t *testing.T) {
	t.Setenv("ORCHMIND_ISA", "")
	t.Setenv("ORCHMIND_NOAMX", "")
	t.Setenv("ORCHMIND_NOSIMD", "1")
	if k := chooseKernels(); k != generic {
		t.Fatalf("ORCHMIND_NOSIMD=1 chose %q, want generic", k.name)
	}
	t.Setenv("ORCHMIND_NOSIMD", "")
	if k := chooseKernels(); k.name != availableKernels()[len(availableKernels())-1].name {
		t.Fatalf("without ORCHMIND_NOSIMD chose %q, want the widest available", k.name)
	}
}

// TestMatMulKernelsMatchDenseMath runs MatMul and MatMulT through every
// kernel set on every type, over shapes with odd block counts, odd row
// counts, n below, at and above the 4-wide kernel, and extreme values,
// against float64 math on the values the matrix really holds.
func TestMatMulKernelsMatchDenseMath(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	shapes := []struct{ rows, cols, n int }{
		{1, 32, 1}, {3, 96, 2}, {17, 160, 5}, {33, 544, 4}, {5, 1056, 9}, {130, 64, 3}, {2, 32 * 67, 1},
	}
	for _, k := range availableKernels() {
		for _, typ := range allTypes {
			for _, sh := range shapes {
				for _, flavour := range []string{"normal", "large", "spiky"} {
					name := fmt.Sprintf("%s/%s/%dx%d_n%d/%s", k.name, typ, sh.rows, sh.cols, sh.n, flavour)
					m, err := Quantized(typ, sh.rows, sh.cols, values(r, sh.rows*sh.cols, flavour))
					if err != nil {
						t.Fatal(err)
					}
					checkMatMul(t, name, k, m, r, sh.n, flavour)
				}
			}
		}
	}
}

// TestFloatTypesOddColumns covers F32/F16/BF16 rows whose length is not a
// multiple of the vector width (the Go tails of the wrappers).
func TestFloatTypesOddColumns(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, k := range availableKernels() {
		for _, typ := range []quant.Type{quant.F32, quant.F16, quant.BF16} {
			for cols := 1; cols <= 41; cols += 4 {
				for _, n := range []int{1, 4, 6} {
					m, err := Quantized(typ, 5, cols, values(r, 5*cols, "normal"))
					if err != nil {
						t.Fatal(err)
					}
					checkMatMul(t, fmt.Sprintf("%s/%s/cols%d/n%d", k.name, typ, cols, n), k, m, r, n, "normal")
				}
			}
		}
	}
}

// TestMisalignedF32Rows uses an F32 matrix whose data does not start on a
// 4-byte boundary (as a memory-mapped file might), which the SIMD path must
// detect and handle.
func TestMisalignedF32Rows(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	rows, cols := 9, 40
	a, _ := Quantized(quant.F32, rows, cols, randVals(r, rows*cols))
	buf := make([]byte, len(a.Data)+1)
	copy(buf[1:], a.Data)
	m, err := NewMatrix(quant.F32, rows, cols, buf[1:])
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range availableKernels() {
		for _, n := range []int{1, 5} {
			checkMatMul(t, k.name+"/misaligned", k, m, r, n, "normal")
		}
	}
}

func checkMatMul(t *testing.T, name string, k *kernels, m *Matrix, r *rand.Rand, n int, flavour string) {
	t.Helper()
	dense := m.Float32()
	x := values(r, n*m.Cols, flavour)
	out := make([]float32, n*m.Rows+3)
	for i := range out {
		out[i] = float32(math.NaN()) // must all be overwritten, and no further
	}
	matMul(k, out, x, n, m)
	want, scale := dense64(dense, m.Rows, m.Cols, x, n)
	for i := range want {
		if !within(out[i], want[i], scale[i]) {
			t.Fatalf("%s: MatMul out[%d] = %g, want %g (Σ|terms| %g)", name, i, out[i], want[i], scale[i])
		}
	}
	for _, v := range out[n*m.Rows:] {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("%s: MatMul wrote past its output", name)
		}
	}
	dy := values(r, n*m.Rows, flavour)
	for i := range dy {
		if r.IntN(5) == 0 {
			dy[i] = 0 // the skipped rows
		}
	}
	dx := make([]float32, n*m.Cols+3)
	for i := range dx {
		dx[i] = float32(math.NaN())
	}
	matMulT(k, dx, dy, n, m)
	wantT, scaleT := denseT64(dense, m.Rows, m.Cols, dy, n)
	for i := range wantT {
		if !within(dx[i], wantT[i], scaleT[i]) {
			t.Fatalf("%s: MatMulT out[%d] = %g, want %g (Σ|terms| %g)", name, i, dx[i], wantT[i], scaleT[i])
		}
	}
	for _, v := range dx[n*m.Cols:] {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("%s: MatMulT wrote past its output", name)
		}
	}
}

// TestRowKernelsMatchDequantize checks each fused row kernel against
// quant.Dequantize on 0..70 blocks (of 32 values, or of the type's block
// when larger: 256 for the K-quants), including runs that start mid-row.
func TestRowKernelsMatchDequantize(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, k := range availableKernels() {
		for typ, rk := range k.rows {
			unit := max(quant.QK, typ.BlockSize())
			for nb := 0; nb <= 70; nb += 1 + nb/8 {
				if unit > quant.QK && nb > 20 {
					break
				}
				cols := nb * unit
				m, err := Quantized(typ, 1, cols+unit, values(r, cols+unit, "spiky"))
				if err != nil {
					t.Fatal(err)
				}
				// Skip the first block so the run does not start at the row's start.
				bb := unit / typ.BlockSize() * typ.BlockBytes()
				row := m.Data[bb:]
				vals := make([]float32, cols)
				if err := quant.Dequantize(typ, row, vals); err != nil {
					t.Fatal(err)
				}
				x := values(r, cols, "normal")
				name := fmt.Sprintf("%s/%s/%d blocks", k.name, typ, nb)
				if rk.dot != nil {
					var want, scale float64
					for i, v := range vals {
						want += float64(v) * float64(x[i])
						scale += math.Abs(float64(v) * float64(x[i]))
					}
					if got := rk.dot(x, row); !within(got, want, scale) {
						t.Errorf("%s: dot = %g, want %g", name, got, want)
					}
				}
				if rk.dequant != nil {
					requireDequant(t, name, rk.dequant, row, vals)
				}
				if rk.axpy != nil {
					y := values(r, cols+1, "normal")
					y0 := append([]float32(nil), y...)
					rk.axpy(-1.5, row, y)
					for i, v := range vals {
						want := float64(y0[i]) - 1.5*float64(v)
						if !within(y[i], want, math.Abs(float64(y0[i]))+math.Abs(1.5*float64(v))) {
							t.Fatalf("%s: axpy[%d] = %g, want %g", name, i, y[i], want)
						}
					}
					if y[cols] != y0[cols] {
						t.Fatalf("%s: axpy wrote past the end", name)
					}
				}
			}
		}
	}
}

// TestVectorKernelsTails checks dot, axpy and dot4 of every set for all
// lengths 0..70 (whole vectors plus every tail) against float64 math.
func TestVectorKernelsTails(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, k := range availableKernels() {
		for n := 0; n <= 70; n++ {
			a := values(r, n, "large")
			x := values(r, 4*n+3, "normal") // stride n+1: rows not back to back
			var o [4]float32
			k.dot4(a, x, n+1, &o)
			for j := range 4 {
				var want, scale float64
				for i := range n {
					p := float64(a[i]) * float64(x[j*(n+1)+i])
					want += p
					scale += math.Abs(p)
				}
				if !within(o[j], want, scale) {
					t.Fatalf("%s: dot4 n=%d [%d] = %g, want %g", k.name, n, j, o[j], want)
				}
				if j == 0 {
					if got := k.dot(a, x); !within(got, want, scale) {
						t.Fatalf("%s: dot n=%d = %g, want %g", k.name, n, got, want)
					}
				}
			}
			y := values(r, n+1, "normal")
			y0 := append([]float32(nil), y...)
			k.axpy(0.25, a, y)
			for i := range n {
				if want := y0[i] + 0.25*a[i]; math.Abs(float64(y[i]-want)) > 1e-6*math.Abs(float64(want))+1e-6 {
					t.Fatalf("%s: axpy n=%d [%d] = %g, want %g", k.name, n, i, y[i], want)
				}
			}
			if y[n] != y0[n] {
				t.Fatalf("%s: axpy n=%d wrote past the end", k.name, n)
			}
		}
	}
}

// TestKernelSetsAgree checks that every SIMD set gives the generic result
// up to float32 rounding on a SmolLM-sized Q8_0 and Q4_0 matmul.
func TestKernelSetsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	rows, cols, n := 96, 576, 5
	for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0} {
		m, _ := Quantized(typ, rows, cols, randVals(r, rows*cols))
		x := randVals(r, n*cols)
		want := make([]float32, n*rows)
		matMul(generic, want, x, n, m)
		_, scale := dense64(m.Float32(), rows, cols, x, n)
		for _, k := range availableKernels()[1:] {
			got := make([]float32, n*rows)
			matMul(k, got, x, n, m)
			for i := range got {
				if !within(got[i], float64(want[i]), scale[i]) {
					t.Fatalf("%s %s: out[%d] = %g, generic %g", k.name, typ, i, got[i], want[i])
				}
			}
		}
	}
}

func TestShortSlicesPanicClearly(t *testing.T) {
	m, _ := Quantized(quant.Q8_0, 4, 64, make([]float32, 256))
	for _, tc := range []struct {
		name string
		f    func()
		msg  string
	}{
		{"short x", func() { MatMul(make([]float32, 8), make([]float32, 100), 2, m) }, "input has 100 values"},
		{"short out", func() { MatMul(make([]float32, 7), make([]float32, 128), 2, m) }, "output has 7 values"},
		{"short dy", func() { MatMulT(make([]float32, 128), make([]float32, 7), 2, m) }, "input has 7 values"},
		{"short data", func() {
			MatMul(make([]float32, 4), make([]float32, 64), 1, &Matrix{Type: quant.Q8_0, Rows: 4, Cols: 64})
		}, "has 0 bytes"},
	} {
		func() {
			defer func() {
				p := recover()
				if s, _ := p.(string); !strings.Contains(s, tc.msg) {
					t.Errorf("%s: panic %v, want one mentioning %q", tc.name, p, tc.msg)
				}
			}()
			tc.f()
		}()
	}
}

// requireDequant checks that dequant writes exactly vals for row, and
// nothing past them.
func requireDequant(t *testing.T, name string, dequant func(dst []float32, row []byte), row []byte, vals []float32) {
	t.Helper()
	cols := len(vals)
	got := make([]float32, cols+1)
	got[cols] = 42
	dequant(got, row)
	for i, v := range vals {
		if got[i] != v {
			t.Fatalf("%s: dequant[%d] = %g, want %g", name, i, got[i], v)
		}
	}
	if got[cols] != 42 {
		t.Fatalf("%s: dequant wrote past the end", name)
	}
}
