package base

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"orchmind/engine/hub/hubtest"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tokenizer"
)

// TestLoadFromOllamaStore: a store laid out exactly as Ollama lays it out
// (manifests/registry.ollama.ai/library/<name>/<tag> naming the model
// layer, blobs/sha256-<hex>) is found through OLLAMA_MODELS, and the blob
// is loaded where it lies: the path opened is the blob, and on Linux the
// blob shows in the process's memory maps (mapped, not read into the heap
// or copied).
func TestLoadFromOllamaStore(t *testing.T) {
	tokens, types, merges := testBPE(t)
	eot := len(tokens) - 3
	c := model.Config{Dim: 32, HiddenDim: 64, Layers: 1, Heads: 4, KVHeads: 2, Vocab: len(tokens), SeqLen: 64, NormEps: 1e-5, RopeTheta: 10000}
	m, err := model.Random(c, quant.F32, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := tokenizer.NewBPE(tokens, merges, types, eot, eot, "qwen2")
	if err != nil {
		t.Fatal(err)
	}
	v, err := VocabOf(NewBPETokenizer(ref), c.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src.gguf")
	if err := model.WriteGGUF(src, m, "tiny", quant.Q8_0, v, nil); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	o := hubtest.NewOllama() // only to build the manifest as the registry serves it
	defer o.Close()
	manifest, digest := o.Add("library", "tiny", "1b", data)
	store := t.TempDir()
	blob := filepath.Join(store, "blobs", "sha256-"+strings.TrimPrefix(digest, "sha256:"))
	mp := filepath.Join(store, "manifests", "registry.ollama.ai", "library", "tiny", "1b")
	for p, b := range map[string][]byte{blob: data, mp: manifest} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("OLLAMA_MODELS", store)
	home := t.TempDir()
	t.Setenv("ORCHMIND_HOME", home)
	b, err := Load("ollama:tiny:1b", "", model.AsStored)
	if err != nil {
		t.Fatal(err)
	}
	if b.Path != blob || b.Name != "tiny:1b" {
		t.Fatalf("loaded %s as %q, want the blob %s as tiny:1b", b.Path, b.Name, blob)
	}
	direct, err := Load(src, "", model.AsStored)
	if err != nil {
		t.Fatal(err)
	}
	if b.Fingerprint != direct.Fingerprint {
		t.Errorf("fingerprint through Ollama %s, from the file %s", b.Fingerprint, direct.Fingerprint)
	}
	if runtime.GOOS == "linux" {
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(maps), blob) {
			t.Errorf("the blob %s is not mapped into the process", blob)
		}
	}
	var n int
	_ = filepath.Walk(home, func(string, os.FileInfo, error) error { n++; return nil })
	if n > 1 {
		t.Errorf("loading wrote %d entries into the data folder", n-1)
	}
	if _, err := Load("ollama:nope:1b", "", model.AsStored); err == nil || !strings.Contains(err.Error(), "orchmind model pull nope:1b") {
		t.Errorf("missing model: %v", err)
	}
}
