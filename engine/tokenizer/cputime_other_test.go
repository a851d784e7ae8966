//go:build !unix

package tokenizer

import "time"

// processStart stands in for the process's CPU clock where getrusage is
// missing (Windows): the wall clock since the test binary started.
var processStart = time.Now()

// cpuTime is the wall time since the tests started: without getrusage the
// CPU time is not at hand, and the linearity test compares ratios only.
func cpuTime() time.Duration { return time.Since(processStart) }
