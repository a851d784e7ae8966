// Package cputime reads the CPU time this process has used, so that
// benchmarks on a shared machine can report work per CPU-second, which
// moves less with the neighbours' load than work per wall-second.
package cputime
