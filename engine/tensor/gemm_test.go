package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"orchmind/engine/quant"
)

// gemmSets returns the kernel sets of this CPU that have a blocked kernel.
func gemmSets(t *testing.T) []*kernels {
	var ks []*kernels
	for _, k := range availableKernels() {
		if k.gemm != nil {
			ks = append(ks, k)
		}
	}
	if len(ks) == 0 {
		t.Skip("no blocked gemm kernel on this CPU")
	}
	return ks
}

// TestGemmKernelMatchesFloat64 runs each micro-kernel on one tile with odd
// depths (1, 2, 3 and the unrolled loop's tails), strides wider than the
// tile, both modes (overwrite and accumulate) and checks every element
// against float64 math, and that nothing outside the tile changes.
func TestGemmKernelMatchesFloat64(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, k := range gemmSets(t) {
		g := k.gemm
		for _, depth := range []int{1, 2, 3, 4, 7, 16, 33, 290} {
			for _, acc := range []bool{false, true} {
				lda, ldb, ldc := depth+3, g.nr+5, g.nr+7
				a := values(r, (g.mr-1)*lda+depth, "large")
				b := values(r, (depth-1)*ldb+g.nr, "spiky")
				c := values(r, (g.mr-1)*ldc+g.nr+1, "normal")
				c0 := append([]float32(nil), c...)
				g.run(a, lda, b, ldb, c, ldc, depth, acc)
				name := fmt.Sprintf("%s/%dx%d/k%d/acc=%v", k.name, g.mr, g.nr, depth, acc)
				scales := make([]float64, len(c))
				for i := range g.mr {
					for j := range ldc {
						at := i*ldc + j
						if at >= len(c) {
							break
						}
						if j >= g.nr {
							if c[at] != c0[at] {
								t.Fatalf("%s: wrote outside the tile at row %d column %d", name, i, j)
							}
							continue
						}
						var want, scale float64
						if acc {
							want, scale = float64(c0[at]), math.Abs(float64(c0[at]))
						}
						for p := range depth {
							v := float64(a[i*lda+p]) * float64(b[p*ldb+j])
							want += v
							scale += math.Abs(v)
						}
						scales[at] = scale
						if !within(c[at], want, scale) {
							t.Fatalf("%s: c[%d][%d] = %g, want %g", name, i, j, c[at], want)
						}
					}
				}
				// The transposed-store kernel gives the same sums, bit for
				// bit, at c[j·ldt + i], and touches nothing else.
				if g.ft != nil && !acc {
					ldt := g.mr + 3
					ct := values(r, (g.nr-1)*ldt+g.mr+2, "normal")
					ct0 := append([]float32(nil), ct...)
					g.runT(a, lda, b, ldb, ct, ldt, depth)
					for j := range g.nr {
						for i := range ldt {
							at := j*ldt + i
							if at >= len(ct) {
								break
							}
							if i >= g.mr {
								if ct[at] != ct0[at] {
									t.Fatalf("%s transposed: wrote outside the tile at row %d column %d", name, i, j)
								}
								continue
							}
							if math.Float32bits(ct[at]) != math.Float32bits(c[i*ldc+j]) {
								t.Fatalf("%s transposed: (%d, %d) = %g, gemm gives %g", name, i, j, ct[at], c[i*ldc+j])
							}
						}
					}
				}
				// The Go definition used for documentation agrees too.
				ref := append([]float32(nil), c0...)
				gemmRef(g.mr, g.nr, a, lda, b, ldb, ref, ldc, depth, acc)
				for i := range g.mr {
					for j := range g.nr {
						at := i*ldc + j
						if !within(c[at], float64(ref[at]), 2*scales[at]) {
							t.Fatalf("%s: c[%d][%d] = %g, gemmRef %g", name, i, j, c[at], ref[at])
						}
					}
				}
			}
		}
	}
}

// TestGemmKernelRejectsShortSlices checks that the wrapper refuses a tile
// that would run past its slices instead of letting the assembly do so.
func TestGemmKernelRejectsShortSlices(t *testing.T) {
	for _, k := range gemmSets(t) {
		g := k.gemm
		depth := 5
		a := make([]float32, g.mr*depth)
		b := make([]float32, depth*g.nr)
		c := make([]float32, g.mr*g.nr)
		for _, tc := range []struct {
			name string
			f    func()
		}{
			{"short a", func() { g.run(a[1:], depth, b, g.nr, c, g.nr, depth, false) }},
			{"short b", func() { g.run(a, depth, b[1:], g.nr, c, g.nr, depth, false) }},
			{"short c", func() { g.run(a, depth, b, g.nr, c[1:], g.nr, depth, false) }},
			{"zero depth", func() { g.run(a, depth, b, g.nr, c, g.nr, 0, false) }},
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s %s: no panic", k.name, tc.name)
					}
				}()
				tc.f()
			}()
		}
	}
}

// TestBlockedMatMulTails runs the blocked MatMul and MatMulT paths on shapes
// that leave partial tiles in every direction (inputs not a multiple of the
// tile, W rows not a multiple of mr, columns not a multiple of nr for float
// types, W deeper than one MatMulT pass) and checks them against float64.
func TestBlockedMatMulTails(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	shapes := []struct {
		typ           quant.Type
		rows, cols, n int
	}{
		{quant.Q8_0, 13, 96, 8},
		{quant.Q8_0, 300, 352, 37},
		{quant.Q4_0, 257, 64, 4},
		{quant.Q4_0, 40, 32 * 9, 70},
		{quant.F32, 9, 333, 41},
		{quant.F16, 515, 47, 6},
		{quant.F16, 70, 47, 21},
		{quant.BF16, 31, 130, 33},
		{quant.Q4_1, 20, 160, 45},
		{quant.Q4_K, 13, 512, 37},
		{quant.Q6_K, 70, 768, 9},
		{quant.Q5_K, 300, 256, 33},
		// MatMul in passes over K (cols > 2·gemmKC), the last pass short.
		{quant.Q8_0, 301, 1184, 41},
		{quant.F32, 37, 1030, 23},
		// Float32 matrices whose whole panels are read in place: attention's
		// keys (T×64) and values (64×T) and an adapter's A (r×in).
		{quant.F32, 256, 64, 256},
		{quant.F32, 64, 256, 37},
		{quant.F32, 16, 576, 70},
		{quant.BF16, 19, 777, 20},
		{quant.Q4_K, 45, 1280, 37},
		{quant.Q6_K, 13, 768, 70},
	}
	for _, k := range gemmSets(t) {
		for _, sh := range shapes {
			m, err := Quantized(sh.typ, sh.rows, sh.cols, values(r, sh.rows*sh.cols, "normal"))
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("%s/%s/%dx%d_n%d", k.name, sh.typ, sh.rows, sh.cols, sh.n)
			checkMatMul(t, name, k, m, r, sh.n, "normal")
		}
	}
}

// TestBlockedResultsIndependentOfWorkers runs the blocked paths with 1, 2,
// 3 and 4 workers (both ways of splitting MatMulT: by columns and by input
// groups) and requires bit-identical outputs.
func TestBlockedResultsIndependentOfWorkers(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	shapes := []struct {
		typ           quant.Type
		rows, cols, n int
	}{
		{quant.Q8_0, 300, 320, 40},  // split by columns
		{quant.Q8_0, 270, 288, 200}, // 9 column units for 2 workers: split by input groups
		{quant.Q8_0, 290, 352, 37},  // uneven column split
		{quant.F32, 270, 333, 19},   // column tail
		{quant.Q4_0, 600, 1024, 64}, // several MatMulT passes
		{quant.Q4_K, 300, 768, 40},  // 3 super-block column units
		{quant.Q6_K, 290, 512, 200},
		{quant.Q5_K, 270, 1024, 19},
		{quant.Q8_0, 300, 1184, 41}, // MatMul in passes over K, row groups
		{quant.Q4_K, 290, 1280, 37},
	}
	for _, k := range gemmSets(t) {
		for _, sh := range shapes {
			m, err := Quantized(sh.typ, sh.rows, sh.cols, values(r, sh.rows*sh.cols, "normal"))
			if err != nil {
				t.Fatal(err)
			}
			x := values(r, sh.n*sh.cols, "normal")
			dy := values(r, sh.n*sh.rows, "normal")
			var want, wantT []float32
			for _, workers := range []int{1, 2, 3, 4} {
				runtime.GOMAXPROCS(workers)
				out := make([]float32, sh.n*sh.rows)
				matMul(k, out, x, sh.n, m)
				outT := make([]float32, sh.n*sh.cols)
				matMulT(k, outT, dy, sh.n, m)
				if want == nil {
					want, wantT = out, outT
					continue
				}
				name := fmt.Sprintf("%s/%s/%dx%d_n%d/%d workers", k.name, sh.typ, sh.rows, sh.cols, sh.n, workers)
				requireSameBits(t, name+": MatMul", out, want)
				requireSameBits(t, name+": MatMulT", outT, wantT)
			}
		}
	}
}

// TestGemmPackMatchesDefinition checks the input packing of MatMul (the t8
// kernel plus its Go edges) against its definition for partial panels,
// column counts with and without a tail of 8, and panels not at input 0.
func TestGemmPackMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, k := range gemmSets(t) {
		g := k.gemm
		for _, cols := range []int{1, 7, 8, 9, 16, 45, 288} {
			for _, m := range []int{1, 7, 8, 9, g.nr - 1, g.nr} {
				if m > g.nr {
					continue // a panel holds at most nr inputs (NEON: 8)
				}
				i0 := 3
				x := values(r, (i0+m)*cols+5, "normal")
				dst := values(r, cols*g.nr+4, "normal") // junk to overwrite
				tail := append([]float32(nil), dst[cols*g.nr:]...)
				g.pack(dst, x, i0, m, cols)
				for c := range cols {
					for tt := range g.nr {
						want := float32(0)
						if tt < m {
							want = x[(i0+tt)*cols+c]
						}
						if got := dst[c*g.nr+tt]; got != want {
							t.Fatalf("%s: cols %d, %d inputs: dst[%d·nr+%d] = %g, want %g", k.name, cols, m, c, tt, got, want)
						}
					}
				}
				for i, v := range tail {
					if dst[cols*g.nr+i] != v {
						t.Fatalf("%s: cols %d, %d inputs: wrote past the panel", k.name, cols, m)
					}
				}
			}
		}
	}
}
