package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/adapters"
	nodebase "orchmind/engine/base"
	"orchmind/engine/gguf"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tokenizer"
)

// ollamaGemma3 writes a synthetic gemma3 GGUF the way Ollama stores
// gemma3:4b (one file with the text model and the vision tower): random
// text weights, Ollama's metadata (rope.global/local.freq_base, no
// layer_norm_rms_epsilon, vision.* and mm.tokens_per_image keys, tokenizer
// entries past the embedding's rows) and v.* / mm.* vision tensors. It
// returns the file and the model it holds.
func ollamaGemma3(t *testing.T, dir string) (string, *model.Model) {
	t.Helper()
	// A SentencePiece vocabulary as Gemma's: <pad> <eos> <bos> <unk>, the
	// chat markers, byte fallback tokens, letters and a few words.
	toks := []string{"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"}
	types := []int32{3, 3, 3, 2, 3, 3}
	for b := range 256 {
		toks, types = append(toks, fmt.Sprintf("<0x%02X>", b)), append(types, 6)
	}
	for _, p := range strings.Fields("▁ a b c d e f g h i j k l m n o p q r s t u v w x y z ▁the ▁a ▁is ▁of ▁who ▁helps ▁farmer ▁kind ▁girl . ? \n") {
		toks, types = append(toks, p), append(types, 1)
	}
	scores := make([]float32, len(toks))
	for i := range scores {
		scores[i] = -float32(i)
	}
	c := model.Config{Dim: 64, HiddenDim: 128, Layers: 7, Heads: 4, KVHeads: 2, HeadSize: 32, Vocab: len(toks), SeqLen: 2048,
		NormEps: 1e-6, RopeTheta: 1e6, Arch: model.ArchGemma3, SharedClassifier: true, SlidingWindow: 16, SlidingPattern: 6,
		RopeLocalTheta: 10000, QueryScale: 32}
	m, err := model.Random(c, quant.Q8_0, 3)
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain.gguf")
	vocab := &model.Vocab{Tokens: toks, Scores: scores, Types: types, BOS: 2, EOS: 1}
	if err := model.WriteGGUF(plain, m, "gemma3 synthetic", model.AsStored, vocab, nil); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(plain)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var kvs []gguf.KV
	for _, k := range f.Keys {
		v := f.Metadata[k]
		switch k {
		case "gemma3.attention.layer_norm_rms_epsilon", "gemma3.attention.query_pre_attn_scalar":
			continue // Ollama's converter writes neither
		case "gemma3.rope.freq_base":
			k = "gemma3.rope.global.freq_base"
		case "gemma3.rope.freq_base_swa":
			k = "gemma3.rope.local.freq_base"
		case "tokenizer.ggml.tokens":
			// Ollama lists multimodal tokens past the embedding's rows.
			v = append(append([]any{}, v.([]any)...), "<image_soft_token>")
		case "tokenizer.ggml.scores":
			v = append(append([]any{}, v.([]any)...), float32(0))
		case "tokenizer.ggml.token_type":
			v = append(append([]any{}, v.([]any)...), int32(3))
		}
		kvs = append(kvs, gguf.KV{Key: k, Value: v})
	}
	kvs = append(kvs, gguf.KV{Key: "gemma3.mm.tokens_per_image", Value: uint32(256)},
		gguf.KV{Key: "gemma3.vision.block_count", Value: uint32(1)},
		gguf.KV{Key: "gemma3.vision.embedding_length", Value: uint32(8)},
		gguf.KV{Key: "gemma3.vision.attention.head_count", Value: uint32(2)},
		gguf.KV{Key: "gemma3.vision.image_size", Value: uint32(896)},
		gguf.KV{Key: "gemma3.vision.patch_size", Value: uint32(14)},
		gguf.KV{Key: "tokenizer.ggml.add_padding_token", Value: false},
		gguf.KV{Key: "tokenizer.ggml.add_unknown_token", Value: false})
	var ts []gguf.WriteTensor
	for _, x := range f.Tensors {
		ts = append(ts, gguf.WriteTensor{Name: x.Name, Dims: x.Dims, Type: x.Type, Data: x.Data})
	}
	for _, v := range []struct {
		name string
		n    uint64
	}{{"v.patch_embedding.weight", 8 * 3 * 14 * 14}, {"v.position_embedding.weight", 8 * 4}, {"v.blk.0.attn_q.weight", 64},
		{"v.blk.0.layer_norm1.weight", 8}, {"v.post_layernorm.weight", 8}, {"mm.mm_input_projection.weight", 8 * 64}, {"mm.mm_soft_emb_norm.weight", 8}} {
		ts = append(ts, gguf.WriteTensor{Name: v.name, Dims: []uint64{v.n}, Type: quant.F32, Data: make([]byte, 4*v.n)})
	}
	out := filepath.Join(dir, "gemma3-ollama.gguf")
	if err := gguf.Write(out, kvs, ts); err != nil {
		t.Fatal(err)
	}
	return out, m
}

// TestOllamaGemma3 loads, describes, generates from and trains on the
// synthetic Ollama gemma3 file: the text model is the one written (the
// same config and fingerprint as the plain llama.cpp-layout file), the
// vision tensors are skipped and `model info` says so.
func TestOllamaGemma3(t *testing.T) {
	dir := t.TempDir()
	p, want := ollamaGemma3(t, dir)
	m, f, err := model.LoadGGUF(p, model.AsStored)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // m's weights live in the mapped file
	if m.Config != want.Config || model.Fingerprint(m) != model.Fingerprint(want) {
		t.Fatalf("Ollama's file gives %+v, want %+v", m.Config, want.Config)
	}
	if !strings.Contains(m.Skipped, "7 tensors of the vision tower") {
		t.Fatalf("Skipped = %q", m.Skipped)
	}
	info := orch(t, "model", "info", p)
	for _, w := range []string{"gemma3", "skipped", "vision tower", "6 of 7 layers slide over the last 16 positions", "rope theta, sliding layers  10000"} {
		if !strings.Contains(info, w) {
			t.Errorf("model info lacks %q:\n%s", w, info)
		}
	}
	orch(t, "generate", "--model", p, "--temp", "0", "-n", "12", "--prompt", "who helps the farmer?")
	orch(t, "train", "--model", p, "--data", "../../examples/facts.jsonl", "--out", dir, "--name", "g3", "--epochs", "1")
	ad := filepath.Join(dir, "g3")
	if _, err := os.Stat(filepath.Join(ad, "adapter_model.safetensors")); err != nil {
		t.Fatalf("training wrote no adapter: %v", err)
	}
	orch(t, "generate", "--model", p, "--adapter", ad, "--temp", "0", "-n", "12", "--prompt", "who helps the farmer?")
	// The adapter says it was trained with the gemma template (as training
	// on conversations records it).
	manPath := filepath.Join(ad, adapters.ManifestFile)
	raw, err := os.ReadFile(manPath)
	if err != nil {
		t.Fatal(err)
	}
	var man map[string]any
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	man["prompt_template"] = "gemma"
	if raw, err = json.Marshal(man); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	// Written back as a llama.cpp-layout gemma3 GGUF with the adapter merged.
	merged := filepath.Join(dir, "merged.gguf")
	orch(t, "export", "gguf", ad, "--model", p, "--out", merged)
	g, gf, err := model.LoadGGUF(merged, model.AsStored)
	if err != nil {
		t.Fatal(err)
	}
	defer gf.Close()
	if g.Arch != model.ArchGemma3 || g.Skipped != "" || g.SlidingWindow != 16 || g.RopeLocalTheta != 10000 {
		t.Fatalf("merged file: %+v, skipped %q", g.Config, g.Skipped)
	}
	if _, ok := gf.Float("gemma3.attention.layer_norm_rms_epsilon"); !ok {
		t.Fatal("the merged file lacks llama.cpp's gemma3.attention.layer_norm_rms_epsilon")
	}
	// Gemma's tokenizer adds no dummy-prefix space: the file says so for
	// llama.cpp, whose default is to add one.
	if v, ok := gf.Metadata["tokenizer.ggml.add_space_prefix"].(bool); !ok || v {
		t.Errorf("merged file: tokenizer.ggml.add_space_prefix = %v (present %v), want false", v, ok)
	}
	// The adapter's prompt template goes with it: recorded, applied by
	// orchmind to the merged model, and kept by model convert.
	if s, _ := gf.String(nodebase.PromptTemplateKey); s != "gemma" {
		t.Errorf("merged file: %s = %q, want gemma", nodebase.PromptTemplateKey, s)
	}
	conv := filepath.Join(dir, "merged-q4.gguf")
	orch(t, "model", "convert", merged, "--out", conv, "--quant", "q4_0")
	for _, f := range []string{merged, conv} {
		b, err := nodebase.Load(f, "", model.AsStored)
		if err != nil {
			t.Fatal(err)
		}
		if tm, err := b.Template(""); err != nil || tm.Name != "gemma" {
			t.Errorf("%s: template %v, %v; want the adapter's gemma", filepath.Base(f), tm, err)
		}
		if tok, ok := b.Tok.(*tokenizer.Llama2C); !ok || tok.AddSpacePrefix() {
			t.Errorf("%s: tokenizer %T adds a space prefix", filepath.Base(f), b.Tok)
		}
	}
}
