package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Llama2C is a tokenizer loaded from a llama2.c tokenizer.bin file.
type Llama2C struct {
	vocab  []string
	scores []float32
	ids    map[string]int
	byteID [256]int // id of the <0xNN> token for each byte, -1 when absent
}

// The llama2.c conventions for special tokens.
const (
	llama2cBOS = 1
	llama2cEOS = 2
)

// LoadLlama2C reads a llama2.c tokenizer.bin holding vocabSize tokens (the
// vocabulary size comes from the model's header): an int32 max token length,
// then per token a float32 score, an int32 byte length and the bytes.
func LoadLlama2C(path string, vocabSize int) (*Llama2C, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	t, err := ParseLlama2C(data, vocabSize)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return t, nil
}

// ParseLlama2C parses the bytes of a llama2.c tokenizer.bin.
func ParseLlama2C(data []byte, vocabSize int) (*Llama2C, error) {
	if vocabSize < 3 || vocabSize > 1<<22 {
		return nil, fmt.Errorf("vocabulary size %d is out of range (3 to %d: <unk>, BOS and EOS come first)", vocabSize, 1<<22)
	}
	if len(data) < 4 {
		return nil, fmt.Errorf("truncated: %d bytes, not a llama2.c tokenizer.bin", len(data))
	}
	maxLen := int(int32(binary.LittleEndian.Uint32(data)))
	if maxLen <= 0 || maxLen > 1<<16 {
		return nil, fmt.Errorf("max token length %d is out of range: not a llama2.c tokenizer.bin", maxLen)
	}
	// Each token takes at least 8 bytes (score, length): check before
	// allocating what the model header claims.
	if room := (len(data) - 4) / 8; vocabSize > room {
		return nil, fmt.Errorf("truncated: %d bytes hold at most %d tokens, the model says %d; the tokenizer does not belong to the model or is incomplete", len(data), room, vocabSize)
	}
	t := &Llama2C{
		vocab:  make([]string, vocabSize),
		scores: make([]float32, vocabSize),
		ids:    make(map[string]int, vocabSize),
	}
	off := 4
	for i := 0; i < vocabSize; i++ {
		if off+8 > len(data) {
			return nil, fmt.Errorf("truncated at token %d of %d (offset %d)", i, vocabSize, off)
		}
		t.scores[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		if n < 0 || n > maxLen || off+n > len(data) {
			return nil, fmt.Errorf("token %d has length %d (max %d, %d bytes left)", i, n, maxLen, len(data)-off)
		}
		t.vocab[i] = string(data[off : off+n])
		off += n
		if _, dup := t.ids[t.vocab[i]]; !dup {
			t.ids[t.vocab[i]] = i
		}
	}
	for b := range t.byteID {
		t.byteID[b] = -1
		if id, ok := t.ids[fmt.Sprintf("<0x%02X>", b)]; ok {
			t.byteID[b] = id
		}
	}
	return t, nil
}

// VocabSize is the number of tokens.
func (t *Llama2C) VocabSize() int { return len(t.vocab) }

// BOS is the beginning-of-sequence id (1 in llama2.c).
func (t *Llama2C) BOS() int { return llama2cBOS }

// EOS is the end-of-sequence id (2 in llama2.c).
func (t *Llama2C) EOS() int { return llama2cEOS }

// Token returns the vocabulary piece of id, or "" when out of range.
func (t *Llama2C) Token(id int) string {
	if id < 0 || id >= len(t.vocab) {
		return ""
	}
	return t.vocab[id]
}

// ID returns the id of a vocabulary piece.
func (t *Llama2C) ID(piece string) (int, bool) { id, ok := t.ids[piece]; return id, ok }

// Encode tokenizes text exactly as llama2.c's encode(): an optional BOS, a
// dummy-prefix space for non-empty text, one piece per UTF-8 character (bytes
// of unknown characters become <0xNN> tokens), then repeated merges of the
// adjacent pair with the highest score (leftmost on ties), and an optional EOS.
func (t *Llama2C) Encode(text string, addBOS, addEOS bool) []int {
	toks := make([]int, 0, len(text)+3)
	if addBOS {
		toks = append(toks, llama2cBOS)
	}
	if text != "" {
		if id, ok := t.ids[" "]; ok {
			toks = append(toks, id)
		}
	}
	for i := 0; i < len(text); {
		_, size := utf8.DecodeRuneInString(text[i:])
		if id, ok := t.ids[text[i:i+size]]; ok {
			toks = append(toks, id)
		} else {
			for _, b := range []byte(text[i : i+size]) {
				// run.c maps byte b to id b+3; use the vocabulary's own <0xNN> when present,
				// and <unk> (0) when b+3 is past a small vocabulary without byte pieces.
				switch id := t.byteID[b]; {
				case id >= 0:
					toks = append(toks, id)
				case int(b)+3 < len(t.vocab):
					toks = append(toks, int(b)+3)
				default:
					toks = append(toks, 0)
				}
			}
		}
		i += size
	}
	start := 0
	if addBOS {
		start = 1
	}
	var sb strings.Builder
	for {
		best, bestID, bestScore := -1, -1, float32(-1e10)
		for i := start; i+1 < len(toks); i++ {
			sb.Reset()
			sb.WriteString(t.Token(toks[i]))
			sb.WriteString(t.Token(toks[i+1]))
			if id, ok := t.ids[sb.String()]; ok && t.scores[id] > bestScore {
				best, bestID, bestScore = i, id, t.scores[id]
			}
		}
		if best < 0 {
			break
		}
		toks[best] = bestID
		toks = append(toks[:best+1], toks[best+2:]...)
	}
	if addEOS {
		toks = append(toks, llama2cEOS)
	}
	return toks
}

// Piece returns the text of token id as printed after token prev, like
// llama2.c's decode(): the leading space of a piece following BOS is
// dropped, and byte tokens <0xNN> become the raw byte.
func (t *Llama2C) Piece(prev, id int) string {
	p := t.Token(id)
	if prev == llama2cBOS && strings.HasPrefix(p, " ") {
		p = p[1:]
	}
	if len(p) == 6 && strings.HasPrefix(p, "<0x") && p[5] == '>' {
		if b, err := strconv.ParseUint(p[3:5], 16, 8); err == nil {
			return string([]byte{byte(b)})
		}
	}
	return p
}

// Decode turns ids back into text, skipping BOS and EOS.
func (t *Llama2C) Decode(ids []int) string {
	var sb strings.Builder
	prev := llama2cBOS
	for _, id := range ids {
		if id != llama2cBOS && id != llama2cEOS {
			sb.WriteString(t.Piece(prev, id))
		}
		prev = id
	}
	return sb.String()
}
