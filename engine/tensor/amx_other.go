//go:build !amd64

package tensor

// amxKernels: AMX exists only on amd64.
func amxKernels() *bf16Kernels { return nil }

// avx512BF16Kernels: AVX512-BF16 exists only on amd64.
func avx512BF16Kernels() *bf16Kernels { return nil }

// bf16DotFaster: no VDPBF16PS off amd64.
const bf16DotFaster = false

// availableBF16: no bfloat16 kernels off amd64.
func availableBF16() []namedBF16 { return nil }
