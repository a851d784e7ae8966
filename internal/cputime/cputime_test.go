package cputime

import (
	"testing"
	"time"
)

// TestProcessCountsWork: spinning for 50 ms of wall time adds CPU time
// (unix), and the clock never runs backwards.
func TestProcessCountsWork(t *testing.T) {
	before := Process()
	x := 0
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		x++
	}
	after := Process()
	if after < before {
		t.Fatalf("CPU time went back: %v → %v", before, after)
	}
	if after == 0 {
		t.Skip("this platform's CPU clock is not read")
	}
	if after-before < 10*time.Millisecond {
		t.Fatalf("50 ms of spinning added %v of CPU time (x=%d)", after-before, x)
	}
}
