// Package cpucores counts the CPU cores a compute-bound job should run one
// thread on: one per physical core (hyperthreads share a core's FMA units),
// and on hybrid chips (Intel P- and E-cores, Apple and ARM big.LITTLE) one
// per core of the fastest kind, as llama.cpp's default thread count does
// (PyTorch takes one thread per physical core).
// It reads the operating system's CPU topology (Linux sysfs and the
// process's affinity mask, macOS sysctl, Windows
// GetLogicalProcessorInformationEx) and falls back to the logical CPUs
// where that is not available.
package cpucores
