package sysmem

import (
	"bufio"
	"strings"
	"testing"
)

func TestParseMeminfo(t *testing.T) {
	for in, want := range map[string]int64{
		"MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   16000000 kB\n": 16000000 * 1024,
		"MemTotal:       24000000 kB\n": -1,
		"MemAvailable:   lots kB\n":     -1,
		"MemAvailable:   12 MB\n":       -1,
	} {
		got, ok := parseMeminfo(bufio.NewScanner(strings.NewReader(in)))
		if want < 0 && ok || want >= 0 && (!ok || got != want) {
			t.Errorf("%q: %d %v, want %d", in, got, ok, want)
		}
	}
	if n, ok := Available(); !ok || n <= 0 {
		t.Errorf("Available() = %d, %v on Linux", n, ok)
	}
}
