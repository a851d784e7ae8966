package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainRefusesPathNames: `train --name ../x` is refused before anything
// is loaded or written, with the API's rule (adapters.CheckName).
func TestTrainRefusesPathNames(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "adapters")
	data := filepath.Join(dir, "d.jsonl")
	if err := os.WriteFile(data, []byte(`{"text": "hello"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../x", "/tmp/x", "a/b", ".hidden", ".."} {
		code, _, stderr := runCLI(t, "train", "--model", filepath.Join(dir, "no-model.gguf"), "--data", data, "--name", name, "--out", out)
		if code != 2 || !strings.Contains(stderr, "adapter name") {
			t.Fatalf("--name %q: code %d, stderr %q", name, code, stderr)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("something was written beside the data: %v", ents)
	}
}
