package tokenizer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFallbackJSON writes a small SentencePiece-style tokenizer.json
// (byte_fallback) in the layout of Llama 2's: <unk>, <s>, </s>, the 256
// byte tokens, then pieces and merges; normalizer and decoder as given.
func writeFallbackJSON(t *testing.T, normalizer, preTokenizer any, extraAdded ...map[string]any) (string, map[string]int) {
	t.Helper()
	vocab := map[string]int{"<unk>": 0, "<s>": 1, "</s>": 2}
	for b := range 256 {
		vocab[fmt.Sprintf("<0x%02X>", b)] = 3 + b
	}
	pieces := []string{"▁", "h", "e", "l", "o", "w", "r", "d", "a", "b", ">", "▁h", "ll", "▁he", "llo", "▁hello", "▁w", "or", "▁wor", "ld", "▁world", "▁▁", "ab", "▁ab", ">▁"}
	for i, p := range pieces {
		vocab[p] = 259 + i
	}
	merges := []string{"▁ h", "l l", "▁h e", "ll o", "▁he llo", "▁ w", "o r", "▁w or", "l d", "▁wor ld", "▁ ▁", "a b", "▁ ab", "> ▁"}
	added := []map[string]any{
		{"id": 0, "content": "<unk>", "special": true},
		{"id": 1, "content": "<s>", "special": true},
		{"id": 2, "content": "</s>", "special": true},
	}
	added = append(added, extraAdded...)
	decoders := []any{map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "}, map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"}}
	doc := map[string]any{
		"version":        "1.0",
		"added_tokens":   added,
		"normalizer":     normalizer,
		"pre_tokenizer":  preTokenizer,
		"post_processor": map[string]any{"type": "TemplateProcessing", "single": []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>"}}, map[string]any{"Sequence": map[string]any{"id": "A"}}}, "special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []int{1}}}},
		"decoder":        map[string]any{"type": "Sequence", "decoders": decoders},
		"model":          map[string]any{"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true, "vocab": vocab, "merges": merges},
	}
	if n, ok := normalizer.(map[string]any); ok && n["type"] == "Sequence" {
		// Llama 2's decoder strips the space its normalizer prepends.
		doc["decoder"].(map[string]any)["decoders"] = append(decoders, map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0})
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, vocab
}

var llama2Normalizer = map[string]any{"type": "Sequence", "normalizers": []any{
	map[string]any{"type": "Prepend", "prepend": "▁"},
	map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
}}

// TestByteFallbackJSON: a Llama-2-style tokenizer.json encodes with the
// prepended "▁", merges by rank, bytes for unknown characters, BOS and
// EOS written in the text as the tokens, and decodes back with the Strip
// decoder removing the prepended space.
func TestByteFallbackJSON(t *testing.T) {
	path, v := writeFallbackJSON(t, llama2Normalizer, nil)
	tok, err := LoadHFTokenizerJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if !tok.ByteFallback() || tok.BOS() != 1 || !tok.AddBOS() {
		t.Fatalf("ByteFallback %v BOS %d AddBOS %v", tok.ByteFallback(), tok.BOS(), tok.AddBOS())
	}
	for _, c := range []struct {
		text string
		want []int
	}{
		{"hello world", []int{v["▁hello"], v["▁world"]}},
		{"hello  world", []int{v["▁hello"], v["▁"], v["▁world"]}},
		{"hé", []int{v["▁h"], 3 + 0xC3, 3 + 0xA9}},
		{"<s>hello</s>", []int{1, v["▁hello"], 2}},
		{"ab ab", []int{v["▁ab"], v["▁ab"]}},
	} {
		got := tok.Encode(c.text, false, false)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
		if !strings.Contains(c.text, "<s>") {
			if dec := tok.Decode(got); dec != c.text {
				t.Errorf("Decode(Encode(%q)) = %q", c.text, dec)
			}
		}
	}
	if got := tok.Encode("hello", tok.AddBOS(), false); !reflect.DeepEqual(got, []int{1, v["▁hello"]}) {
		t.Errorf("with BOS: %v", got)
	}
	if p := tok.Piece(1, v["▁hello"]); p != "hello" {
		t.Errorf("Piece after BOS = %q, want %q", p, "hello")
	}
	if p := tok.Piece(v["▁hello"], v["▁world"]); p != " world" {
		t.Errorf("Piece = %q, want %q", p, " world")
	}
	if _, _, _, _, err := tok.GGUFVocab(); err == nil || !strings.Contains(err.Error(), "tokenizer.model") {
		t.Errorf("GGUFVocab: %v, want a refusal naming tokenizer.model", err)
	}
}

// TestByteFallbackCuts: long texts, cut before each "▁" no token joins to
// its left ("▁▁" and ">▁" are tokens here, so runs of spaces and ">" are
// not cut), give the ids of merging them whole.
func TestByteFallbackCuts(t *testing.T) {
	path, _ := writeFallbackJSON(t, map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		map[string]any{"type": "Split", "pattern": map[string]any{"String": " "}, "behavior": "MergedWithPrevious", "invert": false})
	tok, err := LoadHFTokenizerJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	parts := []string{"hello", "world", " ", "  ", ">", "ab", "é", "🙂", "x", "l", "o"}
	for range 50 {
		var sb strings.Builder
		for sb.Len() < 3000 {
			sb.WriteString(parts[r.IntN(len(parts))])
		}
		s := sb.String()
		cut := tok.Encode(s, false, false)
		tok.metaID = -1
		whole := tok.Encode(s, false, false)
		tok.metaID = tok.ids["▁"]
		if !reflect.DeepEqual(cut, whole) {
			t.Fatalf("%.80q: cut %v…, whole %v…", s, head(cut), head(whole))
		}
		if dec := tok.Decode(cut); dec != s {
			t.Fatalf("Decode(Encode(%.80q)) = %.80q", s, dec)
		}
	}
}

// TestByteFallbackJSONRefused: configurations orchmind does not implement
// are refused with a message saying what is supported.
func TestByteFallbackJSONRefused(t *testing.T) {
	for _, c := range []struct {
		name       string
		normalizer any
		pre        any
		want       string
	}{
		{"metaspace", nil, map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}, "Metaspace"},
		{"no replace", map[string]any{"type": "NFKC"}, nil, "NFKC"},
		{"nothing", nil, nil, "does not write spaces"},
	} {
		path, _ := writeFallbackJSON(t, c.normalizer, c.pre)
		if _, err := LoadHFTokenizerJSON(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.want)
		}
	}
}
