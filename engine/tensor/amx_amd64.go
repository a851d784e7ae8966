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

// amxKernels returns the bfloat16 tile kernels when the CPU has AMX-BF16
// (with AVX-512 for the packing) and the operating system lets this
// process use the tile state; nil otherwise.
func amxKernels() *bf16Kernels {
	_, _, _, edx := cpuid(7, 0)
	const amxBF16, amxTile = 1 << 22, 1 << 24
	if edx&amxBF16 == 0 || edx&amxTile == 0 || !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512BW {
		return nil
	}
	if !amxPermit() {
		return nil
	}
	return &bf16Kernels{
		gemm32: func(a []uint16, lda int, b []uint32, ldb int, c []float32, ldc int, ksteps, groups int, acc bool) {
			flag := 0
			if acc {
				flag = 1
			}
			amxGemm32(&a[0], 2*lda, &b[0], 4*ldb, &c[0], 4*ldc, ksteps, groups, flag)
		},
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
