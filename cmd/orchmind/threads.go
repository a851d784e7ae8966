package main

import (
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"

	"orchmind/internal/cpucores"
)

// setThreads sets how many threads orchmind computes on (GOMAXPROCS, which
// the engine's worker pool follows): ORCHMIND_THREADS when set, else one
// per core of the fastest kind (cpucores: hyperthreads and efficiency
// cores left out, as llama.cpp's default does). A value that is not a
// whole number ≥ 1 is an error; one above the logical CPUs is lowered to
// them, with a warning on w.
func setThreads(getenv func(string) string, w io.Writer) error {
	n := cpucores.Count()
	th := n.Threads()
	if s := strings.TrimSpace(getenv("ORCHMIND_THREADS")); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			return fmt.Errorf("ORCHMIND_THREADS=%q: want a whole number of threads, 1 or more (this machine: %s); unset it for the default, %d", s, n, th)
		}
		th = v
		if th > n.Logical {
			fmt.Fprintf(w, "orchmind: ORCHMIND_THREADS=%d, but this machine has %d logical CPUs: using %d\n", v, n.Logical, n.Logical)
			th = n.Logical
		}
	}
	runtime.GOMAXPROCS(th)
	return nil
}

// threadsSummary says how many threads compute and why, for `model info`
// and `train`.
func threadsSummary(getenv func(string) string) string {
	why := "one per core of the fastest kind"
	if getenv("ORCHMIND_THREADS") != "" {
		why = "ORCHMIND_THREADS"
	}
	return fmt.Sprintf("%d (%s; this machine: %s; ORCHMIND_THREADS chooses)", runtime.GOMAXPROCS(0), why, cpucores.Count())
}
