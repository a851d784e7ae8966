//go:build unix

package model

import "syscall"

// cpuSeconds is the CPU time (user + system, all threads) the process has
// used so far: on a shared machine tokens per CPU-second move less with the
// load than tokens per wall-second.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
