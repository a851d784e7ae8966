package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"orchmind/engine/quant"
)

// forBF16Sets runs f for every bfloat16 kernel set this CPU has (AMX
// tiles, AVX512-BF16), or skips the test on CPUs with neither.
func forBF16Sets(t *testing.T, f func(t *testing.T, bk *bf16Kernels)) {
	sets := availableBF16()
	if len(sets) == 0 {
		t.Skip("no bfloat16 kernels on this CPU (neither AMX-BF16 tiles nor AVX512-BF16): the bfloat16 paths are MatMul and MatMulT here")
	}
	for _, s := range sets {
		t.Run(s.name, func(t *testing.T) { f(t, s.k) })
	}
}

func TestToBF16RoundsToNearestEven(t *testing.T) {
	cases := []struct {
		in   uint32
		want uint16
	}{
		{0x3F800000, 0x3F80}, // 1
		{0x3F808000, 0x3F80}, // halfway, even stays
		{0x3F818000, 0x3F82}, // halfway, odd rounds up
		{0x3F808001, 0x3F81}, // above halfway
		{0x7F7FFFFF, 0x7F80}, // largest float rounds to +Inf
		{0xFF800000, 0xFF80}, // -Inf
		{0x7FC00000, 0x7FC0}, // NaN
		{0x00000001, 0x0000}, // tiny denormal
	}
	for _, c := range cases {
		if got := toBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("toBF16(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
}

func TestBF16HelpersMatchDefinition(t *testing.T) {
	forBF16Sets(t, func(t *testing.T, bk *bf16Kernels) {
		r := rand.New(rand.NewPCG(41, 42))
		for _, n := range []int{1, 15, 16, 17, 47, 576} {
			src := randVals(r, n)
			src[0] = math.Float32frombits(0x3F818000) // a tie
			dst := make([]uint16, n)
			bk.row(dst, src)
			for i, v := range src {
				if dst[i] != toBF16(v) {
					t.Fatalf("row n=%d: [%d] = %#04x, want %#04x", n, i, dst[i], toBF16(v))
				}
			}
		}
		const pairs, lds, ldd = 7, 40, 36
		src := randVals(r, 2*pairs*lds)
		dst := make([]uint32, pairs*ldd)
		checkPairs(dst, ldd, src, lds, pairs)
		bk.pairs(dst, ldd, src, lds, pairs)
		for p := range pairs {
			for j := range 32 {
				want := uint32(toBF16(src[2*p*lds+j])) | uint32(toBF16(src[(2*p+1)*lds+j]))<<16
				if dst[p*ldd+j] != want {
					t.Fatalf("pairs [%d][%d] = %#08x, want %#08x", p, j, dst[p*ldd+j], want)
				}
			}
		}
		g := make([]uint32, 16*lds)
		for i := range g {
			g[i] = r.Uint32()
		}
		gd := make([]uint32, pairs*ldd)
		checkGather(gd, ldd, g, lds, pairs)
		bk.gather(gd, ldd, g, lds, pairs)
		for p := range pairs {
			for j := range 16 {
				if gd[p*ldd+j] != g[j*lds+p] {
					t.Fatalf("gather [%d][%d] = %#08x, want %#08x", p, j, gd[p*ldd+j], g[j*lds+p])
				}
			}
		}
	})
}

// TestBF16Gemm32MatchesFloat64 checks each set's gemm32 kernel against float64 sums of
// the same bfloat16 values, overwriting and accumulating.
func TestBF16Gemm32MatchesFloat64(t *testing.T) {
	forBF16Sets(t, func(t *testing.T, bk *bf16Kernels) {
		r := rand.New(rand.NewPCG(43, 44))
		const ksteps, groups, lda, ldb, ldc = 5, 3, 32*5 + 16, 40, 48
		K := 32 * ksteps
		a := make([]uint16, 32*groups*lda)
		for i := range a {
			a[i] = toBF16(float32(r.NormFloat64()))
		}
		b := make([]uint32, 16*ksteps*ldb)
		for i := range b {
			b[i] = uint32(toBF16(float32(r.NormFloat64()))) | uint32(toBF16(float32(r.NormFloat64())))<<16
		}
		bAt := func(k, j int) float64 {
			v := b[(k/2)*ldb+j]
			return float64(fromBF16(uint16(v >> (16 * (k % 2)))))
		}
		for _, acc := range []bool{false, true} {
			c := make([]float32, 32*groups*ldc)
			init := make([]float32, len(c))
			if acc {
				for i := range c {
					c[i] = float32(r.NormFloat64())
				}
				copy(init, c)
			}
			checkGemm32(a, lda, b, ldb, c, ldc, ksteps, groups)
			bk.gemm32(a, lda, b, ldb, c, ldc, ksteps, groups, acc)
			for g := range groups {
				for i := range 32 {
					for j := range 32 {
						var s, mag float64
						for k := range K {
							p := float64(fromBF16(a[(32*g+i)*lda+k])) * bAt(k, j)
							s += p
							mag += math.Abs(p)
						}
						at := (32*g+i)*ldc + j
						s += float64(init[at])
						if d := math.Abs(float64(c[at]) - s); d > 1e-5*(mag+1) {
							t.Fatalf("acc=%v C_%d[%d][%d] = %g, want %g", acc, g, i, j, c[at], s)
						}
					}
				}
				// Columns past the tile are left alone.
				for i := range 32 {
					for j := 32; j < ldc; j++ {
						if at := (32*g+i)*ldc + j; c[at] != init[at] {
							t.Fatalf("acc=%v wrote C_%d[%d][%d] outside the tile", acc, g, i, j)
						}
					}
				}
			}
		}
	})
}

// bf16Ref computes out = x·Wᵀ (or dy·W with transposed) in float64 over
// bfloat16-rounded operands, and the magnitude Σ|terms| of each output.
func bf16Ref(x []float32, n int, w []float32, rows, cols int, transposed bool) (want, mag []float64) {
	in, outN := cols, rows
	if transposed {
		in, outN = rows, cols
	}
	want, mag = make([]float64, n*outN), make([]float64, n*outN)
	for i := range n {
		for o := range outN {
			var s, m float64
			for k := range in {
				var wv float32
				if transposed {
					wv = w[k*cols+o]
				} else {
					wv = w[o*cols+k]
				}
				p := float64(fromBF16(toBF16(x[i*in+k]))) * float64(fromBF16(toBF16(wv)))
				s += p
				m += math.Abs(p)
			}
			want[i*outN+o], mag[i*outN+o] = s, m
		}
	}
	return want, mag
}

func TestMatMulBF16MatchesBF16Reference(t *testing.T) {
	forBF16Sets(t, func(t *testing.T, bk *bf16Kernels) {
		r := rand.New(rand.NewPCG(45, 46))
		shapes := []struct {
			typ           quant.Type
			rows, cols, n int
		}{
			{quant.Q8_0, 64, 96, 32},   // whole tiles straight into out
			{quant.Q8_0, 45, 96, 33},   // row and input tails
			{quant.Q4_0, 96, 576, 70},  // several groups
			{quant.Q4_K, 40, 512, 64},  // super-block rows
			{quant.Q6_K, 33, 256, 40},  //
			{quant.F32, 50, 40, 35},    // cols not a multiple of 32: padded K, a partial column tile
			{quant.F32, 255, 255, 64},  // attention's T×T
			{quant.F16, 64, 1088, 255}, // MatMulT in three passes of K
		}
		for _, sh := range shapes {
			name := fmt.Sprintf("%s/%dx%d_n%d", sh.typ, sh.rows, sh.cols, sh.n)
			m, err := Quantized(sh.typ, sh.rows, sh.cols, randVals(r, sh.rows*sh.cols))
			if err != nil {
				t.Fatal(err)
			}
			w := m.Float32()
			x := randVals(r, sh.n*sh.cols)
			out := make([]float32, sh.n*sh.rows+3)
			out[len(out)-1] = 7
			matMulBF16(bk, out, x, sh.n, m)
			if out[len(out)-1] != 7 {
				t.Fatalf("%s: MatMulBF16 wrote past n×rows", name)
			}
			want, mag := bf16Ref(x, sh.n, w, sh.rows, sh.cols, false)
			for i, v := range want {
				if d := math.Abs(float64(out[i]) - v); d > 2e-6*mag[i]+1e-6 {
					t.Fatalf("%s: MatMulBF16 out[%d] = %g, want %g (Σ|terms| %g)", name, i, out[i], v, mag[i])
				}
			}
			dy := randVals(r, sh.n*sh.rows)
			outT := make([]float32, sh.n*sh.cols)
			matMulTBF16(bk, outT, dy, sh.n, m)
			wantT, magT := bf16Ref(dy, sh.n, w, sh.rows, sh.cols, true)
			for i, v := range wantT {
				if d := math.Abs(float64(outT[i]) - v); d > 2e-6*magT[i]+1e-6 {
					t.Fatalf("%s: MatMulTBF16 out[%d] = %g, want %g (Σ|terms| %g)", name, i, outT[i], v, magT[i])
				}
			}
		}
	})
}

// TestMatMulBF16CloseToFloat32 bounds the bfloat16 products' distance from
// the float32 ones, on any CPU (without tiles they are the same function).
func TestMatMulBF16CloseToFloat32(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	const rows, cols, n = 96, 288, 64
	m, err := Quantized(quant.Q8_0, rows, cols, randVals(r, rows*cols))
	if err != nil {
		t.Fatal(err)
	}
	x, dy := randVals(r, n*cols), randVals(r, n*rows)
	got, want := make([]float32, n*rows), make([]float32, n*rows)
	MatMulBF16(got, x, n, m)
	MatMul(want, x, n, m)
	_, mag := bf16Ref(x, n, m.Float32(), rows, cols, false)
	requireWithin(t, "MatMulBF16", got, want, mag)
	gotT, wantT := make([]float32, n*cols), make([]float32, n*cols)
	MatMulTBF16(gotT, dy, n, m)
	MatMulT(wantT, dy, n, m)
	_, magT := bf16Ref(dy, n, m.Float32(), rows, cols, true)
	requireWithin(t, "MatMulTBF16", gotT, wantT, magT)
}

// requireWithin fails unless every got[i] is within 2⁻⁷·mag[i] of want[i].
func requireWithin(t *testing.T, what string, got, want []float32, mag []float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 0x1p-7*mag[i] {
			t.Fatalf("%s out[%d] = %g, float32 %g: further than 2⁻⁷·%g", what, i, got[i], want[i], mag[i])
		}
	}
}

// requireSameBits fails unless got and want are bit for bit the same.
func requireSameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: out[%d] = %g, with one worker %g", what, i, got[i], want[i])
		}
	}
}

func TestBF16ResultsIndependentOfWorkers(t *testing.T) {
	forBF16Sets(t, func(t *testing.T, bk *bf16Kernels) {
		r := rand.New(rand.NewPCG(49, 50))
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
		m, err := Quantized(quant.Q8_0, 200, 1056, randVals(r, 200*1056))
		if err != nil {
			t.Fatal(err)
		}
		const n = 77
		x, dy := randVals(r, n*1056), randVals(r, n*200)
		var want, wantT []float32
		for _, workers := range []int{1, 2, 3} {
			runtime.GOMAXPROCS(workers)
			out, outT := make([]float32, n*200), make([]float32, n*1056)
			matMulBF16(bk, out, x, n, m)
			matMulTBF16(bk, outT, dy, n, m)
			if want == nil {
				want, wantT = out, outT
				continue
			}
			requireSameBits(t, fmt.Sprintf("%d workers: MatMulBF16", workers), out, want)
			requireSameBits(t, fmt.Sprintf("%d workers: MatMulTBF16", workers), outT, wantT)
		}
	})
}
