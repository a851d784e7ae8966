package tokenizer

import (
	"encoding/binary"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"orchmind/internal/testshared"
)

// buildBin encodes a vocabulary in llama2.c tokenizer.bin format.
func buildBin(pieces []string, scores []float32) []byte {
	maxLen := 1
	for _, p := range pieces {
		maxLen = max(maxLen, len(p))
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(maxLen))
	for i, p := range pieces {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(scores[i]))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

// tinyVocab: <unk>, BOS, EOS, 256 byte tokens (ids 3..258), then merges.
func tinyVocab(t *testing.T) *Llama2C {
	t.Helper()
	pieces := []string{"<unk>", "\n<s>\n", "\n</s>\n"}
	scores := []float32{0, 0, 0}
	for b := 0; b < 256; b++ {
		pieces = append(pieces, "<0x"+strings.ToUpper(string("0123456789abcdef"[b>>4]))+strings.ToUpper(string("0123456789abcdef"[b&15]))+">")
		scores = append(scores, 0)
	}
	for i, p := range []string{" ", "a", "b", "c", "ab", "bc", " ab", "abc"} {
		pieces = append(pieces, p)
		scores = append(scores, []float32{-10, -10, -10, -10, -1, -2, -3, -0.5}[i])
	}
	tok, err := ParseLlama2C(buildBin(pieces, scores), len(pieces))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestEncodeMergesByScore(t *testing.T) {
	tok := tinyVocab(t)
	id := func(p string) int {
		i, ok := tok.ID(p)
		if !ok {
			t.Fatalf("no %q", p)
		}
		return i
	}
	// " abc": pieces [" ","a","b","c"]. Candidates: "ab" (-1), "bc" (-2) → merge "ab" first;
	// then " ab" (-3) vs "abc" (-0.5) → "abc"; then " abc" is not in the vocabulary.
	got := tok.Encode("abc", true, true)
	want := []int{1, id(" "), id("abc"), 2}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Encode(abc) = %v, want %v", got, want)
	}
	// A character missing from the vocabulary falls back to its UTF-8 bytes.
	got = tok.Encode("é", false, false)
	want = []int{id(" "), 0xC3 + 3, 0xA9 + 3}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Encode(é) = %v, want %v", got, want)
	}
	if got := tok.Decode(tok.Encode("abc é", true, false)); got != "abc é" {
		t.Fatalf("round trip: %q", got)
	}
	if got := tok.Encode("", true, false); !reflect.DeepEqual(got, []int{1}) {
		t.Fatalf("empty text: %v", got)
	}
}

func TestPieceAfterBOS(t *testing.T) {
	tok := tinyVocab(t)
	sp, _ := tok.ID(" ab")
	if got := tok.Piece(1, sp); got != "ab" {
		t.Fatalf("piece after BOS = %q, want leading space stripped", got)
	}
	if got := tok.Piece(5, sp); got != " ab" {
		t.Fatalf("piece = %q", got)
	}
	if got := tok.Piece(5, 'A'+3); got != "A" {
		t.Fatalf("byte piece = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	tok := tinyVocab(t)
	good := buildBin([]string{"a", "bb"}, []float32{0, 0})
	for name, c := range map[string]struct {
		data  []byte
		vocab int
	}{
		"empty":      {nil, 2},
		"truncated":  {good[:len(good)-1], 2},
		"more vocab": {good, 3},
		"bad maxlen": {binary.LittleEndian.AppendUint32(nil, 0), 2},
		"zero vocab": {good, 0},
	} {
		if _, err := ParseLlama2C(c.data, c.vocab); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_ = tok
	if _, err := LoadLlama2C("/nonexistent/tokenizer.bin", 32); err == nil || !strings.Contains(err.Error(), "/nonexistent/tokenizer.bin") {
		t.Errorf("missing file error does not name the file: %v", err)
	}
}

var sampleTexts = []string{
	"Once upon a time, there was a little girl named Lily.",
	"A ação do coração não é fácil; São Paulo, 2026!",
	"emoji 🙂 and tabs\tand\nnewlines  double  spaces",
	"",
}

func TestRealVocabulariesRoundTrip(t *testing.T) {
	for _, c := range []struct {
		rel   string
		vocab int
	}{
		{"models/stories260K/tok512.bin", 512},
		{"models/llama2-tokenizer/tokenizer.bin", 32000},
	} {
		tok, err := LoadLlama2C(testshared.Path(t, c.rel), c.vocab)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sampleTexts {
			ids := tok.Encode(s, true, false)
			if ids[0] != 1 {
				t.Fatalf("%s: first id %d, want BOS", c.rel, ids[0])
			}
			if got := tok.Decode(ids); got != s {
				t.Errorf("%s: Decode(Encode(%q)) = %q", c.rel, s, got)
			}
		}
		// Real vocabularies merge: far fewer tokens than bytes for English.
		if n := len(tok.Encode(sampleTexts[0], false, false)); n >= len(sampleTexts[0])/2 {
			t.Errorf("%s: %d tokens for %d bytes: merges not applied", c.rel, n, len(sampleTexts[0]))
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	path := os.Getenv("ORCHMIND_FUZZ_TOKENIZER")
	var tok *Llama2C
	if path != "" {
		var err error
		if tok, err = LoadLlama2C(path, 512); err != nil {
			f.Fatal(err)
		}
	}
	for _, s := range sampleTexts {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tk := tok
		if tk == nil {
			tk = tinyVocab(t)
		}
		if !utf8.ValidString(s) {
			return
		}
		if got := tk.Decode(tk.Encode(s, true, false)); got != s {
			t.Fatalf("Decode(Encode(%q)) = %q", s, got)
		}
	})
}

func BenchmarkEncode32k(b *testing.B) {
	tok, err := LoadLlama2C(testshared.Path(b, "models/llama2-tokenizer/tokenizer.bin"), 32000)
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat(sampleTexts[0]+" "+sampleTexts[1]+" ", 10)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text, true, false)
	}
}
