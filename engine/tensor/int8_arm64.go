package tensor

import (
	"golang.org/x/sys/cpu"

	"orchmind/engine/quant"
)

// Integer row kernels for arm64 (int8_arm64.s): SDOT (FEAT_DotProd) over
// nb blocks, w the stored row, q and d the activation's values and scales,
// m its M8 (−8·Σq per block; read by the Q4_K kernel only, for the mins).
// The signature is amd64's (int8_amd64.go), so the wrappers match.

//go:noescape
func dotQ8_0Q8SDOT(w *byte, q *int8, d *float32, m *int32, nb int) float32

//go:noescape
func dotQ4_0Q8SDOT(w *byte, q *int8, d *float32, m *int32, nb int) float32

//go:noescape
func dotQ4_KQ8SDOT(w *byte, q *int8, d *float32, m *int32, nb int) float32

//go:noescape
func dotQ6_KQ8SDOT(w *byte, q *int8, d *float32, m *int32, nb int) float32

// quantActNEON is quant.QuantizeAct over nb blocks, the same bytes
// (Advanced SIMD only; no SDOT).
//
//go:noescape
func quantActNEON(x *float32, q *int8, d *float32, m128 *int32, m8 *int32, nb int)

// quantizeNEON is quant.QuantizeAct with the NEON quantizer.
func quantizeNEON(a *quant.Q8Act, x []float32) error {
	if err := a.Resize(len(x)); err != nil {
		return err
	}
	if nb := len(x) / quant.QK; nb > 0 {
		quantActNEON(&x[0], &a.Q[0], &a.D[0], &a.M128[0], &a.M8[0], nb)
	}
	return nil
}

// sdotKernel wraps an arm64 kernel for rows of blocks of bb bytes and bs
// values, bounds-checking the activation (bs/32 blocks per row block:
// values, scales, M8) before passing pointers on.
func sdotKernel(f func(w *byte, q *int8, d *float32, m *int32, nb int) float32, bs, bb int) int8Dot {
	return func(a *quant.Q8Act, row []byte) float32 {
		nb := len(row) / bb
		if nb == 0 {
			return 0
		}
		na := nb * bs / quant.QK // activation blocks
		_, _, _ = a.Q[na*quant.QK-1], a.D[na-1], a.M8[na-1]
		return f(&row[0], &a.Q[0], &a.D[0], &a.M8[0], nb)
	}
}

// int8SDOT multiplies with SDOT: the integer kernels of the dotprod set.
var int8SDOT = &int8Set{name: "sdot", insn: "SDOT", quantize: quantizeNEON, dots: map[quant.Type]int8Dot{
	quant.Q8_0: sdotKernel(dotQ8_0Q8SDOT, quant.QK, 2+quant.QK),
	quant.Q4_0: sdotKernel(dotQ4_0Q8SDOT, quant.QK, 2+quant.QK/2),
	quant.Q4_K: sdotKernel(dotQ4_KQ8SDOT, quant.QKK, q4KBytes),
	quant.Q6_K: sdotKernel(dotQ6_KQ8SDOT, quant.QKK, q6KBytes),
}}

// hasDotProd reports the Advanced SIMD dot product instructions (SDOT,
// UDOT: FEAT_DotProd, "asimddp" in Linux's HWCAP, hw.optional.arm.FEAT_DotProd
// on macOS) besides NEON itself.
func hasDotProd() bool { return hasNEON() && cpu.ARM64.HasASIMDDP }

// int8For returns the integer kernels that go with kernel set level: SDOT
// on dotprod, pure Go on generic; none on neon, whose float32 kernels run
// generation.
func int8For(level string) *int8Set {
	switch level {
	case ISAGeneric:
		return int8Go
	case ISADotProd:
		if hasDotProd() {
			return int8SDOT
		}
	}
	return nil
}

// availableInt8 lists every integer kernel set this CPU can run, the Go
// reference first, for tests and benchmarks.
func availableInt8() []*int8Set {
	s := []*int8Set{int8Go}
	if hasDotProd() {
		s = append(s, int8SDOT)
	}
	return s
}
