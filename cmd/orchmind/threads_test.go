package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"orchmind/internal/cpucores"
)

func TestSetThreads(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "ORCHMIND_THREADS" {
				return v
			}
			return ""
		}
	}
	var w bytes.Buffer
	if err := setThreads(env("1"), &w); err != nil || runtime.GOMAXPROCS(0) != 1 {
		t.Fatalf("ORCHMIND_THREADS=1: %v, GOMAXPROCS %d", err, runtime.GOMAXPROCS(0))
	}
	if s := threadsSummary(env("1")); !strings.HasPrefix(s, "1 (ORCHMIND_THREADS;") {
		t.Errorf("summary %q", s)
	}
	n := cpucores.Count()
	if err := setThreads(env("100000"), &w); err != nil || runtime.GOMAXPROCS(0) != n.Logical || !strings.Contains(w.String(), "using") {
		t.Fatalf("ORCHMIND_THREADS=100000: %v, GOMAXPROCS %d of %d logical CPUs, said %q", err, runtime.GOMAXPROCS(0), n.Logical, w.String())
	}
	for _, bad := range []string{"0", "-2", "two", "1.5"} {
		if err := setThreads(env(bad), &w); err == nil || !strings.Contains(err.Error(), "ORCHMIND_THREADS") {
			t.Errorf("ORCHMIND_THREADS=%s: error %v", bad, err)
		}
	}
	// Unset: one per core of the fastest kind, no more than there are.
	if err := setThreads(env(""), &w); err != nil || runtime.GOMAXPROCS(0) != n.Threads() || n.Threads() > n.Logical {
		t.Fatalf("default: %v, GOMAXPROCS %d, cores %+v", err, runtime.GOMAXPROCS(0), n)
	}
}
