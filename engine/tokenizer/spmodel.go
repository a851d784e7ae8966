package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
)

// LoadSentencePieceModel reads a SentencePiece tokenizer.model (the
// protobuf ModelProto that Llama 2, Mistral, Gemma and their Hugging Face
// folders ship) and returns it as a Llama2C tokenizer: the pieces with
// their scores and types in id order, the unknown, BOS and EOS ids of its
// trainer spec (Llama: 0, 1, 2; Gemma: 3, 2, 1) and whether it adds a
// dummy-prefix space (normalizer add_dummy_prefix; false for Gemma). Only
// BPE models are accepted; other SentencePiece models are refused with the
// reason.
func LoadSentencePieceModel(path string) (*Llama2C, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	m, err := parseModelProto(raw)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: not a SentencePiece model: %w", path, err)
	}
	if m.modelType != 0 && m.modelType != spmBPE {
		name := map[int]string{1: "unigram", 3: "word", 4: "char"}[m.modelType]
		if name == "" {
			name = fmt.Sprintf("type %d", m.modelType)
		}
		return nil, fmt.Errorf("tokenizer %s: a SentencePiece %s model; orchmind runs the BPE SentencePiece models of the Llama and Gemma families", path, name)
	}
	n := len(m.pieces)
	for _, x := range []struct {
		name string
		id   int
		kind int
	}{{"unknown", m.unk, spmUnknown}, {"BOS", m.bos, spmControl}, {"EOS", m.eos, spmControl}} {
		if x.id < 0 || x.id >= n || m.kinds[x.id] != x.kind {
			return nil, fmt.Errorf("tokenizer %s: the %s piece (id %d in the trainer spec) is missing or not of the right type; the file is not a Llama- or Gemma-style SentencePiece model", path, x.name, x.id)
		}
	}
	types := make([]int32, n)
	for i, k := range m.kinds {
		types[i] = int32(k) // SentencePiece piece types number as GGUF's
	}
	t, err := NewSPM(m.pieces, m.scores, types, m.bos, m.eos, m.dummyPrefix)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return t, nil
}

// SentencePiece piece types (sentencepiece_model.proto) and model types.
const (
	spmNormal  = 1
	spmUnknown = 2
	spmControl = 3
	spmBPE     = 2
)

// spModel is the part of a SentencePiece ModelProto read here.
type spModel struct {
	pieces        []string
	scores        []float32
	kinds         []int
	modelType     int
	unk, bos, eos int
	dummyPrefix   bool
}

// parseModelProto reads the fields of ModelProto that matter here:
// pieces (1: repeated SentencePiece {1 piece, 2 score, 3 type}),
// trainer_spec (2) → model_type (3), unk_id (40), bos_id (41), eos_id (42),
// and normalizer_spec (3) → add_dummy_prefix (3).
func parseModelProto(b []byte) (*spModel, error) {
	m := &spModel{unk: 0, bos: 1, eos: 2, dummyPrefix: true}
	err := eachField(b, func(num int, wire int, v uint64, data []byte) error {
		switch {
		case num == 1 && wire == 2:
			p, s, k := "", float32(0), spmNormal
			if err := eachField(data, func(num, wire int, v uint64, data []byte) error {
				switch {
				case num == 1 && wire == 2:
					p = string(data)
				case num == 2 && wire == 5:
					s = math.Float32frombits(uint32(v))
				case num == 3 && wire == 0:
					k = int(v)
				}
				return nil
			}); err != nil {
				return err
			}
			m.pieces, m.scores, m.kinds = append(m.pieces, p), append(m.scores, s), append(m.kinds, k)
		case num == 2 && wire == 2:
			return eachField(data, func(num, wire int, v uint64, _ []byte) error {
				if wire != 0 {
					return nil
				}
				switch num {
				case 3:
					m.modelType = int(v)
				case 40:
					m.unk = int(int32(v))
				case 41:
					m.bos = int(int32(v))
				case 42:
					m.eos = int(int32(v))
				}
				return nil
			})
		case num == 3 && wire == 2:
			return eachField(data, func(num, wire int, v uint64, _ []byte) error {
				if num == 3 && wire == 0 {
					m.dummyPrefix = v != 0
				}
				return nil
			})
		}
		return nil
	})
	if err == nil && len(m.pieces) == 0 {
		err = errors.New("no pieces")
	}
	return m, err
}

// eachField walks the protobuf wire format of b, calling f with each
// field's number, wire type, and value (varint or fixed) or bytes.
func eachField(b []byte, f func(num, wire int, v uint64, data []byte) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("bad field key")
		}
		b = b[n:]
		num, wire := int(key>>3), int(key&7)
		var v uint64
		var data []byte
		switch wire {
		case 0:
			v, n = binary.Uvarint(b)
			if n <= 0 {
				return errors.New("bad varint")
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return errors.New("truncated fixed64")
			}
			v, b = binary.LittleEndian.Uint64(b), b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return errors.New("bad length")
			}
			data, b = b[n:n+int(l)], b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errors.New("truncated fixed32")
			}
			v, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		default:
			return fmt.Errorf("wire type %d is not used by SentencePiece models", wire)
		}
		if err := f(num, wire, v, data); err != nil {
			return err
		}
	}
	return nil
}
