//go:build !unix

package cputime

import "time"

// Process is 0: this platform's CPU clock is not read here.
func Process() time.Duration { return 0 }
