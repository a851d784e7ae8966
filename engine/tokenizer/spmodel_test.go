package tokenizer

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"orchmind/internal/testshared"
)

// TestSentencePieceModelMatchesTokenizerBin: the Llama 2 tokenizer.model
// (protobuf) gives the vocabulary, scores and encodings of its llama2.c
// tokenizer.bin export.
func TestSentencePieceModelMatchesTokenizerBin(t *testing.T) {
	pm, err := LoadSentencePieceModel(testshared.Path(t, "models/llama2-tokenizer/tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := LoadLlama2C(testshared.Path(t, "models/llama2-tokenizer/tokenizer.bin"), 32000)
	if err != nil {
		t.Fatal(err)
	}
	if pm.VocabSize() != 32000 {
		t.Fatalf("vocabulary %d, want 32000", pm.VocabSize())
	}
	for id := range 32000 {
		if id == 1 || id == 2 {
			// llama2.c's export writes BOS and EOS as "\n<s>\n" and "\n</s>\n".
			if pm.Token(id) != map[int]string{1: "<s>", 2: "</s>"}[id] {
				t.Errorf("id %d is %q", id, pm.Token(id))
			}
			continue
		}
		if pm.Token(id) != bin.Token(id) || pm.Score(id) != bin.Score(id) {
			t.Fatalf("id %d: %q %g in tokenizer.model, %q %g in tokenizer.bin", id, pm.Token(id), pm.Score(id), bin.Token(id), bin.Score(id))
		}
	}
	for _, s := range []string{"Hello world", "Olá, mundo! Ação e coração.", "  spaces\tand\nnewlines  ", "日本語 🙂 <0x41>"} {
		if a, b := pm.Encode(s, true, false), bin.Encode(s, true, false); !reflect.DeepEqual(a, b) {
			t.Errorf("%q: %v from tokenizer.model, %v from tokenizer.bin", s, a, b)
		}
	}
}

func TestSentencePieceModelRefusesJunk(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"empty":     {},
		"text":      []byte("this is not a protobuf"),
		"truncated": {0x0a, 0x20, 0x0a},
		"unigram":   {0x0a, 0x07, 0x0a, 0x05, '<', 'u', 'n', 'k', '>', 0x12, 0x02, 0x18, 0x01},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadSentencePieceModel(p); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// FuzzSentencePieceModel: any bytes give a vocabulary or an error, never a
// panic.
func FuzzSentencePieceModel(f *testing.F) {
	f.Add([]byte{0x0a, 0x07, 0x0a, 0x05, '<', 'u', 'n', 'k', '>', 0x12, 0x02, 0x18, 0x02})
	f.Add([]byte{0x0a, 0x0b, 0x0a, 0x01, 'a', 0x15, 0, 0, 0x80, 0xbf, 0x18, 0x01, 0x09, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseModelProto(b)
		if err == nil && (len(m.pieces) != len(m.scores) || len(m.pieces) != len(m.kinds)) {
			t.Fatalf("%d pieces, %d scores, %d kinds", len(m.pieces), len(m.scores), len(m.kinds))
		}
	})
}
