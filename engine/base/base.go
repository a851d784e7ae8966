package base

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"orchmind/engine/hub"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tokenizer"
	"orchmind/internal/appdir"
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
	Train tokenizer.Encoder
	Type  quant.Type
	// ChatTemplate is the model's chat template as its files give it (GGUF
	// tokenizer.chat_template, or chat_template in a Hugging Face folder's
	// tokenizer_config.json); "" for a base model.
	ChatTemplate string
	// PromptTemplate names the prompt template (engine/chat) of an adapter
	// baked into this GGUF (PromptTemplateKey, written by export gguf);
	// "" otherwise. Template prefers it to ChatTemplate.
	PromptTemplate string
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

// PromptTemplateKey is the GGUF metadata key that records, in a model with
// an adapter baked in, the name of the prompt template (engine/chat) the
// adapter was trained with.
const PromptTemplateKey = "orchmind.prompt_template"

// Load reads a base model (GGUF, Hugging Face folder or llama2.c
// checkpoint) held as typ (model.AsStored keeps the stored types) and its
// tokenizer: tokPath when given (tokenizer.json, tokenizer.model or a
// llama2.c tokenizer.bin), else the GGUF file's own vocabulary (SentencePiece
// or byte-level BPE), else the Hugging Face folder's tokenizer.json or
// tokenizer.model, else tok<vocab>.bin or tokenizer.bin beside the model.
//
// path may also name a model by ollama:NAME[:TAG] or hf:ORG/REPO[:QUANT]:
// it is then found in orchmind's models folder, Ollama's store or the
// Hugging Face cache (see hub.Hub.Resolve) and loaded where it lies (an
// Ollama blob is mapped in place, not copied).
func Load(path, tokPath string, typ quant.Type) (*Base, error) {
	if path == "" {
		return nil, fmt.Errorf("no base model given: pass ollama:NAME, hf:ORG/REPO, or the path of a .gguf file, a Hugging Face model folder or a llama2.c checkpoint (.bin)")
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if hub.IsSpec(path) {
		r, err := hub.FromEnv(appdir.Models()).Resolve(path)
		if err != nil {
			return nil, err
		}
		path, name = r.Path, r.Name
	}
	m, gf, err := model.Load(path, typ)
	if err != nil {
		return nil, fmt.Errorf("load base model %s: %w", path, err)
	}
	tok, docEnd, err := loadTokenizer(path, tokPath, m, gf)
	if err != nil {
		if errors.Is(err, ErrNoTokenizer) {
			return nil, err
		}
		return nil, fmt.Errorf("load tokenizer for %s: %w", path, err)
	}
	bpe, _ := tok.(*BPETokenizer)
	if bpe != nil && bpe.VocabSize() > m.Vocab {
		// Added tokens beyond the embedding rows (Gemma 3 1B's
		// <image_soft_token>) are dropped.
		if err := bpe.DropTokensFrom(m.Vocab); err != nil {
			return nil, fmt.Errorf("load tokenizer for %s: %w", path, err)
		}
	}
	// Models often have a few more embedding rows than tokens (padded to a
	// multiple: Gemma 3 4B has 262,208 rows for 262,144 tokens; byte-level
	// BPE models more).
	// Ollama's gemma3 files list multimodal tokens past the rows.
	ollamaGemma3 := m.Arch == model.ArchGemma3 && gf != nil
	if n := tok.VocabSize(); (n > m.Vocab && !ollamaGemma3) || (bpe == nil && m.Vocab-n > maxPadRows) {
		return nil, fmt.Errorf("the tokenizer has %d tokens but the model %d: pass the model's own tokenizer", n, m.Vocab)
	}
	if typ == model.AsStored {
		typ = m.Layers[0].Wq.Type
	}
	b := &Base{Path: path, Name: name, Model: m, Tok: tok,
		Train: tok, Type: typ, Fingerprint: model.Fingerprint(m), ShapeID: model.ShapeID(m)}
	b.ChatTemplate, err = chatTemplate(path, gf)
	if err != nil {
		return nil, err
	}
	if gf != nil {
		b.PromptTemplate, _ = gf.String(PromptTemplateKey)
	}
	if l, ok := tok.(*tokenizer.Llama2C); ok && docEnd {
		b.Train = DocEnd{l}
	}
	return b, nil
}

// maxPadRows is how many more embedding rows than SentencePiece tokens a
// model may have (padding rows no token maps to).
const maxPadRows = 1024

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
