//go:build unix

package lora

import "syscall"

// peakRSS is the process's peak resident memory in bytes (Linux: ru_maxrss
// is in KiB).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) * 1024
}
