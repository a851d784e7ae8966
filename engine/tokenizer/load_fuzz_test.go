package tokenizer

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"orchmind/internal/fuzzcheck"
	"orchmind/internal/testshared"
)

// FuzzParseLlama2C fuzzes the llama2.c tokenizer.bin reader with any
// vocabulary size: no panic, errors on one line, memory in proportion to
// the file (not to the vocabulary size the model header claims), and an
// accepted file written back in the same format parses to the same
// vocabulary; encoding and decoding with it never panics.
func FuzzParseLlama2C(f *testing.F) {
	// tinyVocab's vocabulary: specials, the 256 byte tokens, merges.
	pieces, scores := []string{"<unk>", "\n<s>\n", "\n</s>\n"}, []float32{0, 0, 0}
	for b := range 256 {
		pieces, scores = append(pieces, fmt.Sprintf("<0x%02X>", b)), append(scores, 0)
	}
	pieces = append(pieces, " ", "a", "b", "c", "ab", "bc", " ab", "abc")
	scores = append(scores, -10, -10, -10, -10, -1, -2, -3, -0.5)
	f.Add(buildBin(pieces, scores), uint32(len(pieces)), "abc cab")
	f.Add(buildBin([]string{"<unk>", "<s>", "</s>", " ", "é"}, []float32{0, 0, 0, -1, float32(math.NaN())}), uint32(5), "é é")
	if d := testshared.Dir(); d != "" {
		if b, err := os.ReadFile(filepath.Join(d, "models/stories260K/tok512.bin")); err == nil {
			f.Add(b, uint32(512), "Once upon a time")
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, vocab uint32, text string) {
		var tok *Llama2C
		var err error
		fuzzcheck.Bounded(t, len(data), 64, 1<<20, func() { tok, err = ParseLlama2C(data, int(vocab)) })
		if err != nil {
			fuzzcheck.OneLine(t, err)
			return
		}
		if tok.VocabSize() != int(vocab) {
			t.Fatalf("asked for %d tokens, got %d", vocab, tok.VocabSize())
		}
		ps, ss := make([]string, tok.VocabSize()), make([]float32, tok.VocabSize())
		for i := range ps {
			ps[i], ss[i] = tok.Token(i), tok.Score(i)
		}
		again, err := ParseLlama2C(buildBin(ps, ss), len(ps))
		if err != nil {
			t.Fatalf("written back, the vocabulary does not parse: %v", err)
		}
		for i := range ps {
			if again.Token(i) != ps[i] || math.Float32bits(again.Score(i)) != math.Float32bits(ss[i]) {
				t.Fatalf("token %d: %q %g, written back %q %g", i, ps[i], ss[i], again.Token(i), again.Score(i))
			}
			if id, ok := again.ID(ps[i]); !ok || id > i {
				t.Fatalf("ID(%q) = %d %v, want the first id holding it (≤ %d)", ps[i], id, ok, i)
			}
		}
		if len(text) > 64 {
			text = text[:64]
		}
		ids := tok.Encode(text, true, true)
		if len(ids) < 2 || ids[0] != tok.BOS() || ids[len(ids)-1] != tok.EOS() {
			t.Fatalf("Encode(%q, BOS, EOS) = %v", text, ids)
		}
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("Encode(%q) gave id %d outside the vocabulary of %d", text, id, tok.VocabSize())
			}
		}
		_ = tok.Decode(append(ids, -1, 1<<40))
	})
}

// FuzzLoadHFTokenizerJSON fuzzes tokenizer.json (and tokenizer_config.json
// beside it): no panic, errors on one line, memory in proportion to the
// files (an id of 16 million in a tiny vocabulary must not allocate 16
// million tokens), and an accepted tokenizer encodes any text to ids of
// its vocabulary, decoding back to the text when only normal tokens came
// out.
func FuzzLoadHFTokenizerJSON(f *testing.F) {
	llamaTemplate := map[string]any{"type": "Sequence", "processors": []any{
		map[string]any{"type": "ByteLevel"},
		map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<|endoftext|>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"special_tokens": map[string]any{"<|endoftext|>": map[string]any{"id": "<|endoftext|>", "ids": []int{tEOT}, "tokens": []string{"<|endoftext|>"}}}},
	}}
	cfgs := [][]byte{nil, []byte(`{"bos_token": {"content": "<tool>", "special": true}, "eos_token": "<|endoftext|>", "add_bos_token": true}`)}
	for i, c := range []struct {
		gguf      string
		pairs     bool
		pre, post map[string]any
	}{
		{"gpt2", false, map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}, nil},
		{"llama-bpe", true, splitThenByteLevel(PatternLlama3), llamaTemplate},
		{"qwen2", false, splitThenByteLevel(PatternQwen2), nil},
	} {
		raw, err := os.ReadFile(writeTokenizerJSON(f, newTestBPE(f, c.gguf), c.pairs, c.pre, c.post))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, cfgs[i%2], i%2 == 1, "I'VE 12345 said:\n\n  the theing<|endoftext|>ação")
	}
	dir := fuzzcheck.Dir(f)
	f.Fuzz(func(t *testing.T, tj, cfg []byte, withCfg bool, text string) {
		fuzzcheck.Reset(t, dir)
		path := filepath.Join(dir, "tokenizer.json")
		if err := os.WriteFile(path, tj, 0o644); err != nil {
			t.Fatal(err)
		}
		if withCfg {
			if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), cfg, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var tok *BPE
		var err error
		fuzzcheck.Bounded(t, len(tj)+len(cfg), 256, 4<<20, func() { tok, err = LoadHFTokenizerJSON(path) })
		if err != nil {
			fuzzcheck.OneLine(t, err)
			return
		}
		n := tok.VocabSize()
		if n == 0 || tok.BOS() < -1 || tok.BOS() >= n || tok.EOS() < -1 || tok.EOS() >= n {
			t.Fatalf("vocabulary of %d tokens with BOS %d EOS %d", n, tok.BOS(), tok.EOS())
		}
		if len(text) > 256 {
			text = text[:256]
		}
		ids := tok.Encode(text, true, true)
		normal := true
		for _, id := range ids {
			if id < 0 || id >= n {
				t.Fatalf("Encode(%q) gave id %d outside the vocabulary of %d", text, id, n)
			}
			normal = normal && tok.Type(id) == TokenNormal
		}
		if normal && utf8.ValidString(text) && !tok.nfc && !tok.addPrefixSpace {
			if got := tok.Decode(ids); got != text {
				t.Fatalf("Decode(Encode(%q)) = %q (ids %v)", text, got, ids)
			}
		}
	})
}
