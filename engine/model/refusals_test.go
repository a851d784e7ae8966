package model

import (
	"path/filepath"
	"strings"
	"testing"

	"orchmind/engine/gguf"
	"orchmind/engine/quant"
)

// TestOtherArchitecturesRefused: besides Gemma 3n (TestGemmaRefusals),
// an architecture orchmind does not run is refused by its name, with the
// list of those it does, from GGUF and from a Hugging Face config; a
// llama GGUF holding tensors a llama model has not names them.
func TestOtherArchitecturesRefused(t *testing.T) {
	for _, arch := range []string{"phi3", "mamba", ""} {
		p := filepath.Join(t.TempDir(), "x.gguf")
		if err := gguf.Write(p, []gguf.KV{{Key: "general.architecture", Value: arch}}, nil); err != nil {
			t.Fatal(err)
		}
		_, _, err := Load(p, AsStored)
		if err == nil || !strings.Contains(err.Error(), `"`+arch+`"`) || !strings.Contains(err.Error(), SupportedArchs) {
			t.Errorf("GGUF architecture %q: %v; want a refusal naming it and listing %s", arch, err, SupportedArchs)
		}
	}
	for _, cfg := range []string{`{"architectures": ["Phi3ForCausalLM"], "model_type": "phi3"}`, `{"model_type": "mamba"}`} {
		_, err := parseHFConfig([]byte(cfg))
		if err == nil || !strings.Contains(err.Error(), "not supported") || !strings.Contains(err.Error(), "qwen2") || !strings.Contains(err.Error(), "gemma3") {
			t.Errorf("%s: %v; want a refusal listing what is supported", cfg, err)
		}
	}

	c := Config{Dim: 32, HiddenDim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 40, SeqLen: 64, NormEps: 1e-5, RopeTheta: 10000,
		SharedClassifier: true}
	m, err := Random(c, quant.F32, 1)
	if err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(t.TempDir(), "l.gguf")
	if err := WriteGGUF(q, m, "tiny", AsStored, nil, nil); err != nil {
		t.Fatal(err)
	}
	r := withTensors(t, q, gguf.WriteTensor{Name: "blk.1.ssm_conv1d.weight", Dims: []uint64{4}, Type: quant.F32, Data: make([]byte, 16)})
	if _, _, err := Load(r, AsStored); err == nil || !strings.Contains(err.Error(), "blk.1.ssm_conv1d.weight") || !strings.Contains(err.Error(), "llama") {
		t.Fatalf("a llama GGUF with a mamba tensor: %v; want the tensor named", err)
	}
	if _, _, err := Load(q, AsStored); err != nil {
		t.Fatalf("the same file without it: %v", err)
	}
}

// withTensors writes a copy of the GGUF file src with extra tensors added
// (the same metadata and tensors otherwise) and returns its path.
func withTensors(t *testing.T, src string, extra ...gguf.WriteTensor) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var kvs []gguf.KV
	for _, k := range f.Keys {
		kvs = append(kvs, gguf.KV{Key: k, Value: f.Metadata[k]})
	}
	var ts []gguf.WriteTensor
	for _, x := range f.Tensors {
		ts = append(ts, gguf.WriteTensor{Name: x.Name, Dims: x.Dims, Type: x.Type, Data: x.Data})
	}
	r := filepath.Join(t.TempDir(), "mixed.gguf")
	if err := gguf.Write(r, kvs, append(ts, extra...)); err != nil {
		t.Fatal(err)
	}
	return r
}
