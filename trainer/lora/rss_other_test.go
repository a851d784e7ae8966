//go:build !unix

package lora

func peakRSS() int64 { return 0 }
