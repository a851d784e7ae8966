// Package base loads the frozen base model a node serves (weights, tokenizer
// and identity) and builds small random bases for tests and benchmarks.
package base

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"orchmind/trainer/data"
	"orchmind/trainer/gguf"
	"orchmind/trainer/model"
	"orchmind/trainer/quant"
	"orchmind/trainer/tokenizer"
)

// Base is a loaded base model with its tokenizer and identity.
type Base struct {
	// Path is the checkpoint file ("" for a random base).
	Path string
	// Name is the display name (the file name without extension).
	Name  string
	Model *model.Model
	Tok   model.Tokenizer
	// Train is the tokenizer the trainer should use (for llama2.c bases it
	// ends documents with BOS; see DocEnd).
	Train data.Encoder
	Type  quant.Type
	// Fingerprint identifies the exact weights as held (model.Fingerprint);
	// ShapeID the architecture, names and shapes (model.ShapeID). Adapters
	// record both.
	Fingerprint, ShapeID string
}

// ErrNoTokenizer is wrapped by Load's error when the model has no tokenizer
// of its own and none was found beside it or given.
var ErrNoTokenizer = errors.New("no tokenizer found")

// DocEndKey is the GGUF metadata key orchmind writes when converting a
// llama2.c checkpoint: its value "bos" says the model ends documents with
// BOS (see DocEnd).
const DocEndKey = "orchmind.document_end"

// Load reads a base model (GGUF, Hugging Face folder or llama2.c
// checkpoint) held as typ (model.AsStored keeps the stored types) and its
// tokenizer: tokPath when given, else the GGUF file's own vocabulary, else
// tok<vocab>.bin or tokenizer.bin beside the model.
func Load(path, tokPath string, typ quant.Type) (*Base, error) {
	if path == "" {
		return nil, fmt.Errorf("no base model given: pass the path of a .gguf file, a Hugging Face model folder or a llama2.c checkpoint (.bin)")
	}
	m, gf, err := model.Load(path, typ)
	if err != nil {
		return nil, fmt.Errorf("load base model %s: %w", path, err)
	}
	var tok *tokenizer.Llama2C
	docEnd := gf == nil // llama2.c checkpoints end documents with BOS
	switch {
	case tokPath != "":
		tok, err = tokenizer.LoadLlama2C(tokPath, m.Vocab)
	case gf != nil && gf.Metadata["tokenizer.ggml.model"] == "llama":
		tok, err = ggufTokenizer(gf)
		docEnd = gf.Metadata[DocEndKey] == "bos"
	default:
		if tokPath = FindTokenizer(path, m.Vocab); tokPath == "" {
			return nil, fmt.Errorf("%w for %s: pass --tokenizer PATH (a llama2.c tokenizer.bin; Hugging Face tokenizer.json is not supported yet)", ErrNoTokenizer, path)
		}
		tok, err = tokenizer.LoadLlama2C(tokPath, m.Vocab)
	}
	if err != nil {
		return nil, fmt.Errorf("load tokenizer for %s: %w", path, err)
	}
	if tok.VocabSize() != m.Vocab {
		return nil, fmt.Errorf("the tokenizer has %d tokens but the model %d: pass the model's own tokenizer", tok.VocabSize(), m.Vocab)
	}
	if typ == model.AsStored {
		typ = m.Layers[0].Wq.Type
	}
	b := &Base{Path: path, Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), Model: m, Tok: tok,
		Train: tok, Type: typ, Fingerprint: model.Fingerprint(m), ShapeID: model.ShapeID(m)}
	if docEnd {
		b.Train = DocEnd{tok}
	}
	return b, nil
}

func ggufTokenizer(f *gguf.File) (*tokenizer.Llama2C, error) {
	toks, _ := f.Metadata["tokenizer.ggml.tokens"].([]any)
	scores, _ := f.Metadata["tokenizer.ggml.scores"].([]any)
	if len(toks) == 0 || len(toks) != len(scores) {
		return nil, fmt.Errorf("the GGUF file's tokenizer has %d tokens and %d scores", len(toks), len(scores))
	}
	ts, ss := make([]string, len(toks)), make([]float32, len(toks))
	for i := range toks {
		t, ok1 := toks[i].(string)
		sc, ok2 := scores[i].(float32)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("the GGUF file's token %d is malformed", i)
		}
		ts[i], ss[i] = t, sc
	}
	return tokenizer.FromSPMVocab(ts, ss)
}

// FindTokenizer looks beside the model for the llama2.c tokenizer files.
func FindTokenizer(modelPath string, vocab int) string {
	dir := filepath.Dir(modelPath)
	for _, name := range []string{fmt.Sprintf("tok%d.bin", vocab), "tokenizer.bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// DocEnd wraps a llama2.c tokenizer for training: llama2.c models were
// pretrained with BOS between documents and never saw EOS (run.c stops on
// BOS), so the end of a training example is marked with BOS.
type DocEnd struct{ *tokenizer.Llama2C }

// EOS is BOS (see DocEnd).
func (d DocEnd) EOS() int { return d.BOS() }

// Encode encodes text, ending it with BOS when addEOS is set.
func (d DocEnd) Encode(text string, addBOS, addEOS bool) []int {
	ids := d.Llama2C.Encode(text, addBOS, false)
	if addEOS {
		ids = append(ids, d.BOS())
	}
	return ids
}

// ByteTokenizer is a tokenizer of raw bytes (id = byte+3; 1 BOS, 2 EOS) for
// random bases. Its vocabulary is 259.
type ByteTokenizer struct{}

// ByteVocab is the vocabulary size of ByteTokenizer.
const ByteVocab = 259

// Encode maps each byte to byte+3.
func (ByteTokenizer) Encode(s string, bos, eos bool) []int {
	ids := make([]int, 0, len(s)+2)
	if bos {
		ids = append(ids, 1)
	}
	for _, b := range []byte(s) {
		ids = append(ids, int(b)+3)
	}
	if eos {
		ids = append(ids, 2)
	}
	return ids
}

// Piece is the byte of id ("" for control ids).
func (ByteTokenizer) Piece(_, id int) string {
	if id < 3 || id >= ByteVocab {
		return ""
	}
	return string([]byte{byte(id - 3)})
}

// BOS is 1.
func (ByteTokenizer) BOS() int { return 1 }

// EOS is 2.
func (ByteTokenizer) EOS() int { return 2 }

// Random builds a base of config c with seeded random weights held as typ
// and a ByteTokenizer (c.Vocab is set to ByteVocab). Its fingerprint is
// derived from the seed and shape, so two random bases with different seeds
// are different bases.
func Random(c model.Config, typ quant.Type, seed uint64) (*Base, error) {
	c.Vocab = ByteVocab
	if c.NormEps == 0 {
		c.NormEps = 1e-5
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	m, err := model.Random(c, typ, seed)
	if err != nil {
		return nil, fmt.Errorf("random base: %w", err)
	}
	return &Base{Name: fmt.Sprintf("random-%d", seed), Model: m, Tok: ByteTokenizer{}, Train: ByteTokenizer{}, Type: typ,
		Fingerprint: model.Fingerprint(m), ShapeID: model.ShapeID(m)}, nil
}
