package fuzzcheck

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Allocated runs f and returns the bytes the program allocated meanwhile.
// Fuzz workers run one input at a time, so this is what f allocated (plus
// noise from runtime goroutines, far below the bounds used here).
func Allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Bounded runs f and fails t when it allocated more than perByte bytes per
// input byte plus fixed bytes: a short hostile input must not make a parser
// reserve what its header claims.
func Bounded(t testing.TB, inputLen int, perByte, fixed uint64, f func()) {
	t.Helper()
	n := Allocated(f)
	if limit := uint64(inputLen)*perByte + fixed; n > limit {
		t.Fatalf("allocated %d bytes for %d bytes of input (limit %d): a header may be sizing a buffer", n, inputLen, limit)
	}
}

// OneLine fails t when err's message spans several lines: errors are shown
// to users as one line.
func OneLine(t testing.TB, err error) {
	t.Helper()
	if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}

// Dir returns an empty folder for a fuzz target's files, in memory
// (/dev/shm) when the system has it: each input writes and deletes files,
// and on a busy disk that I/O, not the code under test, would set the
// pace. Call Reset(dir) at the start of each input. The folder is removed
// when the fuzz target ends.
func Dir(f *testing.F) string {
	f.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "orchmind-fuzz-"); err == nil {
			f.Cleanup(func() { _ = os.RemoveAll(d) })
			return d
		}
	}
	return f.TempDir()
}

// Reset empties dir (made by Dir) for the next input.
func Reset(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
