//go:build !amd64 && !arm64

package tensor

// simdKernels returns nil: only amd64 and arm64 have SIMD kernels, other
// architectures use the pure-Go ones.
func simdKernels() *kernels { return nil }

// availableKernels lists every kernel set this CPU can run.
func availableKernels() []*kernels { return []*kernels{generic} }
