package tensor

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"orchmind/trainer/quant"
)

// benchShapes are SmolLM-135M's matrices (out×in): the MLP up/gate
// projection, the MLP down projection and the tied embedding/classifier.
var benchShapes = []struct{ rows, cols int }{{1536, 576}, {576, 1536}, {49152, 576}}

// BenchmarkMatMul runs x·Wᵀ at SmolLM-135M sizes for Q8_0 and Q4_0 weights,
// one input (generation) and 64 (a prompt or training batch), with every
// kernel set this CPU has side by side: generic/ is pure Go, avx2/ and
// avx512/ the assembly. All use GOMAXPROCS workers.
//
//	go test -run '^$' -bench 'MatMul$' -benchtime 20x ./trainer/tensor/
func BenchmarkMatMul(b *testing.B) {
	benchKernels(b, func(k *kernels, out, x []float32, n int, m *Matrix) { matMul(k, out, x, n, m) }, false)
}

// BenchmarkMatMulT is BenchmarkMatMul for dy·W (the backward pass).
func BenchmarkMatMulT(b *testing.B) {
	benchKernels(b, func(k *kernels, out, dy []float32, n int, m *Matrix) { matMulT(k, out, dy, n, m) }, true)
}

func benchKernels(b *testing.B, f func(k *kernels, out, in []float32, n int, m *Matrix), transposed bool) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0} {
		for _, sh := range benchShapes {
			m, err := Quantized(typ, sh.rows, sh.cols, randVals(r, sh.rows*sh.cols))
			if err != nil {
				b.Fatal(err)
			}
			for _, n := range []int{1, 64} {
				nIn, nOut := sh.cols, sh.rows
				if transposed {
					nIn, nOut = nOut, nIn
				}
				in, out := randVals(r, n*nIn), make([]float32, n*nOut)
				for _, k := range availableKernels() {
					b.Run(fmt.Sprintf("%s_%dx%d_n%d/%s", typ, sh.rows, sh.cols, n, k.name), func(b *testing.B) {
						for b.Loop() {
							f(k, out, in, n, m)
						}
						flops := 2 * float64(sh.rows*sh.cols*n) * float64(b.N)
						b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					})
				}
			}
		}
	}
}
