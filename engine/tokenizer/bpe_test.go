package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"orchmind/internal/testshared"
)

// Ids of the hand-built test vocabulary: the 256 bytes are ids 0-255 (id ==
// byte value), then the merged tokens in merge order, then added tokens.
const (
	tGt    = 256 // "Ġt"
	tHe    = 257 // "he"
	tGthe  = 258 // "Ġthe"
	tIn    = 259 // "in"
	tIng   = 260 // "ing"
	tGa    = 261 // "Ġa"
	tAA    = 262 // "aa"
	tAAAA  = 263 // "aaaa"
	tLL    = 264 // "ll"
	tELL   = 265 // "ell"
	tCced  = 266 // "Ã§" (ç)
	tGn    = 267 // "Ġ1": merges a space with a digit
	tEOT   = 268 // "<|endoftext|>" control
	tTool  = 269 // "<tool>" user-defined
	tEndUD = 270 // "<|end" user-defined, a prefix of <|endoftext|>
)

var testMerges = []string{"Ġ t", "h e", "Ġt he", "i n", "in g", "Ġ a", "a a", "aa aa", "l l", "e ll", "Ã §", "Ġ 1"}

// testVocab builds the small vocabulary: bytes, one token per merge, and
// three added tokens.
func testVocab(t testing.TB) (tokens []string, types []int32) {
	t.Helper()
	for b := 0; b < 256; b++ {
		tokens = append(tokens, ByteLevel(string([]byte{byte(b)})))
	}
	for _, m := range testMerges {
		tokens = append(tokens, strings.Replace(m, " ", "", 1))
	}
	tokens = append(tokens, "<|endoftext|>", "<tool>", "<|end")
	for range tokens {
		types = append(types, TokenNormal)
	}
	types[tEOT], types[tTool], types[tEndUD] = TokenControl, TokenUserDefined, TokenUserDefined
	return tokens, types
}

func newTestBPE(t testing.TB, pre string) *BPE {
	t.Helper()
	tokens, types := testVocab(t)
	tok, err := NewBPE(tokens, testMerges, types, tEOT, tEOT, pre)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestByteLevelAlphabet(t *testing.T) {
	u := byteToUnicode()
	seen := map[rune]bool{}
	for b, r := range u {
		if seen[r] {
			t.Fatalf("byte 0x%02x maps to %q, already used", b, r)
		}
		seen[r] = true
	}
	// Fixed points of GPT-2's bytes_to_unicode().
	for b, want := range map[byte]rune{' ': 'Ġ', '\n': 'Ċ', '\t': 'ĉ', 'a': 'a', 0: 'Ā', 0x7f: 'ġ', 0xad: 'Ń', 0xa0: 'ł', 0xff: 'ÿ'} {
		if u[b] != want {
			t.Errorf("byte 0x%02x -> %q, want %q", b, u[b], want)
		}
	}
	if got := ByteLevel(" ação\n"); got != "ĠaÃ§Ã£oĊ" {
		t.Errorf("ByteLevel = %q", got)
	}
}

func TestBPEEncodeHandBuilt(t *testing.T) {
	tok := newTestBPE(t, "gpt2")
	cases := []struct {
		text string
		want []int
	}{
		{"the", []int{'t', tHe}},                     // no space: "Ġt he" cannot apply
		{" the", []int{tGthe}},                       // Ġ t, h e, then Ġt he
		{"the theing", []int{'t', tHe, tGthe, tIng}}, // two pre-tokens
		{"aaaaa", []int{tAAAA, 'a'}},                 // a a merged leftmost first, then aa aa
		{"hell", []int{tHe, tLL}},                    // h e (rank 1) before l l (8); e ll never applies
		{"ação", []int{'a', tCced, 0xc3, 0xa3, 'o'}}, // ç merged, ã left as bytes
		{" 1 12", []int{tGn, tGn, '2'}},              // " 1", " 12": Ġ 1 merges in both
		{"hi<|endoftext|> the<tool>", []int{'h', 'i', tEOT, tGthe, tTool}},
		{"<|end|>", []int{tEndUD, '|', '>'}},              // the shorter special when the longer does not match
		{"<|endoftext|><|endoftext|>", []int{tEOT, tEOT}}, // longest first
		{"  a", []int{' ', tGa}},                          // "\s+(?!\S)" leaves the last space to the word
		{"", nil},
	}
	for _, c := range cases {
		got := tok.Encode(c.text, false, false)
		if len(got) == 0 && len(c.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
	}
	if got := tok.Encode(" the", true, true); !reflect.DeepEqual(got, []int{tEOT, tGthe, tEOT}) {
		t.Errorf("Encode with BOS and EOS = %v", got)
	}
}

func TestBPEDecode(t *testing.T) {
	tok := newTestBPE(t, "gpt2")
	if got := tok.Decode([]int{tEOT, tGthe, tIng, tTool, 0xc3, 0xa7, tEOT}); got != " theing<tool>ç" {
		t.Errorf("Decode = %q", got)
	}
	if got := tok.Piece(-1, 0xc3); got != "\xc3" {
		t.Errorf("Piece(0xc3) = %q, want the single byte", got)
	}
	if got := tok.Piece(-1, tEOT); got != "" {
		t.Errorf("Piece(control) = %q, want empty", got)
	}
	for _, id := range []int{-1, tok.VocabSize(), 1 << 40} {
		if got := tok.Piece(-1, id); got != "" {
			t.Errorf("Piece(%d) = %q, want empty for an id out of range", id, got)
		}
		if got := tok.Token(id); got != "" {
			t.Errorf("Token(%d) = %q, want empty", id, got)
		}
	}
	if got := tok.Decode([]int{-5, 'a', 99999}); got != "a" {
		t.Errorf("Decode skipping ids out of range = %q", got)
	}
	if tok.VocabSize() != tEndUD+1 || tok.BOS() != tEOT || tok.EOS() != tEOT {
		t.Errorf("VocabSize/BOS/EOS = %d/%d/%d", tok.VocabSize(), tok.BOS(), tok.EOS())
	}
	if id, ok := tok.ID("Ġthe"); !ok || id != tGthe || tok.Token(tGthe) != "Ġthe" {
		t.Errorf("ID(Ġthe) = %d, %v", id, ok)
	}
	if _, ok := tok.ID(" the"); ok {
		t.Error("ID finds a raw-text string; vocabulary strings are in the byte alphabet")
	}
}

func TestNewBPEErrors(t *testing.T) {
	tokens, types := testVocab(t)
	cases := []struct {
		name    string
		tokens  []string
		merges  []string
		types   []int32
		bos     int
		pre     string
		wantErr string
	}{
		{"empty", nil, nil, nil, -1, "gpt2", "empty"},
		{"unknown merge token", tokens, []string{"Ġ zz"}, types, -1, "gpt2", `"zz"`},
		{"merge result missing", tokens, []string{"x y"}, types, -1, "gpt2", `makes "xy"`},
		{"malformed merge", tokens, []string{"Ġt"}, types, -1, "gpt2", "two tokens"},
		{"three-part merge", tokens, []string{"a b c"}, types, -1, "gpt2", "two tokens"},
		{"bos out of range", tokens, nil, types, len(tokens), "gpt2", "BOS"},
		{"types mismatch", tokens, nil, types[:3], -1, "gpt2", "token types"},
		{"unknown pre", tokens, nil, types, -1, "klingon", "klingon"},
		{"missing byte", tokens[1:], nil, nil, -1, "gpt2", "0x00"},
	}
	for _, c := range cases {
		_, err := NewBPE(c.tokens, c.merges, c.types, c.bos, -1, c.pre)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.wantErr)
		}
	}
}

// naiveBPE is GPT-2's encoder.py bpe(): find the adjacent pair of lowest
// rank, merge every occurrence of it left to right, repeat.
func naiveBPE(t *BPE, w string) []int {
	var word []string
	for i := 0; i < len(w); i++ {
		word = append(word, t.tokens[t.byteID[w[i]]])
	}
	rank := map[[2]string]int{}
	for k, m := range t.merges {
		rank[[2]string{t.tokens[int(k>>32)], t.tokens[int(uint32(k))]}] = int(m.rank)
	}
	for len(word) > 1 {
		best, bestRank := [2]string{}, -1
		for i := 0; i+1 < len(word); i++ {
			if r, ok := rank[[2]string{word[i], word[i+1]}]; ok && (bestRank < 0 || r < bestRank) {
				best, bestRank = [2]string{word[i], word[i+1]}, r
			}
		}
		if bestRank < 0 {
			break
		}
		var next []string
		for i := 0; i < len(word); {
			if i+1 < len(word) && word[i] == best[0] && word[i+1] == best[1] {
				next = append(next, best[0]+best[1])
				i += 2
			} else {
				next = append(next, word[i])
				i++
			}
		}
		word = next
	}
	ids := make([]int, len(word))
	for i, s := range word {
		ids[i] = t.ids[s]
	}
	return ids
}

// TestBPEMatchesNaive compares the heap merge loop with encoder.py's
// algorithm on random words over a few letters with many merges.
func TestBPEMatchesNaive(t *testing.T) {
	tok := newTestBPE(t, "gpt2")
	rng := rand.New(rand.NewPCG(3, 4))
	letters := "aaaheling t"
	var sc bpeScratch
	for n := 0; n < 5000; n++ {
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		w := string(b)
		if got, want := tok.bpe(w, &sc), naiveBPE(tok, w); !reflect.DeepEqual(got, want) {
			t.Fatalf("bpe(%q) = %v, encoder.py algorithm gives %v", w, got, want)
		}
	}
}

func TestBPELongWord(t *testing.T) {
	tok := newTestBPE(t, "gpt2")
	w := strings.Repeat("a", 100001)
	ids := tok.Encode(w, false, false)
	if len(ids) != 25001 || ids[0] != tAAAA || ids[len(ids)-1] != 'a' {
		t.Fatalf("Encode(100001 × a): %d ids, first %d last %d", len(ids), ids[0], ids[len(ids)-1])
	}
}

func TestBPEConcurrent(t *testing.T) {
	tok := newTestBPE(t, "gpt2")
	want := tok.Encode("the theing hell ação", false, false)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if got := tok.Encode(fmt.Sprintf("the theing hell ação %d", i%7), false, false); !reflect.DeepEqual(got[:len(want)], want) {
					t.Errorf("concurrent Encode = %v", got)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestBPEIgnoreMerges checks Llama 3's rule: a pre-token that is in the
// vocabulary is that token even when the merges would not build it.
func TestBPEIgnoreMerges(t *testing.T) {
	tokens, types := testVocab(t)
	tokens = append(tokens, "ĠtheĠ!") // unreachable by merges
	types = append(types, TokenNormal)
	tok, err := NewBPE(tokens, testMerges, types, -1, -1, "llama-bpe")
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("xyz", false, false); !reflect.DeepEqual(got, []int{'x', 'y', 'z'}) {
		t.Errorf("Encode(xyz) = %v", got)
	}
	tokens[len(tokens)-1] = "hel" // reachable only directly
	tok, err = NewBPE(tokens, testMerges, types, -1, -1, "llama-bpe")
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("hel hell", false, false); !reflect.DeepEqual(got, []int{len(tokens) - 1, ' ', tHe, tLL}) {
		t.Errorf("Encode(hel hell) with ignore_merges = %v", got)
	}
	tok, err = NewBPE(tokens, testMerges, types, -1, -1, "gpt2")
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("hel", false, false); !reflect.DeepEqual(got, []int{tHe, 'l'}) {
		t.Errorf("Encode(hel) without ignore_merges = %v", got)
	}
}

// FuzzBPERoundTrip checks Decode(Encode(s)) == s for every split family
// (any bytes: invalid UTF-8 survives byte for byte too), and that Encode
// never panics.
func FuzzBPERoundTrip(f *testing.F) {
	for _, s := range []string{"", " the theing", "ação é 日本語 👋🏽", "12345 x1234567", "a\n\n  b\r\n", "I've they'RE", "\xff\xfe<tool>"} {
		f.Add(s)
	}
	toks := map[string]*BPE{}
	for _, pre := range []string{"gpt2", "llama-bpe", "qwen2", "smollm"} {
		toks[pre] = newTestBPE(f, pre)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Contains(s, "<|endoftext|>") {
			return // a control token: decodes to nothing by design
		}
		for pre, tok := range toks {
			ids := tok.Encode(s, false, false)
			if got := tok.Decode(ids); got != s {
				t.Fatalf("%s: Decode(Encode(%q)) = %q (ids %v)", pre, s, got, ids)
			}
			if utf8.ValidString(s) && len(ids) > len(s) {
				t.Fatalf("%s: %d ids for %d bytes", pre, len(ids), len(s))
			}
		}
	})
}

// BenchmarkEncode measures Encode on real text (SetBytes: MB/s of input)
// with GPT-2's vocabulary ($ORCHMIND_GPT2_VOCAB): Portuguese fortunes and
// English Alpaca seed tasks from the shared folder. "warm" reuses the
// pre-token cache across iterations; "cold" empties it before each one, as
// a single pass over new training data sees it.
func BenchmarkEncode(b *testing.B) {
	d := os.Getenv("ORCHMIND_GPT2_VOCAB")
	if d == "" {
		b.Skip("skipping: set ORCHMIND_GPT2_VOCAB to a folder with GPT-2's encoder.json and vocab.bpe")
	}
	tok, err := LoadGPT2Files(filepath.Join(d, "encoder.json"), filepath.Join(d, "vocab.bpe"))
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range []string{"data/fortunes-br/brasil.txt", "data/alpaca_seed/seed_tasks.jsonl"} {
		raw, err := os.ReadFile(testshared.Path(b, f))
		if err != nil {
			b.Fatal(err)
		}
		text := string(raw)
		for _, mode := range []string{"warm", "cold"} {
			b.Run(filepath.Base(f)+"/"+mode, func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				n := 0
				for b.Loop() {
					if mode == "cold" {
						b.StopTimer()
						clear(tok.cache)
						b.StartTimer()
					}
					n = len(tok.Encode(text, false, false))
				}
				b.ReportMetric(float64(len(text))/float64(n), "bytes/token")
			})
		}
	}
}

// TestBPEGGUFVocabRoundTrip: a BPE written out with GGUFVocab and built
// again with NewBPE encodes every text the same, for each pre-tokenizer
// GGUF can name; configurations it cannot name are refused.
func TestBPEGGUFVocabRoundTrip(t *testing.T) {
	texts := []string{"the thing in aaaa 1 12 345 hello<|endoftext|>", "ça bell  ing\n\n1234567 <tool> x"}
	for _, pre := range []string{"gpt-2", "smollm", "llama-bpe", "qwen2"} {
		orig := newTestBPE(t, pre)
		orig.SetAddSpecial(true, false)
		tokens, types, merges, gotPre, err := orig.GGUFVocab()
		if err != nil {
			t.Fatalf("%s: %v", pre, err)
		}
		if gotPre != pre {
			t.Errorf("pre %q written as %q", pre, gotPre)
		}
		if !reflect.DeepEqual(merges, testMerges) {
			t.Errorf("%s: merges %q, want %q", pre, merges, testMerges)
		}
		back, err := NewBPE(tokens, merges, types, orig.BOS(), orig.EOS(), gotPre)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range texts {
			if a, b := orig.Encode(s, true, true), back.Encode(s, true, true); !reflect.DeepEqual(a, b) {
				t.Errorf("%s: %q encodes as %v, after the round trip %v", pre, s, a, b)
			}
		}
	}
	spaced := newTestBPE(t, "gpt2")
	spaced.addPrefixSpace = true
	if _, _, _, _, err := spaced.GGUFVocab(); err == nil {
		t.Error("add_prefix_space written to GGUF without an error")
	}
}

// TestDropTokensFrom: added control tokens beyond the model's rows are
// dropped and no longer matched; an ordinary token there is refused.
func TestDropTokensFrom(t *testing.T) {
	tokens, merges, types := []string{}, []string{}, []int32{}
	for _, r := range byteToUnicode() {
		tokens = append(tokens, string(r))
		types = append(types, TokenNormal)
	}
	tokens = append(tokens, "<|im_end|>", "<image_soft_token>")
	types = append(types, TokenControl, TokenControl)
	tok, err := NewBPE(tokens, merges, types, -1, 256, "gpt2")
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("a<image_soft_token>", false, false); len(got) != 2 || got[1] != 257 {
		t.Fatalf("before: %v", got)
	}
	if err := tok.DropTokensFrom(257); err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 257 {
		t.Fatalf("VocabSize %d", tok.VocabSize())
	}
	for _, id := range tok.Encode("a<image_soft_token><|im_end|>", false, false) {
		if id >= 257 {
			t.Fatalf("id %d beyond the rows", id)
		}
	}
	if err := tok.DropTokensFrom(100); err == nil || !strings.Contains(err.Error(), "ordinary token") {
		t.Errorf("dropping ordinary tokens: %v", err)
	}
}
