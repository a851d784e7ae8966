package base

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tokenizer"
)

// testBPE is a small byte-level BPE: the 256 byte tokens, a few merges and
// the control tokens of a ChatML model.
func testBPE(t *testing.T, merges ...string) (tokens []string, types []int32, _ []string) {
	t.Helper()
	for b := range 256 {
		tokens = append(tokens, tokenizer.ByteLevel(string([]byte{byte(b)})))
		types = append(types, tokenizer.TokenNormal)
	}
	if merges == nil {
		merges = []string{"Ġ t", "h e", "Ġt he", "i n", "in g"}
	}
	for _, m := range merges {
		tokens = append(tokens, strings.Replace(m, " ", "", 1))
		types = append(types, tokenizer.TokenNormal)
	}
	tokens = append(tokens, "<|endoftext|>", "<|im_start|>", "<|im_end|>")
	types = append(types, tokenizer.TokenControl, tokenizer.TokenControl, tokenizer.TokenControl)
	return tokens, types, merges
}

const chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"

// TestLoadGGUFBPE: a GGUF whose tokenizer is byte-level BPE (tokenizer.ggml.model
// "gpt2", as SmolLM, Qwen2 and Llama 3 files have) loads with that
// tokenizer: the same ids as the BPE it was written from, no BOS for a model
// that has none, generation stopping at <|im_end|>, the chat template read
// and recognised; rows beyond the tokens become placeholders when written
// back, and the file written back loads to the same tokenizer.
func TestLoadGGUFBPE(t *testing.T) {
	tokens, types, merges := testBPE(t)
	eot := len(tokens) - 3
	c := model.Config{Dim: 32, HiddenDim: 64, Layers: 1, Heads: 4, KVHeads: 2, Vocab: len(tokens) + 5, SeqLen: 64, NormEps: 1e-5, RopeTheta: 10000}
	m, err := model.Random(c, quant.F32, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := tokenizer.NewBPE(tokens, merges, types, eot, eot, "qwen2")
	if err != nil {
		t.Fatal(err)
	}
	ref.SetAddSpecial(false, false)
	v, err := VocabOf(NewBPETokenizer(ref), c.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Tokens) != c.Vocab || v.Types[c.Vocab-1] != tokenizer.TokenUnused || v.Model != "gpt2" || v.Pre != "qwen2" || !v.NoBOS {
		t.Fatalf("vocab: %d tokens (last type %d), model %q, pre %q, NoBOS %v", len(v.Tokens), v.Types[len(v.Types)-1], v.Model, v.Pre, v.NoBOS)
	}
	p := filepath.Join(t.TempDir(), "bpe.gguf")
	if err := model.WriteGGUF(p, m, "bpe", model.AsStored, v, map[string]string{"tokenizer.chat_template": chatml}); err != nil {
		t.Fatal(err)
	}
	b, err := Load(p, "", model.AsStored)
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := b.Tok.(*BPETokenizer)
	if !ok {
		t.Fatalf("tokenizer %T, want *BPETokenizer", b.Tok)
	}
	text := "the thing<|im_end|> in 123"
	if got, want := b.Tok.Encode(text, true, true), ref.Encode(text, false, true); !reflect.DeepEqual(got, want) {
		t.Errorf("Encode: %v, want %v (no BOS: the model has none)", got, want)
	}
	if imEnd, _ := tok.ID("<|im_end|>"); !tok.IsEOG(imEnd) || tok.IsEOG(3) {
		t.Error("<|im_end|> must end generation, a byte token must not")
	}
	if tmpl, err := b.Template(""); err != nil || tmpl.Name != "chatml" {
		t.Errorf("template %q, %v; want chatml from the file's chat template", tmpl.Name, err)
	}
	var out strings.Builder
	if err := model.Generate(t.Context(), b.Model, b.Tok, "the", model.Sampling{MaxNew: 8}, func(s string) error { out.WriteString(s); return nil }); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "the") {
		t.Errorf("generated %q", out.String())
	}
}

// TestLoadTokenizerFiles: tokenizer.json and tokenizer_config.json of a
// Hugging Face folder (found by themselves, or named with --tokenizer) and
// the chat template in either layout.
func TestLoadTokenizerFiles(t *testing.T) {
	tokens, types, merges := testBPE(t)
	vocab := map[string]int{}
	var added []map[string]any
	for id, s := range tokens {
		if types[id] == tokenizer.TokenControl {
			added = append(added, map[string]any{"id": id, "content": s, "special": true})
		}
		vocab[s] = id
	}
	doc := map[string]any{"version": "1.0", "added_tokens": added, "normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"model":         map[string]any{"type": "BPE", "byte_fallback": false, "vocab": vocab, "merges": merges}}
	dir := t.TempDir()
	write := func(name string, v any) {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tokenizer.json", doc)
	write("tokenizer_config.json", map[string]any{"eos_token": "<|im_end|>", "chat_template": chatml})
	m := &model.Model{Config: model.Config{Vocab: len(tokens)}}
	for _, tokPath := range []string{"", filepath.Join(dir, "tokenizer.json")} {
		tok, docEnd, err := loadTokenizer(dir, tokPath, m, nil)
		if err != nil {
			t.Fatal(err)
		}
		bpe, ok := tok.(*BPETokenizer)
		if !ok || docEnd {
			t.Fatalf("tokenizer %T (docEnd %v), want *BPETokenizer", tok, docEnd)
		}
		if id, _ := bpe.ID("<|im_end|>"); bpe.EOS() != id {
			t.Errorf("EOS %d, want <|im_end|> (%d) from tokenizer_config.json", bpe.EOS(), id)
		}
	}
	if s, err := chatTemplate(dir, nil); err != nil || s != chatml {
		t.Errorf("chat template %q, %v", s, err)
	}
	write("tokenizer_config.json", map[string]any{"chat_template": []map[string]string{{"name": "tool_use", "template": "x"}, {"name": "default", "template": "[INST] {{ m }} [/INST]"}}})
	b := &Base{}
	if b.ChatTemplate, _ = chatTemplate(dir, nil); b.ChatTemplate != "[INST] {{ m }} [/INST]" {
		t.Errorf("named templates: got %q", b.ChatTemplate)
	}
	if tmpl, err := b.Template(""); err != nil || tmpl.Name != "llama2" {
		t.Errorf("template %q, %v; want llama2", tmpl.Name, err)
	}
	b.ChatTemplate = "{{ something else }}"
	if _, err := b.Template(""); err == nil || !strings.Contains(err.Error(), "--template") {
		t.Errorf("unknown template: %v, want an error saying to pass --template", err)
	}
	if tmpl, err := b.Template("alpaca"); err != nil || tmpl.Name != "alpaca" {
		t.Errorf("forced template: %q, %v", tmpl.Name, err)
	}
	// Nothing to go on: the error says what to pass.
	if _, _, err := loadTokenizer(t.TempDir(), "", m, nil); err == nil || !strings.Contains(err.Error(), "--tokenizer") {
		t.Errorf("no tokenizer: %v", err)
	}
}

// TestBPEGGUFMatchesLlamaCpp: for each pre-tokenizer, the GGUF file orchmind
// writes for a BPE vocabulary (pinned by its SHA-256) tokenizes the test
// texts into the ids llama.cpp gave for that same file
// (testdata/llamacpp_bpe.json).
func TestBPEGGUFMatchesLlamaCpp(t *testing.T) {
	raw, err := os.ReadFile("testdata/llamacpp_bpe.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Cases map[string][]struct {
			Text string `json:"text"`
			IDs  []int  `json:"ids"`
		} `json:"cases"`
		SHA map[string]string `json:"gguf_sha256"`
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	tokens, types, merges := testBPE(t, "Ġ t", "h e", "Ġt he", "i n", "in g", "Ġ 1", "1 2")
	eot := len(tokens) - 3
	c := model.Config{Dim: 64, HiddenDim: 128, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 320, SeqLen: 128, NormEps: 1e-5, RopeTheta: 10000}
	m, err := model.Random(c, quant.F32, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(fx.Cases) != 4 {
		t.Fatalf("fixture has %d pre-tokenizers, want 4", len(fx.Cases))
	}
	for pre, cases := range fx.Cases {
		ref, err := tokenizer.NewBPE(tokens, merges, types, eot, eot, pre)
		if err != nil {
			t.Fatal(err)
		}
		v, err := VocabOf(NewBPETokenizer(ref), c.Vocab)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), pre+".gguf")
		if err := model.WriteGGUF(p, m, "bpe-test", model.AsStored, v, nil); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if sum := fmt.Sprintf("%x", sha256.Sum256(data)); sum != fx.SHA[pre] {
			t.Fatalf("%s: the GGUF written is not the file llama.cpp was run on (sha256 %s, fixture %s)", pre, sum, fx.SHA[pre])
		}
		b, err := Load(p, "", model.AsStored)
		if err != nil {
			t.Fatal(err)
		}
		for _, cs := range cases {
			if got := b.Tok.Encode(cs.Text, true, false); !reflect.DeepEqual(got, cs.IDs) {
				t.Errorf("%s: %q → %v, llama.cpp %v", pre, cs.Text, got, cs.IDs)
			}
		}
	}
}
