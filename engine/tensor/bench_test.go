package tensor

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"orchmind/engine/quant"
)

// benchShapes are the weight matrices (out×in) that training and generation
// multiply by: stories15M's attention, MLP up/gate, MLP down and classifier,
// then SmolLM-135M's attention, k/v projection, MLP up/gate, MLP down and
// tied embedding/classifier.
var benchShapes = []struct{ rows, cols int }{
	{288, 288}, {768, 288}, {288, 768}, {32000, 288},
	{576, 576}, {192, 576}, {1536, 576}, {576, 1536}, {49152, 576},
}

// benchNs are the numbers of input vectors: one (generation), 64 and 256
// (a prompt or a training sequence).
var benchNs = []int{1, 64, 256}

// benchShapesK are weight matrices whose sides are multiples of the K-quant
// super-block (256 values), Llama-3.2-1B's: attention q/o (2048×2048), MLP
// gate/up (8192×2048) and down (2048×8192). They run for every block type
// (the K-quants that Q4_K_M/Q5_K_M files hold, and Q8_0/Q4_0 to compare)
// with benchNsK inputs.
var benchShapesK = []struct{ rows, cols int }{{2048, 2048}, {8192, 2048}, {2048, 8192}}

// benchNsK are the numbers of inputs at benchShapesK: generation and a
// prompt chunk.
var benchNsK = []int{1, 64}

// benchCase is one matrix size and type with the input counts to run.
type benchCase struct {
	typ        quant.Type
	rows, cols int
	ns         []int
}

// benchCases lists BenchmarkMatMul's and BenchmarkMatMulT's cases: Q8_0
// and Q4_0 at benchShapes, then every block type at benchShapesK.
func benchCases() []benchCase {
	var cs []benchCase
	for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0} {
		for _, sh := range benchShapes {
			cs = append(cs, benchCase{typ, sh.rows, sh.cols, benchNs})
		}
	}
	for _, typ := range []quant.Type{quant.Q4_K, quant.Q6_K, quant.Q5_K, quant.Q4_0, quant.Q8_0} {
		for _, sh := range benchShapesK {
			cs = append(cs, benchCase{typ, sh.rows, sh.cols, benchNsK})
		}
	}
	return cs
}

// benchMatrices caches the random matrices of the benchmarks by type and
// shape: the large K-quant ones take a second or more to quantize.
var benchMatrices = map[benchKey]*Matrix{}

type benchKey struct {
	typ        quant.Type
	rows, cols int
}

func benchMatrix(b *testing.B, c benchCase) *Matrix {
	key := benchKey{c.typ, c.rows, c.cols}
	if m := benchMatrices[key]; m != nil {
		return m
	}
	r := rand.New(rand.NewPCG(uint64(c.rows), uint64(c.cols)))
	m, err := Quantized(c.typ, c.rows, c.cols, randVals(r, c.rows*c.cols))
	if err != nil {
		b.Fatal(err)
	}
	benchMatrices[key] = m
	return m
}

// BenchmarkMatMul runs x·Wᵀ for the cases of benchCases with every kernel
// set this CPU has side by side: generic/ is pure Go, avx2/ and avx512/
// (neon/ on arm64) the assembly. All use GOMAXPROCS workers.
//
//	go test -run '^$' -bench 'MatMul$/Q8_0_1536x576_n256' -benchtime 20x ./engine/tensor/
//	go test -run '^$' -bench 'MatMul$/Q4_K_' -benchtime 20x ./engine/tensor/
func BenchmarkMatMul(b *testing.B) {
	benchKernels(b, func(k *kernels, out, x []float32, n int, m *Matrix) { matMul(k, out, x, n, m) }, matMulBF16, false)
}

// BenchmarkMatMulT is BenchmarkMatMul for dy·W (the backward pass).
func BenchmarkMatMulT(b *testing.B) {
	benchKernels(b, func(k *kernels, out, dy []float32, n int, m *Matrix) { matMulT(k, out, dy, n, m) }, matMulTBF16, true)
}

// benchKernels runs f with every kernel set, then (for n ≥ 32) the
// bfloat16 path bf16 with every bfloat16 set the CPU has (amx-bf16/,
// avx512bf16-bf16/).
func benchKernels(b *testing.B, f func(k *kernels, out, in []float32, n int, m *Matrix), bf16 func(bk *bf16Kernels, out, in []float32, n int, m *Matrix), transposed bool) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, c := range benchCases() {
		for _, n := range c.ns {
			nIn, nOut := c.cols, c.rows
			if transposed {
				nIn, nOut = nOut, nIn
			}
			for _, k := range availableKernels() {
				b.Run(fmt.Sprintf("%s_%dx%d_n%d/%s", c.typ, c.rows, c.cols, n, k.name), func(b *testing.B) {
					m := benchMatrix(b, c) // built on first use
					in, out := randVals(r, n*nIn), make([]float32, n*nOut)
					for b.Loop() {
						f(k, out, in, n, m)
					}
					flops := 2 * float64(c.rows*c.cols*n) * float64(b.N)
					b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
			if n < bf16MinN {
				continue
			}
			for _, bs := range availableBF16() {
				b.Run(fmt.Sprintf("%s_%dx%d_n%d/%s-bf16", c.typ, c.rows, c.cols, n, bs.name), func(b *testing.B) {
					m := benchMatrix(b, c)
					in, out := randVals(r, n*nIn), make([]float32, n*nOut)
					for b.Loop() {
						bf16(bs.k, out, in, n, m)
					}
					flops := 2 * float64(c.rows*c.cols*n) * float64(b.N)
					b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkMatMulF32View runs MatMul and MatMulT on float32 matrices made
// with View, as training's attention and adapter products do: scores Q·Kᵀ
// (keys 256×64) and P·V (values 64×256) for 256 queries, u = x·Aᵀ (A
// 16×576) and u·Bᵀ (B 576×16) for 256 tokens; then MatMulT's dS·Q-style
// product (dS 256×256, 64 inputs: a head's width) and an adapter's weight
// gradient uᵀ·dy (dy 256×576, r = 16 inputs); with every kernel set.
//
//	go test -run '^$' -bench MatMulF32View -benchtime 2000x ./engine/tensor/
func BenchmarkMatMulF32View(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, sh := range []struct {
		name          string
		rows, cols, n int
		transposed    bool
	}{
		{"keys_256x64", 256, 64, 256, false}, {"values_64x256", 64, 256, 256, false},
		{"loraA_16x576", 16, 576, 256, false}, {"loraB_576x16", 576, 16, 256, false},
		{"T_scores_256x256_n64", 256, 256, 64, true}, {"T_grad_256x576_n16", 256, 576, 16, true},
		{"T_grad_256x1536_n16", 256, 1536, 16, true},
	} {
		w := View(sh.rows, sh.cols, randVals(r, sh.rows*sh.cols))
		for _, k := range availableKernels() {
			b.Run(sh.name+"/"+k.name, func(b *testing.B) {
				nIn, nOut := sh.cols, sh.rows
				if sh.transposed {
					nIn, nOut = nOut, nIn
				}
				x, out := randVals(r, sh.n*nIn), make([]float32, sh.n*nOut)
				for b.Loop() {
					if sh.transposed {
						matMulT(k, out, x, sh.n, w)
					} else {
						matMul(k, out, x, sh.n, w)
					}
				}
				b.ReportMetric(2*float64(sh.rows*sh.cols*sh.n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkGemmPack measures MatMul's input packing (x transposed into
// panels) for a stories15M training sequence, 256 inputs × 288 values.
func BenchmarkGemmPack(b *testing.B) {
	for _, k := range availableKernels() {
		if k.gemm == nil {
			continue
		}
		b.Run(k.name, func(b *testing.B) {
			g := k.gemm
			n, cols := 256, 288
			x := randVals(rand.New(rand.NewPCG(2, 2)), n*cols)
			xp := make([]float32, (n+g.nr-1)/g.nr*g.nr*cols)
			for b.Loop() {
				for j := 0; j*g.nr < n; j++ {
					g.pack(xp[j*cols*g.nr:], x, j*g.nr, min(g.nr, n-j*g.nr), cols)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n*cols), "ns/value")
		})
	}
}

// BenchmarkGemmKernel runs one micro-kernel tile (k = 256, all operands in
// L1) on one core: the ceiling the blocked MatMul and MatMulT approach.
func BenchmarkGemmKernel(b *testing.B) {
	for _, k := range availableKernels() {
		if k.gemm == nil {
			continue
		}
		b.Run(k.name, func(b *testing.B) {
			g, depth := k.gemm, 256
			r := rand.New(rand.NewPCG(3, 3))
			a, bm, c := randVals(r, g.mr*depth), randVals(r, depth*g.nr), make([]float32, g.mr*g.nr)
			for b.Loop() {
				g.run(a, depth, bm, g.nr, c, g.nr, depth, true)
			}
			b.ReportMetric(2*float64(g.mr*g.nr*depth)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// benchPerValue runs f as a sub-benchmark and reports ns per value.
func benchPerValue(b *testing.B, name string, values int, f func()) {
	b.Run(name, func(b *testing.B) {
		for b.Loop() {
			f()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(values), "ns/value")
	})
}

// BenchmarkVectorKernels times each float32 kernel of every kernel set on
// one SmolLM-135M-sized vector (576 values; 1536, the MLP width, for
// sigmoid), in ns per value (for dot4, per value of all four inputs).
//
//	go test -run '^$' -bench VectorKernels ./engine/tensor/
func BenchmarkVectorKernels(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	const n = 576
	a, x, y := randVals(r, n), randVals(r, 4*n), make([]float32, n)
	e := make([]float32, n)
	s, sd := randVals(r, 1536), make([]float32, 1536)
	var sink float32
	for _, k := range availableKernels() {
		var o [4]float32
		benchPerValue(b, "dot/"+k.name, n, func() { sink += k.dot(a, x) })
		benchPerValue(b, "axpy/"+k.name, n, func() { k.axpy(1e-3, a, y) })
		benchPerValue(b, "dot4/"+k.name, 4*n, func() { k.dot4(a, x, n, &o) })
		benchPerValue(b, "max/"+k.name, n, func() { sink += k.max(a) })
		benchPerValue(b, "expSub/"+k.name, n, func() { copy(e, a); sink += k.expSub(e, 5) })
		benchPerValue(b, "sigmoid/"+k.name, len(s), func() { k.sigmoid(sd, s) })
		sink += o[0]
	}
	_ = sink
}

// BenchmarkRowKernels times the kernels on one stored row per type and
// kernel set (576 values for F16, Q8_0 and Q4_0; 2048, eight super-blocks,
// for the K-quants), in ns per value: the fused dot with f32 activations,
// dequantization, and the fused axpy. Where a set has no kernel for a row
// type it runs what MatMul and MatMulT would (quant.Dequantize, then the
// float32 axpy); where it has no fused dot the dot is left out.
//
//	go test -run '^$' -bench RowKernels ./engine/tensor/
func BenchmarkRowKernels(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 5))
	var sink float32
	for _, typ := range []quant.Type{quant.F16, quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K, quant.Q5_K} {
		cols := 576
		if typ.BlockSize() == quant.QKK {
			cols = 2048
		}
		x, y, tmp := randVals(r, cols), make([]float32, cols), make([]float32, cols)
		m, err := Quantized(typ, 1, cols, randVals(r, cols))
		if err != nil {
			b.Fatal(err)
		}
		row := m.Row(0)
		for _, k := range availableKernels() {
			rk := k.rows[typ]
			deq := k.dequantizer(typ)
			axpy := rk.axpy
			if axpy == nil {
				axpy = func(alpha float32, row []byte, y []float32) {
					deq(tmp, row)
					k.axpy(alpha, tmp, y)
				}
			}
			name := fmt.Sprintf("%s_%%s/%s", typ, k.name)
			if rk.dot != nil {
				benchPerValue(b, fmt.Sprintf(name, "dot"), cols, func() { sink += rk.dot(x, row) })
			}
			benchPerValue(b, fmt.Sprintf(name, "dequant"), cols, func() { deq(tmp, row) })
			benchPerValue(b, fmt.Sprintf(name, "axpy"), cols, func() { axpy(1e-3, row, y) })
		}
	}
	_ = sink
}

// abMedian runs a and b alternately reps times (after one warm-up each)
// and returns the median and the spread (lowest, highest) of the time
// ratio a/b over the pairs, and the median time of each. Alternating keeps
// both sides under the same load: on a shared machine the ratio is the
// figure to trust, not the absolute times.
func abMedian(reps int, a, b func()) (ratio, lo, hi float64, ta, tb time.Duration) {
	a()
	b()
	var rs []float64
	var as, bs []time.Duration
	for range reps {
		t0 := time.Now()
		a()
		t1 := time.Now()
		b()
		t2 := time.Now()
		as, bs = append(as, t1.Sub(t0)), append(bs, t2.Sub(t1))
		rs = append(rs, float64(t1.Sub(t0))/float64(t2.Sub(t1)))
	}
	slices.Sort(rs)
	slices.Sort(as)
	slices.Sort(bs)
	return rs[len(rs)/2], rs[0], rs[len(rs)-1], as[len(as)/2], bs[len(bs)/2]
}

// BenchmarkBF16VsF32 times the bfloat16 products of every bfloat16 set
// against the float32 ones (the set's float32 kernels, avx512) on
// training shapes (n = 256 tokens), alternating the two in each iteration;
// it reports the median speed-up f32-time/bf16-time with its spread.
//
//	go test -run '^$' -bench BF16VsF32 -benchtime 5x ./engine/tensor/
func BenchmarkBF16VsF32(b *testing.B) {
	const n = 256
	r := rand.New(rand.NewPCG(6, 6))
	f32 := availableKernels()[len(availableKernels())-1]
	for _, bs := range availableBF16() {
		for _, sh := range []benchCase{{quant.Q8_0, 576, 576, nil}, {quant.Q8_0, 1536, 576, nil}, {quant.Q8_0, 576, 1536, nil}, {quant.Q4_K, 2048, 2048, nil}, {quant.F32, 256, 64, nil}} {
			for _, tr := range []bool{false, true} {
				op := "MatMul"
				if tr {
					op = "MatMulT"
				}
				b.Run(fmt.Sprintf("%s/%s_%s_%dx%d_n%d", bs.name, op, sh.typ, sh.rows, sh.cols, n), func(b *testing.B) {
					m := benchMatrix(b, sh)
					nIn, nOut := sh.cols, sh.rows
					if tr {
						nIn, nOut = nOut, nIn
					}
					in, out := randVals(r, n*nIn), make([]float32, n*nOut)
					fa := func() { matMul(f32, out, in, n, m) }
					fb := func() { matMulBF16(bs.k, out, in, n, m) }
					if tr {
						fa = func() { matMulT(f32, out, in, n, m) }
						fb = func() { matMulTBF16(bs.k, out, in, n, m) }
					}
					var rs []float64
					var ta, tb time.Duration
					for b.Loop() {
						ratio, _, _, a1, b1 := abMedian(5, fa, fb)
						rs, ta, tb = append(rs, ratio), ta+a1, tb+b1
					}
					slices.Sort(rs)
					flops := 2 * float64(sh.rows*sh.cols*n) * float64(b.N)
					b.ReportMetric(flops/ta.Seconds()/1e9, f32.name+"-GFLOP/s")
					b.ReportMetric(flops/tb.Seconds()/1e9, "bf16-GFLOP/s")
					b.ReportMetric(rs[len(rs)/2], "speedup")
					b.ReportMetric(rs[0], "speedup-min")
					b.ReportMetric(rs[len(rs)-1], "speedup-max")
				})
			}
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func minOf(v []float64) float64 { return slices.Min(v) }

func maxOf(v []float64) float64 { return slices.Max(v) }

// BenchmarkKernelSetsAB times every float32 kernel set this CPU has on the
// same call, round robin within each iteration (so all sets see the same
// load on a shared machine), at generation (n = 1) and training (n = 256)
// shapes. It reports each set's median GFLOP/s and its median speed-up
// over avx2 (over generic where there is no avx2) per round.
//
//	go test -run '^$' -bench KernelSetsAB -benchtime 5x ./engine/tensor/
func BenchmarkKernelSetsAB(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 7))
	ks := availableKernels()
	base := 0
	for i, k := range ks {
		if k.name == "avx2" {
			base = i
		}
	}
	for _, c := range []struct {
		benchCase
		n  int
		tr bool
	}{
		{benchCase{quant.Q8_0, 1536, 576, nil}, 1, false},
		{benchCase{quant.Q4_0, 1536, 576, nil}, 1, false},
		{benchCase{quant.Q4_K, 2048, 2048, nil}, 1, false},
		{benchCase{quant.Q8_0, 32000, 288, nil}, 1, false},
		{benchCase{quant.Q8_0, 1536, 576, nil}, 256, false},
		{benchCase{quant.Q8_0, 1536, 576, nil}, 256, true},
	} {
		op := "MatMul"
		if c.tr {
			op = "MatMulT"
		}
		b.Run(fmt.Sprintf("%s_%s_%dx%d_n%d", op, c.typ, c.rows, c.cols, c.n), func(b *testing.B) {
			m := benchMatrix(b, c.benchCase)
			nIn, nOut := c.cols, c.rows
			if c.tr {
				nIn, nOut = nOut, nIn
			}
			in, out := randVals(r, c.n*nIn), make([]float32, c.n*nOut)
			run := func(k *kernels) time.Duration {
				reps := 1
				if c.n == 1 {
					reps = 20 // a call of microseconds: time several
				}
				t0 := time.Now()
				for range reps {
					if c.tr {
						matMulT(k, out, in, c.n, m)
					} else {
						matMul(k, out, in, c.n, m)
					}
				}
				return time.Since(t0) / time.Duration(reps)
			}
			for _, k := range ks {
				run(k) // warm-up
			}
			times := make([][]float64, len(ks))
			speed := make([][]float64, len(ks))
			for b.Loop() {
				for range 3 {
					t := make([]float64, len(ks))
					for i, k := range ks {
						t[i] = run(k).Seconds()
						times[i] = append(times[i], t[i])
					}
					for i := range ks {
						speed[i] = append(speed[i], t[base]/t[i])
					}
				}
			}
			flop := 2 * float64(c.rows*c.cols*c.n)
			for i, k := range ks {
				b.ReportMetric(flop/median(times[i])/1e9, k.name+"-GFLOP/s")
				if i != base {
					b.ReportMetric(median(speed[i]), k.name+"/"+ks[base].name)
				}
			}
		})
	}
}
