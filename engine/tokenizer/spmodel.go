package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
)

// LoadSentencePieceModel reads a SentencePiece tokenizer.model (the
// protobuf ModelProto that Llama 2, Mistral and their Hugging Face folders
// ship) and returns its vocabulary as a Llama2C tokenizer: the pieces and
// their scores, in id order. Only a BPE model with the llama conventions
// (unknown 0, BOS 1, EOS 2, <0xNN> byte pieces) is accepted; other
// SentencePiece models are refused with the reason.
func LoadSentencePieceModel(path string) (*Llama2C, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	pieces, scores, kinds, modelType, err := parseModelProto(raw)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: not a SentencePiece model: %w", path, err)
	}
	if modelType != 0 && modelType != spmBPE {
		name := map[int]string{1: "unigram", 3: "word", 4: "char"}[modelType]
		if name == "" {
			name = fmt.Sprintf("type %d", modelType)
		}
		return nil, fmt.Errorf("tokenizer %s: a SentencePiece %s model; orchmind runs the BPE SentencePiece models of the Llama family", path, name)
	}
	if len(pieces) < 3 || kinds[0] != spmUnknown || kinds[1] != spmControl || kinds[2] != spmControl {
		return nil, fmt.Errorf("tokenizer %s: the first pieces are not <unk>, <s>, </s> (unknown, BOS, EOS) as in Llama-family vocabularies", path)
	}
	t, err := FromSPMVocab(pieces, scores)
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

// parseModelProto reads the fields of ModelProto that matter here:
// pieces (1: repeated SentencePiece {1 piece, 2 score, 3 type}) and
// trainer_spec (2) → model_type (3).
func parseModelProto(b []byte) (pieces []string, scores []float32, kinds []int, modelType int, err error) {
	err = eachField(b, func(num int, wire int, v uint64, data []byte) error {
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
			pieces, scores, kinds = append(pieces, p), append(scores, s), append(kinds, k)
		case num == 2 && wire == 2:
			return eachField(data, func(num, wire int, v uint64, _ []byte) error {
				if num == 3 && wire == 0 {
					modelType = int(v)
				}
				return nil
			})
		}
		return nil
	})
	if err == nil && len(pieces) == 0 {
		err = errors.New("no pieces")
	}
	return pieces, scores, kinds, modelType, err
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
