//go:build !unix

package lora

func peakRSS() int64 { return 0 }

func cpuSeconds() float64 { return 0 }
