package tensor

import "golang.org/x/sys/cpu"

// The AMX kernel and the AVX-512 packing helpers (amx_amd64.s); their
// strides are in bytes, the wrappers' in elements.

//go:noescape
func amxGemm32(a *uint16, lda int, b *uint32, ldb int, c *float32, ldc int, ksteps int, groups int, acc int)

//go:noescape
func bf16RowAVX512(dst *uint16, src *float32, n int)

//go:noescape
func bf16PairsAVX512(dst *uint32, ldd int, src *float32, lds int, pairs int)

//go:noescape
func gatherPairsAVX512(dst *uint32, ldd int, src *uint32, lds int, pairs int)

// hasAMX reports AMX-BF16 tiles (with AVX-512 for the packing) in CPUID;
// the operating system must still grant the tile state (amxPermit).
func hasAMX() bool {
	_, _, _, edx := cpuid(7, 0)
	const amxBF16, amxTile = 1 << 22, 1 << 24
	return edx&amxBF16 != 0 && edx&amxTile != 0 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
}

// amxKernels returns the bfloat16 tile kernels when the CPU has AMX-BF16
// (with AVX-512 for the packing) and the operating system lets this
// process use the tile state; nil otherwise.
func amxKernels() *bf16Kernels {
	if !hasAMX() || !amxPermit() {
		return nil
	}
	k := bf16Packing()
	k.gemm32 = func(a []uint16, lda int, b []uint32, ldb int, c []float32, ldc int, ksteps, groups int, acc bool) {
		flag := 0
		if acc {
			flag = 1
		}
		amxGemm32(&a[0], 2*lda, &b[0], 4*ldb, &c[0], 4*ldc, ksteps, groups, flag)
	}
	return k
}

// bf16Packing returns the AVX-512 packing helpers every bfloat16 set
// shares (gemm32 left for the caller to set).
func bf16Packing() *bf16Kernels {
	return &bf16Kernels{
		row: func(dst []uint16, src []float32) {
			n := len(src) &^ 15
			if n > 0 {
				_ = dst[n-1]
				bf16RowAVX512(&dst[0], &src[0], n)
			}
			for i := n; i < len(src); i++ {
				dst[i] = toBF16(src[i])
			}
		},
		pairs: func(dst []uint32, ldd int, src []float32, lds int, pairs int) {
			bf16PairsAVX512(&dst[0], 4*ldd, &src[0], 4*lds, pairs)
		},
		gather: func(dst []uint32, ldd int, src []uint32, lds int, pairs int) {
			gatherPairsAVX512(&dst[0], 4*ldd, &src[0], 4*lds, pairs)
		},
	}
}

//go:noescape
func dpbf16Gemm32(a *uint16, lda int, b *uint32, ldb int, c *float32, ldc int, ksteps int, groups int, acc int)

// bf16DotFaster records the measurement that decides whether avx512bf16
// takes the base's products in bfloat16: on AMD Zen 4 (EPYC, 2 cores of a
// loaded machine) one VDPBF16PS did twice the multiply-adds of one
// VFMADD231PS per cycle, and MatMulBF16 beat MatMul at training sizes
// (SIMD.md, "AVX512-BF16 without AMX").
const bf16DotFaster = true

// avx512BF16Kernels returns the bfloat16 kernels built on VDPBF16PS (and
// the AVX-512 packing helpers amx uses), or nil without AVX512-BF16.
func avx512BF16Kernels() *bf16Kernels {
	if !cpu.X86.HasAVX512BF16 || !hasAVX512Set() {
		return nil
	}
	k := bf16Packing()
	k.gemm32 = func(a []uint16, lda int, b []uint32, ldb int, c []float32, ldc int, ksteps, groups int, acc bool) {
		flag := 0
		if acc {
			flag = 1
		}
		dpbf16Gemm32(&a[0], 2*lda, &b[0], 4*ldb, &c[0], 4*ldc, ksteps, groups, flag)
	}
	return k
}

// availableBF16 lists every bfloat16 kernel set this CPU can run, for
// tests and benchmarks (whether or not ORCHMIND_ISA chose it).
func availableBF16() []namedBF16 {
	var s []namedBF16
	if k := avx512BF16Kernels(); k != nil {
		s = append(s, namedBF16{ISAAVX512BF16, k})
	}
	if k := amxKernels(); k != nil {
		s = append(s, namedBF16{ISAAMX, k})
	}
	return s
}

// peakFMA and peakDPBF16 run n iterations of 16 independent VFMADD231PS
// (32 flops each) or VDPBF16PS (64 flops each) on zmm registers: the
// per-core peaks BenchmarkBF16Peak compares.
func peakFMA(n int)

func peakDPBF16(n int)
