//go:build !linux

package tensor

// amxPermit is false off Linux: the tile state needs the operating system's
// consent, asked for here only on Linux.
func amxPermit() bool { return false }
