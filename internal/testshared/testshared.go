package testshared

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the shared folder: $ORCHMIND_SHARED if set, else the folder
// "shared" beside the repository root (the directory holding go.mod). It
// returns "" when neither exists.
func Dir() string {
	if d := os.Getenv("ORCHMIND_SHARED"); d != "" {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
		return ""
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			s := filepath.Join(filepath.Dir(d), "shared")
			if st, err := os.Stat(s); err == nil && st.IsDir() {
				return s
			}
			return ""
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// Path returns the path of rel inside the shared folder, skipping the test
// with a message naming what is missing when the file is not there.
func Path(t testing.TB, rel string) string {
	t.Helper()
	d := Dir()
	if d == "" {
		t.Skipf("skipping: the shared/ folder (beside the repository, or $ORCHMIND_SHARED) is absent; it holds %s", rel)
	}
	p := filepath.Join(d, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("skipping: %s not found in the shared folder %s", rel, d)
	}
	return p
}
