package layers

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestNoUpwardImports lists every package of the module with its imports
// (the built program's graph; tests may reach up to check a package against
// the ones that use it) and fails on an import of a higher layer, of another
// folder at the same layer, or of a package Rank does not place.
func TestNoUpwardImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH: cannot list the import graph")
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "orchmind/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "orchmind/"
	sc := bufio.NewScanner(bytes.NewReader(out))
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		from := strings.TrimPrefix(f[0], mod)
		rf, ok := Rank(from)
		if !ok {
			t.Errorf("%s is in no layer: add its top-level folder to Rank and to the README's Layout section", from)
			continue
		}
		n++
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			to := strings.TrimPrefix(imp, mod)
			rt, ok := Rank(to)
			if !ok {
				t.Errorf("%s imports %s, which is in no layer", from, to)
				continue
			}
			sameTop := topFolder(from) == topFolder(to)
			if !sameTop && rt >= rf {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point down", from, rf, to, rt)
			}
		}
	}
	if n < 20 {
		t.Fatalf("listed only %d packages: go list output was not what this test expects", n)
	}
}

func TestRank(t *testing.T) {
	order := []string{"internal/atomicfile", "protocol/room", "engine/model", "adapters", "trainer/lora", "node/api", "cmd/orchmind", "integration"}
	prev := -1
	for _, p := range order {
		r, ok := Rank(p)
		if !ok || r <= prev {
			t.Fatalf("Rank(%q) = %d, %v: want a layer above %d", p, r, ok, prev)
		}
		prev = r
	}
	if _, ok := Rank("vendor/x"); ok {
		t.Error("an unknown folder was given a layer")
	}
}

func topFolder(rel string) string {
	top, _, _ := strings.Cut(rel, "/")
	return top
}
