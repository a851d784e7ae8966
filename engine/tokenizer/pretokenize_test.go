package tokenizer

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// The expected splits below were produced by Python's `regex` module
// (2.5.123) running the original patterns (SmolLM: regex.split on \p{N}
// first, then the GPT-2 pattern on the parts between digits).
func TestPreTokenizeTable(t *testing.T) {
	type want struct{ gpt2, llama3, qwen2, smollm []string }
	cases := []struct {
		text string
		want want
	}{
		{"Hello   world  ", want{
			gpt2:   []string{"Hello", "  ", " world", "  "},
			llama3: []string{"Hello", "  ", " world", "  "},
			qwen2:  []string{"Hello", "  ", " world", "  "},
			smollm: []string{"Hello", "  ", " world", "  "},
		}},
		{"a\n\n  b", want{
			gpt2:   []string{"a", "\n\n ", " b"},
			llama3: []string{"a", "\n\n", " ", " b"},
			qwen2:  []string{"a", "\n\n", " ", " b"},
			smollm: []string{"a", "\n\n ", " b"},
		}},
		{"12345 x1234567", want{
			gpt2:   []string{"12345", " x", "1234567"},
			llama3: []string{"123", "45", " x", "123", "456", "7"},
			qwen2:  []string{"1", "2", "3", "4", "5", " x", "1", "2", "3", "4", "5", "6", "7"},
			smollm: []string{"1", "2", "3", "4", "5", " x", "1", "2", "3", "4", "5", "6", "7"},
		}},
		{"I've they'RE don't", want{
			gpt2:   []string{"I", "'ve", " they", "'", "RE", " don", "'t"},
			llama3: []string{"I", "'ve", " they", "'RE", " don", "'t"},
			qwen2:  []string{"I", "'ve", " they", "'RE", " don", "'t"},
			smollm: []string{"I", "'ve", " they", "'", "RE", " don", "'t"},
		}},
		{"ação é", want{
			gpt2:   []string{"ação", " é"},
			llama3: []string{"ação", " é"},
			qwen2:  []string{"ação", " é"},
			smollm: []string{"ação", " é"},
		}},
		{"日本語 テスト", want{
			gpt2:   []string{"日本語", " テスト"},
			llama3: []string{"日本語", " テスト"},
			qwen2:  []string{"日本語", " テスト"},
			smollm: []string{"日本語", " テスト"},
		}},
		{"hi 👋🏽 ok", want{
			gpt2:   []string{"hi", " 👋🏽", " ok"},
			llama3: []string{"hi", " 👋🏽", " ok"},
			qwen2:  []string{"hi", " 👋🏽", " ok"},
			smollm: []string{"hi", " 👋🏽", " ok"},
		}},
		{" \t\r\n x", want{
			gpt2:   []string{" \t\r\n", " x"},
			llama3: []string{" \t\r\n", " x"},
			qwen2:  []string{" \t\r\n", " x"},
			smollm: []string{" \t\r\n", " x"},
		}},
		{"...!!\r\n\nyo", want{
			gpt2:   []string{"...!!", "\r\n", "\n", "yo"},
			llama3: []string{"...!!\r\n\n", "yo"},
			qwen2:  []string{"...!!\r\n\n", "yo"},
			smollm: []string{"...!!", "\r\n", "\n", "yo"},
		}},
		{`"quoted" (x)`, want{
			gpt2:   []string{`"`, "quoted", `"`, " (", "x", ")"},
			llama3: []string{`"quoted`, `"`, " (", "x", ")"},
			qwen2:  []string{`"quoted`, `"`, " (", "x", ")"},
			smollm: []string{`"`, "quoted", `"`, " (", "x", ")"},
		}},
		{"a  1", want{
			gpt2:   []string{"a", " ", " 1"},
			llama3: []string{"a", " ", " ", "1"},
			qwen2:  []string{"a", " ", " ", "1"},
			smollm: []string{"a", "  ", "1"},
		}},
		{"x.y", want{
			gpt2:   []string{"x", ".", "y"},
			llama3: []string{"x", ".y"},
			qwen2:  []string{"x", ".y"},
			smollm: []string{"x", ".", "y"},
		}},
		{"", want{}},
	}
	for _, c := range cases {
		for _, p := range []struct {
			pre  string
			want []string
		}{{"gpt2", c.want.gpt2}, {"llama-bpe", c.want.llama3}, {"qwen2", c.want.qwen2}, {"smollm", c.want.smollm}} {
			got, err := PreTokenize(p.pre, c.text)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(p.want) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, p.want) {
				t.Errorf("PreTokenize(%s, %q)\n got %q\nwant %q", p.pre, c.text, got, p.want)
			}
		}
	}
}

func TestPreTokenizeUnknown(t *testing.T) {
	_, err := PreTokenize("no-such-split", "x")
	if err == nil || !strings.Contains(err.Error(), "no-such-split") {
		t.Fatalf("PreTokenize with an unknown name: err = %v, want an error naming it", err)
	}
}

// TestPreTokenizeCovers checks on random text (valid and invalid UTF-8)
// that the pieces are non-empty and concatenate back to the input.
func TestPreTokenizeCovers(t *testing.T) {
	alphabet := []string{" ", "  ", "\n", "\r\n", "\t", "a", "Z", "é", "ç", "日", "7", "٣", "'", "'s", "'LL", ".", "!", "👋", "\u00a0", "\u2028", "\xff", "\xe2\x82"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, pre := range []string{"gpt2", "llama-bpe", "qwen2", "smollm"} {
		for n := 0; n < 2000; n++ {
			var sb strings.Builder
			for k := rng.IntN(20); k > 0; k-- {
				sb.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			s := sb.String()
			got, err := PreTokenize(pre, s)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range got {
				if p == "" {
					t.Fatalf("PreTokenize(%s, %q) has an empty piece: %q", pre, s, got)
				}
				if utf8.ValidString(s) && !utf8.ValidString(p) {
					t.Fatalf("PreTokenize(%s, %q) cut a character: %q", pre, s, got)
				}
			}
			if strings.Join(got, "") != s {
				t.Fatalf("PreTokenize(%s, %q) = %q does not concatenate back", pre, s, got)
			}
		}
	}
}
