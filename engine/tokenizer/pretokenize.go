package tokenizer

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Byte-level BPE tokenizers first split text into pre-tokens with a regular
// expression and run BPE inside each pre-token only. The expressions use a
// negative lookahead (\s+(?!\S)), which Go's regexp lacks, so the few that
// real vocabularies use are written out by hand here, each following the
// alternation order and backtracking of the original pattern exactly.

// Pattern strings of the split expressions, as they appear in tokenizer.json
// files and in the reference implementations.
const (
	// PatternGPT2 is GPT-2's split (also SmolLM's, after its digit split).
	PatternGPT2 = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	// PatternLlama3 is Llama 3's split: numbers in groups of up to three.
	PatternLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// PatternQwen2 is Qwen2's split: Llama 3's with every digit on its own.
	PatternQwen2 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// preKind names one of the hand-written split expressions.
type preKind uint8

const (
	preGPT2   preKind = iota // PatternGPT2
	preLlama3                // PatternLlama3 (or PatternQwen2 with singleDigits)
	preNone                  // no split: the whole text is one pre-token
)

// preTokenizer is the pre-tokenization of one vocabulary family.
type preTokenizer struct {
	kind preKind
	// singleDigits makes \p{N}{1,3} of the Llama 3 pattern \p{N} (Qwen2).
	singleDigits bool
	// isolateDigits splits every \p{N} character out on its own before the
	// pattern runs on the text between them (SmolLM's Digits pre-tokenizer
	// with individual_digits, followed by ByteLevel's GPT-2 split).
	isolateDigits bool
}

// preTokenizerFor maps a GGUF tokenizer.ggml.pre name to its split.
// "default" (and "") take the GPT-2 split.
func preTokenizerFor(pre string) (preTokenizer, error) {
	switch pre {
	case "", "default", "gpt2", "gpt-2":
		return preTokenizer{kind: preGPT2}, nil
	case "smollm", "starcoder", "refact":
		return preTokenizer{kind: preGPT2, isolateDigits: true}, nil
	case "llama-bpe", "llama3", "llama-v3", "smaug-bpe":
		return preTokenizer{kind: preLlama3}, nil
	case "qwen2":
		return preTokenizer{kind: preLlama3, singleDigits: true}, nil
	}
	return preTokenizer{}, fmt.Errorf("tokenizer: unknown pre-tokenizer %q; orchmind knows gpt2, default, smollm, llama-bpe and qwen2 (tokenizer.ggml.pre names the split the model was trained with, so another one cannot be substituted)", pre)
}

// PreTokenize splits text the way the vocabulary family named by pre
// (a GGUF tokenizer.ggml.pre value: "gpt2", "default", "smollm",
// "llama-bpe", "qwen2") splits it before BPE. The pieces concatenate back
// to text.
func PreTokenize(pre, text string) ([]string, error) {
	p, err := preTokenizerFor(pre)
	if err != nil {
		return nil, err
	}
	return p.split(nil, text), nil
}

// split appends the pre-tokens of s to dst. Every piece is a substring of s
// and together they cover s in order.
func (p preTokenizer) split(dst []string, s string) []string {
	p.each(s, func(piece string) { dst = append(dst, piece) })
	return dst
}

// each calls f with every pre-token of s in order.
func (p preTokenizer) each(s string, f func(string)) {
	if !p.isolateDigits {
		p.eachPattern(s, f)
		return
	}
	start := 0
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if classOf(r, w) == clsNumber {
			p.eachPattern(s[start:i], f)
			f(s[i : i+w])
			start = i + w
		}
		i += w
	}
	p.eachPattern(s[start:], f)
}

func (p preTokenizer) eachPattern(s string, f func(string)) {
	for i := 0; i < len(s); {
		var n int
		switch p.kind {
		case preGPT2:
			n = matchGPT2(s, i)
		case preLlama3:
			n = matchLlama3(s, i, p.singleDigits)
		default:
			n = len(s) - i
		}
		f(s[i : i+n])
		i += n
	}
}

// runeClass is the character class the patterns distinguish.
type runeClass uint8

const (
	clsEnd    runeClass = iota // past the end of the text
	clsOther                   // [^\s\p{L}\p{N}]
	clsLetter                  // \p{L}
	clsNumber                  // \p{N}
	clsSpace                   // \s (Unicode White_Space)
)

// classOf classifies rune r of encoded width w; an invalid UTF-8 byte
// (RuneError of width 1) is "other", so it stays in the text byte for byte.
func classOf(r rune, w int) runeClass {
	if r < utf8.RuneSelf {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
			return clsLetter
		case '0' <= r && r <= '9':
			return clsNumber
		case r == ' ', '\t' <= r && r <= '\r':
			return clsSpace
		}
		return clsOther
	}
	if r == utf8.RuneError && w == 1 {
		return clsOther
	}
	switch {
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.IsSpace(r):
		return clsSpace
	}
	return clsOther
}

// at decodes the rune at byte offset i of s with its width and class.
func at(s string, i int) (rune, int, runeClass) {
	if i >= len(s) {
		return 0, 0, clsEnd
	}
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1, classOf(rune(c), 1)
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	return r, w, classOf(r, w)
}

// runOf returns the end of the run of class c starting at byte i.
func runOf(s string, i int, c runeClass) int {
	for i < len(s) {
		_, w, ci := at(s, i)
		if ci != c {
			break
		}
		i += w
	}
	return i
}

// contraction returns the length of 's 't 're 've 'm 'll 'd at s[i] (which
// holds the apostrophe), 0 when none; fold makes the letters
// case-insensitive (ASCII).
func contraction(s string, i int, fold bool) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return 0
	}
	lower := func(b byte) byte {
		if fold && 'A' <= b && b <= 'Z' {
			return b + 'a' - 'A'
		}
		return b
	}
	switch lower(s[i+1]) {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if i+2 < len(s) && lower(s[i+2]) == 'e' {
			return 3
		}
	case 'l':
		if i+2 < len(s) && lower(s[i+2]) == 'l' {
			return 3
		}
	}
	return 0
}

// matchSpaces matches \s+(?!\S)|\s+ at s[i], which holds whitespace: the
// whole run when it ends the text, else the run less its last character
// (which then leads the next pre-token), or the single character.
func matchSpaces(s string, i int) int {
	j := runOf(s, i, clsSpace)
	if j == len(s) {
		return j - i
	}
	_, last := utf8.DecodeLastRuneInString(s[i:j])
	if j-last > i {
		return j - last - i
	}
	return j - i
}

// matchGPT2 returns the length of the pre-token PatternGPT2 matches at s[i].
func matchGPT2(s string, i int) int {
	r, w, c := at(s, i)
	if r == '\'' {
		if n := contraction(s, i, false); n > 0 {
			return n
		}
	}
	// ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
	j, cj := i, c
	if r == ' ' {
		if _, _, cn := at(s, i+w); cn == clsLetter || cn == clsNumber || cn == clsOther {
			j, cj = i+w, cn
		}
	}
	if cj != clsSpace {
		return runOf(s, j, cj) - i
	}
	return matchSpaces(s, i)
}

// matchLlama3 returns the length of the pre-token PatternLlama3 (or
// PatternQwen2 with singleDigits) matches at s[i].
func matchLlama3(s string, i int, singleDigits bool) int {
	r, w, c := at(s, i)
	if r == '\'' {
		if n := contraction(s, i, true); n > 0 {
			return n
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if c == clsLetter {
		return runOf(s, i, clsLetter) - i
	}
	if r != '\r' && r != '\n' && c != clsNumber {
		if _, _, cn := at(s, i+w); cn == clsLetter {
			return runOf(s, i+w, clsLetter) - i
		}
	}
	// \p{N}{1,3} or \p{N}
	if c == clsNumber {
		j, limit := i, 3
		if singleDigits {
			limit = 1
		}
		for k := 0; k < limit; k++ {
			_, wn, cn := at(s, j)
			if cn != clsNumber {
				break
			}
			j += wn
		}
		return j - i
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	j, cj := i, c
	if r == ' ' {
		if _, _, cn := at(s, i+w); cn == clsOther {
			j, cj = i+w, cn
		}
	}
	if cj == clsOther {
		j = runOf(s, j, clsOther)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j - i
	}
	// \s*[\r\n]+: through the last \r or \n of the whitespace run.
	end := runOf(s, i, clsSpace)
	for k := end - 1; k >= i; k-- {
		if s[k] == '\r' || s[k] == '\n' {
			return k + 1 - i
		}
	}
	return matchSpaces(s, i)
}
