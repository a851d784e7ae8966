package adapters

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, ok := range []string{"facts", "a", "Qwen2.5-coder_v1", strings.Repeat("x", MaxNameLen)} {
		if !ValidName(ok) || CheckName(ok) != nil {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "..", "../x", "a/b", `a\b`, "/abs", ".hidden", "-flag", "a b", "é", strings.Repeat("x", MaxNameLen+1), "x\x00"} {
		if ValidName(bad) {
			t.Errorf("%q accepted", bad)
		}
		if err := CheckName(bad); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: CheckName = %v, want a one-line error", bad, err)
		}
	}
}
