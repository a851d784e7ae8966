//go:build !amd64

package tensor

// amxKernels: AMX exists only on amd64.
func amxKernels() *bf16Kernels { return nil }
