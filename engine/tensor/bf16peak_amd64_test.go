package tensor

import (
	"testing"

	"golang.org/x/sys/cpu"
)

// BenchmarkBF16Peak compares one core's peak of VDPBF16PS (64 flops per
// zmm instruction: 16 lanes × 2 products × multiply and add) with
// VFMADD231PS (32 flops), 16 independent accumulators each, alternating
// the two in every iteration; "ratio" is the median of dpbf16/fma
// GFLOP/s over the iterations (SIMD.md: Intel Sapphire Rapids 110 against
// 205, AMD Zen 4 about 2×).
//
//	go test -run '^$' -bench BF16Peak -benchtime 20x ./engine/tensor/
func BenchmarkBF16Peak(b *testing.B) {
	if !cpu.X86.HasAVX512BF16 {
		b.Skip("no AVX512-BF16 on this CPU")
	}
	const loops = 200_000
	var fma, dp float64
	var ratios []float64
	for b.Loop() {
		ratio, _, _, ta, tb := abMedian(3, func() { peakFMA(loops) }, func() { peakDPBF16(loops) })
		// ratio is tFMA/tDP; per flop DP does twice the work per instruction.
		ratios = append(ratios, 2*ratio)
		fma += 16 * 32 * loops / ta.Seconds() / 1e9
		dp += 16 * 64 * loops / tb.Seconds() / 1e9
	}
	b.ReportMetric(fma/float64(b.N), "fma-GFLOP/s")
	b.ReportMetric(dp/float64(b.N), "dpbf16-GFLOP/s")
	b.ReportMetric(median(ratios), "ratio")
	b.ReportMetric(minOf(ratios), "ratio-min")
	b.ReportMetric(maxOf(ratios), "ratio-max")
}
