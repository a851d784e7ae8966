package tokenizer

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Score is the merge score of token id.
func (t *Llama2C) Score(id int) float32 {
	if id < 0 || id >= len(t.scores) {
		return 0
	}
	return t.scores[id]
}

// SentencePiece vocabularies (GGUF tokenizer.ggml.tokens, tokenizer.model)
// write the word-boundary space as U+2581 "▁"; llama2.c's tokenizer.bin
// writes a plain space.
const spmSpace = "\u2581"

// GGUFVocab returns the vocabulary in SentencePiece/GGUF form (spaces as
// "▁") with scores and GGUF token types (1 normal, 2 unknown, 3 control,
// 4 user-defined, 6 byte), for writing tokenizer.ggml.* metadata.
func (t *Llama2C) GGUFVocab() (tokens []string, scores []float32, types []int32) {
	for i, s := range t.vocab {
		tokens = append(tokens, strings.ReplaceAll(s, " ", spmSpace))
		scores = append(scores, t.scores[i])
		if t.types != nil {
			types = append(types, t.types[i])
			continue
		}
		typ := int32(TokenNormal)
		switch {
		case i == 0:
			typ = TokenUnknown
		case i == t.bos || i == t.eos:
			typ = TokenControl
		case len(s) == 6 && strings.HasPrefix(s, "<0x") && s[5] == '>':
			typ = TokenByte
		}
		types = append(types, typ)
	}
	return tokens, scores, types
}

// AddSpacePrefix reports whether Encode puts a dummy-prefix space before
// the text (GGUF tokenizer.ggml.add_space_prefix; false for Gemma).
func (t *Llama2C) AddSpacePrefix() bool { return !t.noPrefix }

// FromSPMVocab builds the tokenizer from a SentencePiece-style vocabulary
// (GGUF tokenizer.ggml.model "llama": tokens with "▁" spaces and scores),
// with BOS 1 and EOS 2 as llama-family vocabularies have them.
func FromSPMVocab(tokens []string, scores []float32) (*Llama2C, error) {
	return NewSPM(tokens, scores, nil, llama2cBOS, llama2cEOS, true)
}

// SPMEndOfTurn are the texts of control tokens that end a chat turn in
// SentencePiece vocabularies; generation stops at them as at EOS.
var spmEndOfTurn = []string{"<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>"}

// NewSPM builds a SentencePiece-style BPE tokenizer from a vocabulary in
// GGUF form (tokenizer.ggml.model "llama": Llama 2, Mistral, Gemma):
// tokens with "▁" for spaces, their merge scores, their GGUF types (nil:
// all normal, with the llama conventions for <unk>, BOS and EOS), the BOS
// and EOS ids, and whether a dummy-prefix space goes before each text
// (tokenizer.ggml.add_space_prefix: true for Llama 2, false for Gemma).
// User-defined and control tokens other than BOS, EOS and unknown, whose
// text has no space, are matched whole in the text before the merges
// (Gemma's <start_of_turn>, "\n", <unused0>), as llama.cpp does.
func NewSPM(tokens []string, scores []float32, types []int32, bos, eos int, addSpacePrefix bool) (*Llama2C, error) {
	n := len(tokens)
	if n == 0 || n != len(scores) {
		return nil, fmt.Errorf("tokenizer: %d tokens and %d scores; the SentencePiece vocabulary is damaged", n, len(scores))
	}
	if types != nil && len(types) != n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens; the SentencePiece vocabulary is damaged", len(types), n)
	}
	if bos < 0 || bos >= n || eos < 0 || eos >= n {
		return nil, fmt.Errorf("tokenizer: BOS %d or EOS %d is outside the vocabulary of %d tokens", bos, eos, n)
	}
	maxLen := 1
	var b []byte
	for i, s := range tokens {
		s = strings.ReplaceAll(s, spmSpace, " ")
		maxLen = max(maxLen, len(s))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(scores[i]))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	head := binary.LittleEndian.AppendUint32(nil, uint32(maxLen))
	t, err := ParseLlama2C(append(head, b...), n)
	if err != nil {
		return nil, err
	}
	t.bos, t.eos, t.noPrefix = bos, eos, !addSpacePrefix
	if types == nil {
		return t, nil
	}
	t.types = types
	t.eog = map[int]bool{}
	for id, typ := range types {
		s := t.vocab[id]
		if (typ != TokenControl && typ != TokenUserDefined) || id == bos || id == eos || s == "" || strings.Contains(s, " ") {
			continue
		}
		t.specs[s[0]] = append(t.specs[s[0]], specialTok{text: s, id: id})
	}
	for c := range t.specs {
		slices.SortStableFunc(t.specs[c], func(x, y specialTok) int { return cmp.Compare(len(y.text), len(x.text)) })
	}
	for _, s := range spmEndOfTurn {
		if id, ok := t.ids[s]; ok && types[id] == TokenControl {
			t.eog[id] = true
		}
	}
	return t, nil
}
