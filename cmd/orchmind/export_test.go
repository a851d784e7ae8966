package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/internal/testshared"
)

func orch(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("orchmind %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

// TestConvertTrainExport runs the CLI end to end: convert to GGUF, train,
// export a Modelfile and a merged GGUF whose greedy output equals
// base + adapter.
func TestConvertTrainExport(t *testing.T) {
	m := testshared.Path(t, "models/stories260K/stories260K.bin")
	dir := t.TempDir()
	g := filepath.Join(dir, "s.gguf")
	orch(t, "model", "convert", m, "--out", g)
	if info := orch(t, "model", "info", g); !strings.Contains(info, "fingerprint") || !strings.Contains(info, "layers                 5") {
		t.Fatalf("model info:\n%s", info)
	}
	orch(t, "train", "--model", g, "--data", "../../examples/facts.jsonl", "--out", dir, "--name", "facts")
	ad := filepath.Join(dir, "facts")
	line := orch(t, "export", "ollama", ad, "--base", g)
	mf, err := os.ReadFile(filepath.Join(ad, "Modelfile"))
	if err != nil || !strings.HasPrefix(line, "ollama create facts -f ") {
		t.Fatalf("ollama export: %q, %v", line, err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(mf)), "\n") {
		kw := strings.Fields(l)[0]
		switch kw {
		case "#", "FROM", "ADAPTER", "TEMPLATE", "PARAMETER", `"""`:
		default:
			t.Errorf("Modelfile line %q: %s is not a documented Ollama keyword", l, kw)
		}
	}
	merged := filepath.Join(dir, "merged.gguf")
	orch(t, "export", "gguf", ad, "--model", g, "--out", merged)
	prompt := "Who helps the farmer?\n"
	a := orch(t, "generate", "--model", merged, "--temp", "0", "-n", "30", "--prompt", prompt)
	b := orch(t, "generate", "--model", g, "--adapter", ad, "--temp", "0", "-n", "30", "--prompt", prompt)
	if a != b || !strings.Contains(a, "The kind girl helps the farmer.") {
		t.Fatalf("merged GGUF says %q, base+adapter %q", a, b)
	}
}
