package tensor

import (
	"golang.org/x/sys/cpu"

	"orchmind/engine/quant"
)

// asmNEON is the arm64 Advanced SIMD set (kernels_arm64.s): 128-bit vectors,
// an 8×8 blocked micro-kernel (16 accumulators, A by element) that can
// also store its tile transposed, and row kernels for every block type
// with them on amd64 (F16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K).
var asmNEON = asmSet{
	name: "neon", lanes: 4,
	dotF32: dotF32NEON, axpyF32: axpyF32NEON, dot4F32: dot4F32NEON,
	dotF16: dotF16NEON, dequantF16: dequantF16NEON,
	dotQ8: dotQ8_0NEON, dotQ4: dotQ4_0NEON,
	dequantQ8: dequantQ8_0NEON, dequantQ4: dequantQ4_0NEON,
	axpyQ8: axpyQ8_0NEON, axpyQ4: axpyQ4_0NEON,
	gemm: gemmNEON, gemmT: gemmTNEON, transpose8: transpose8F32NEON, mr: 8, nr: 8,
	maxF32: maxF32NEON, expSubF32: expSubF32NEON,
	sigmoidF32: sigmoidF32NEON, sigmoidLanes: 4,
	kquant: map[quant.Type]blockKernels{
		quant.Q4_K: {dot: dotQ4_KNEON, dequant: dequantQ4_KNEON, axpy: axpyQ4_KNEON},
		quant.Q5_K: {dot: dotQ5_KNEON, dequant: dequantQ5_KNEON, axpy: axpyQ5_KNEON},
		quant.Q6_K: {dot: dotQ6_KNEON, dequant: dequantQ6_KNEON, axpy: axpyQ6_KNEON},
	},
}

// gemmTNEON is gemmNEON's transposed-store mode (2): the 8×8 tile A·B with
// element (i, j) at c[j·ldc + i].
func gemmTNEON(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k int) {
	gemmNEON(a, lda, b, ldb, c, ldc, k, 2)
}

// hasNEON reports Advanced SIMD with floating point. Both are mandatory in
// ARMv8-A for the operating systems Go supports, but the feature bits are
// still checked (golang.org/x/sys/cpu reads HWCAP on Linux and assumes them
// where it cannot ask).
func hasNEON() bool { return cpu.ARM64.HasASIMD && cpu.ARM64.HasFP }

// cpuISAs lists the kernel sets this CPU can run, lowest first: dotprod
// (the neon kernels plus SDOT integer dot products for generation,
// int8_arm64.go) where the CPU has FEAT_DotProd.
func cpuISAs() []string {
	switch {
	case hasDotProd():
		return []string{ISAGeneric, ISANEON, ISADotProd}
	case hasNEON():
		return []string{ISAGeneric, ISANEON}
	}
	return []string{ISAGeneric}
}

// kernelsFor returns the float32 kernels of a set (dotprod's are neon's).
func kernelsFor(level string) *kernels {
	if level == ISANEON || level == ISADotProd {
		return asmNEON.kernels()
	}
	return generic
}

// availableKernels lists every kernel set this CPU can run, generic first,
// for tests and benchmarks.
func availableKernels() []*kernels {
	ks := []*kernels{generic}
	if hasNEON() {
		ks = append(ks, asmNEON.kernels())
	}
	return ks
}
