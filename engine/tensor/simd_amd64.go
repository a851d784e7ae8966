package tensor

import (
	"golang.org/x/sys/cpu"

	"orchmind/engine/quant"
)

var asmAVX2 = asmSet{
	name: "avx2", lanes: 8,
	dotF32: dotF32AVX2, axpyF32: axpyF32AVX2, dot4F32: dot4F32AVX2,
	dotF16: dotF16AVX2, dequantF16: dequantF16AVX2,
	dotQ8: dotQ8_0AVX2, dotQ4: dotQ4_0AVX2,
	dequantQ8: dequantQ8_0AVX2, dequantQ4: dequantQ4_0AVX2,
	axpyQ8: axpyQ8_0AVX2, axpyQ4: axpyQ4_0AVX2,
	gemm: gemmAVX2, gemmT: gemmTAVX2, transpose8: transpose8F32AVX2, mr: 6, nr: 16,
	maxF32: maxF32AVX2, expSubF32: expSubF32AVX2,
	sigmoidF32: sigmoidF32AVX2, sigmoidLanes: 8,
	kquant: map[quant.Type]blockKernels{
		quant.Q4_K: {dot: dotQ4_KAVX2, dequant: dequantQ4_KAVX2, axpy: axpyQ4_KAVX2},
		quant.Q5_K: {dot: dotQ5_KAVX2, dequant: dequantQ5_KAVX2, axpy: axpyQ5_KAVX2},
		quant.Q6_K: {dot: dotQ6_KAVX2, dequant: dequantQ6_KAVX2, axpy: axpyQ6_KAVX2},
	},
}

var asmAVX512 = asmSet{
	name: "avx512", lanes: 16,
	dotF32: dotF32AVX512, axpyF32: axpyF32AVX512, dot4F32: dot4F32AVX512,
	dotF16: dotF16AVX512, dequantF16: dequantF16AVX512,
	dotQ8: dotQ8_0AVX512, dotQ4: dotQ4_0AVX512,
	dequantQ8: dequantQ8_0AVX512, dequantQ4: dequantQ4_0AVX512,
	axpyQ8: axpyQ8_0AVX512, axpyQ4: axpyQ4_0AVX512,
	gemm: gemmAVX512, gemmT: gemmTAVX512, transpose8: transpose8F32AVX512, mr: 8, nr: 32,
	maxF32: maxF32AVX512, expSubF32: expSubF32AVX512,
	sigmoidF32: sigmoidF32AVX2, sigmoidLanes: 8, // AVX2 serves AVX-512 too (it blends by sign)
	kquant: map[quant.Type]blockKernels{
		quant.Q4_K: {dot: dotQ4_KAVX512, dequant: dequantQ4_KAVX512, axpy: axpyQ4_KAVX512},
		quant.Q5_K: {dot: dotQ5_KAVX512, dequant: dequantQ5_KAVX512, axpy: axpyQ5_KAVX512},
		quant.Q6_K: {dot: dotQ6_KAVX512, dequant: dequantQ6_KAVX512, axpy: axpyQ6_KAVX512},
	},
}

// hasF16C reports the F16C extension (half-precision conversions), which
// golang.org/x/sys/cpu does not expose: CPUID leaf 1, ECX bit 29.
func hasF16C() bool {
	_, _, ecx, _ := cpuid(1, 0)
	return ecx&(1<<29) != 0
}

// hasAVX2Set reports what the avx2 set needs: AVX2, FMA and F16C.
func hasAVX2Set() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA && hasF16C() }

// hasAVX512Set reports what the avx512 set needs besides hasAVX2Set.
func hasAVX512Set() bool {
	return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ
}

// cpuISAs lists the kernel sets this CPU can run, lowest first. amx
// asks Linux for the tile state (see amxPermit).
func cpuISAs() []string {
	s := []string{ISAGeneric}
	if !hasAVX2Set() {
		return s
	}
	s = append(s, ISAAVX2)
	if !hasAVX512Set() {
		return s
	}
	s = append(s, ISAAVX512)
	if cpu.X86.HasAVX512BF16 {
		s = append(s, ISAAVX512BF16)
	}
	if hasAMX() && amxPermit() {
		s = append(s, ISAAMX)
	}
	return s
}

// kernelsFor returns the float32 kernels of a set: avx512bf16 and amx add
// bfloat16 products to avx512's.
func kernelsFor(level string) *kernels {
	switch level {
	case ISAAVX2:
		return asmAVX2.kernels()
	case ISAAVX512, ISAAVX512BF16, ISAAMX:
		return asmAVX512.kernels()
	}
	return generic
}

// availableKernels lists every float32 kernel set this CPU can run,
// generic first, for tests and benchmarks.
func availableKernels() []*kernels {
	ks := []*kernels{generic}
	if !hasAVX2Set() {
		return ks
	}
	ks = append(ks, asmAVX2.kernels())
	if hasAVX512Set() {
		ks = append(ks, asmAVX512.kernels())
	}
	return ks
}
