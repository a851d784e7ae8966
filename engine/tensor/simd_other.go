//go:build !amd64 && !arm64

package tensor

// cpuISAs: only amd64 and arm64 have SIMD kernels, other architectures use
// the pure-Go ones.
func cpuISAs() []string { return []string{ISAGeneric} }

// kernelsFor returns the pure-Go kernels.
func kernelsFor(string) *kernels { return generic }

// availableKernels lists every kernel set this CPU can run.
func availableKernels() []*kernels { return []*kernels{generic} }
