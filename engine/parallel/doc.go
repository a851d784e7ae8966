// Package parallel splits loops over the CPU cores with low latency.
//
// The matrix kernels split every linear layer across the cores. When one
// token is generated, a layer of a small model is a few microseconds of
// work, and waking fresh goroutines for it costs about as much again (the
// runtime must wake an idle OS thread; on a busy machine that takes tens of
// microseconds). So the package keeps one worker per extra core (GOMAXPROCS
// at first use, minus the caller) that spins for a short while after each
// job before it parks (issuing PAUSE, or YIELD on arm64, while it spins, so
// that a core shared with the thread doing the work is left to it), and the
// caller runs a share of the work itself, as llama.cpp's thread pool does. When the pool is busy with another caller's
// job, the call falls back to fresh goroutines, so concurrent callers never
// wait for each other.
package parallel
