package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
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
// 6 byte), for writing tokenizer.ggml.* metadata.
func (t *Llama2C) GGUFVocab() (tokens []string, scores []float32, types []int32) {
	for i, s := range t.vocab {
		tokens = append(tokens, strings.ReplaceAll(s, " ", spmSpace))
		scores = append(scores, t.scores[i])
		typ := int32(1)
		switch {
		case i == 0:
			typ = 2
		case i == llama2cBOS || i == llama2cEOS:
			typ = 3
		case len(s) == 6 && strings.HasPrefix(s, "<0x") && s[5] == '>':
			typ = 6
		}
		types = append(types, typ)
	}
	return tokens, scores, types
}

// FromSPMVocab builds the tokenizer from a SentencePiece-style vocabulary
// (GGUF tokenizer.ggml.model "llama": tokens with "▁" spaces and scores),
// with BOS 1 and EOS 2 as llama-family vocabularies have them.
func FromSPMVocab(tokens []string, scores []float32) (*Llama2C, error) {
	if len(tokens) == 0 || len(tokens) != len(scores) {
		return nil, fmt.Errorf("tokenizer: %d tokens and %d scores", len(tokens), len(scores))
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
	return ParseLlama2C(append(head, b...), len(tokens))
}
