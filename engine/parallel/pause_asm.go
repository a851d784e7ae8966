//go:build amd64 || arm64

package parallel

// pause tells the CPU that the caller is spinning (PAUSE on amd64, YIELD on
// arm64): a core shared by two hardware threads (SMT, or the vCPUs of a
// virtual machine placed on one core) gives the thread doing real work the
// execution resources the spin would have taken.
func pause()
