package base

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"orchmind/engine/chat"
	"orchmind/engine/gguf"
	"orchmind/engine/model"
	"orchmind/engine/tokenizer"
)

// vocabSizer is what Load checks of every tokenizer.
type vocabSizer interface {
	model.Tokenizer
	VocabSize() int
}

// loadTokenizer finds the tokenizer of the model at path: tokPath when
// given (a Hugging Face tokenizer.json, a SentencePiece tokenizer.model or
// a llama2.c tokenizer.bin), else the GGUF file's own vocabulary, else the
// files of a Hugging Face folder, else llama2.c files beside the model.
// docEnd reports a llama2.c-style model that ends documents with BOS.
func loadTokenizer(path, tokPath string, m *model.Model, gf *gguf.File) (tok vocabSizer, docEnd bool, err error) {
	docEnd = gf == nil && !isDir(path) // llama2.c checkpoints end documents with BOS
	if tokPath != "" {
		tok, err = loadTokenizerFile(tokPath, m.Vocab)
		return tok, docEnd, err
	}
	if gf != nil {
		switch kind, _ := gf.String("tokenizer.ggml.model"); kind {
		case "llama":
			t, err := ggufSPM(gf)
			return t, gf.Metadata[DocEndKey] == "bos", err
		case "gpt2":
			t, err := ggufBPE(gf)
			return t, false, err
		case "":
		default:
			return nil, false, fmt.Errorf("the GGUF file's tokenizer is of type %q; orchmind reads llama (SentencePiece) and gpt2 (byte-level BPE) tokenizers", kind)
		}
	}
	if isDir(path) {
		// A SentencePiece tokenizer.model comes first when it reads (Llama
		// 2, Mistral, Gemma ship it beside a byte_fallback tokenizer.json
		// that gives the same ids; it is what llama.cpp converts and what a
		// GGUF export can write). Otherwise tokenizer.json.
		if p := filepath.Join(path, "tokenizer.model"); isFile(p) {
			if t, err := tokenizer.LoadSentencePieceModel(p); err == nil {
				return t, false, nil
			} else if !isFile(filepath.Join(path, "tokenizer.json")) {
				return nil, false, err
			}
		}
		if p := filepath.Join(path, "tokenizer.json"); isFile(p) {
			tok, err = loadTokenizerFile(p, m.Vocab)
			return tok, false, err
		}
	}
	if tokPath = FindTokenizer(path, m.Vocab); tokPath == "" {
		return nil, false, fmt.Errorf("%w for %s: pass --tokenizer PATH (the model's tokenizer.json, tokenizer.model or llama2.c tokenizer.bin)", ErrNoTokenizer, path)
	}
	tok, err = tokenizer.LoadLlama2C(tokPath, m.Vocab)
	return tok, docEnd, err
}

// loadTokenizerFile reads a tokenizer file by its kind.
func loadTokenizerFile(p string, vocab int) (vocabSizer, error) {
	switch {
	case strings.HasSuffix(p, ".json"):
		t, err := tokenizer.LoadHFTokenizerJSON(p)
		if err != nil {
			return nil, err
		}
		return NewBPETokenizer(t), nil
	case strings.HasSuffix(p, ".model"):
		return tokenizer.LoadSentencePieceModel(p)
	}
	return tokenizer.LoadLlama2C(p, vocab)
}

// ggufSPM builds the SentencePiece-style vocabulary of a GGUF file
// (tokenizer.ggml.model "llama": Llama 2, Mistral, Gemma): tokens, scores,
// token types, BOS/EOS ids (1 and 2 when absent) and add_space_prefix
// (absent: true, except for Gemma, which llama.cpp converts with false).
func ggufSPM(f *gguf.File) (*tokenizer.Llama2C, error) {
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
	var types []int32
	if raw, ok := f.Metadata["tokenizer.ggml.token_type"].([]any); ok {
		if len(raw) != len(toks) {
			return nil, fmt.Errorf("the GGUF file's tokenizer has %d tokens and %d token types", len(toks), len(raw))
		}
		types = make([]int32, len(raw))
		for i, v := range raw {
			n, ok := v.(int32)
			if !ok {
				return nil, fmt.Errorf("the GGUF file's token type %d is not an int32", i)
			}
			types[i] = n
		}
	}
	id := func(key string, def int) int {
		if v, ok := f.Uint(key); ok && v < uint64(len(toks)) {
			return int(v)
		}
		return def
	}
	arch, _ := f.String("general.architecture")
	prefix := !strings.HasPrefix(arch, "gemma")
	if b, ok := f.Metadata["tokenizer.ggml.add_space_prefix"].(bool); ok {
		prefix = b
	}
	return tokenizer.NewSPM(ts, ss, types, id("tokenizer.ggml.bos_token_id", 1), id("tokenizer.ggml.eos_token_id", 2), prefix)
}

// ggufBPE builds the byte-level BPE of a GGUF file (tokenizer.ggml.model
// "gpt2": tokens, merges, token types, pre, special ids).
func ggufBPE(f *gguf.File) (*BPETokenizer, error) {
	strs := func(key string) ([]string, error) {
		raw, _ := f.Metadata[key].([]any)
		out := make([]string, len(raw))
		for i, v := range raw {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("the GGUF file's %s entry %d is not a string", key, i)
			}
			out[i] = s
		}
		return out, nil
	}
	toks, err := strs("tokenizer.ggml.tokens")
	if err != nil {
		return nil, err
	}
	merges, err := strs("tokenizer.ggml.merges")
	if err != nil {
		return nil, err
	}
	var types []int32
	if raw, ok := f.Metadata["tokenizer.ggml.token_type"].([]any); ok {
		types = make([]int32, len(raw))
		for i, v := range raw {
			n, ok := v.(int32)
			if !ok {
				return nil, fmt.Errorf("the GGUF file's token type %d is not an int32", i)
			}
			types[i] = n
		}
	}
	id := func(key string) int {
		if v, ok := f.Uint(key); ok && v < uint64(len(toks)) {
			return int(v)
		}
		return -1
	}
	pre, _ := f.String("tokenizer.ggml.pre")
	t, err := tokenizer.NewBPE(toks, merges, types, id("tokenizer.ggml.bos_token_id"), id("tokenizer.ggml.eos_token_id"), pre)
	if err != nil {
		return nil, err
	}
	addBOS := pre == "llama-bpe" // llama.cpp's default when the file does not say
	if b, ok := f.Metadata["tokenizer.ggml.add_bos_token"].(bool); ok {
		addBOS = b
	}
	add, _ := f.Metadata["tokenizer.ggml.add_eos_token"].(bool)
	t.SetAddSpecial(addBOS, add)
	return NewBPETokenizer(t), nil
}

// BPETokenizer is a byte-level BPE as a base model's tokenizer: it adds BOS
// only when the model was trained with it, and it knows the end-of-turn
// tokens of chat models, where generation stops.
type BPETokenizer struct {
	*tokenizer.BPE
	eog map[int]bool
}

// endOfTurn are the texts of the control tokens chat models end a turn or
// a text with.
var endOfTurn = []string{"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|end|>", "<end_of_turn>", "</s>"}

// NewBPETokenizer wraps t as a base model's tokenizer.
func NewBPETokenizer(t *tokenizer.BPE) *BPETokenizer {
	b := &BPETokenizer{BPE: t, eog: map[int]bool{}}
	if t.EOS() >= 0 {
		b.eog[t.EOS()] = true
	}
	for _, s := range endOfTurn {
		if id, ok := t.ID(s); ok && t.Type(id) == tokenizer.TokenControl {
			b.eog[id] = true
		}
	}
	return b
}

// Encode tokenizes text; BOS comes first only when asked for and the model
// expects it.
func (b *BPETokenizer) Encode(text string, addBOS, addEOS bool) []int {
	return b.BPE.Encode(text, addBOS && b.AddBOS(), addEOS)
}

// IsEOG reports whether generation ends at id (EOS or an end-of-turn token).
func (b *BPETokenizer) IsEOG(id int) bool { return b.eog[id] }

// VocabOf returns the vocabulary of a base's tokenizer for writing into a
// GGUF file of a model with vocab rows (rows beyond the tokenizer's tokens
// become unused placeholder tokens, as llama.cpp's converter writes them).
func VocabOf(tok model.Tokenizer, vocab int) (*model.Vocab, error) {
	if d, ok := tok.(DocEnd); ok {
		tok = d.Llama2C
	}
	var v *model.Vocab
	switch t := tok.(type) {
	case *tokenizer.Llama2C:
		ts, ss, ty := t.GGUFVocab()
		prefix := t.AddSpacePrefix()
		v = &model.Vocab{Tokens: ts, Scores: ss, Types: ty, BOS: t.BOS(), EOS: t.EOS(), SpacePrefix: &prefix}
	case *BPETokenizer:
		ts, ty, merges, pre, err := t.GGUFVocab()
		if err != nil {
			return nil, err
		}
		v = &model.Vocab{Model: "gpt2", Tokens: ts, Types: ty, Merges: merges, Pre: pre, BOS: t.BOS(), EOS: t.EOS(), NoBOS: !t.AddBOS()}
	default:
		return nil, fmt.Errorf("the tokenizer %T cannot be written into a GGUF file", tok)
	}
	if len(v.Tokens) > vocab && len(v.Types) == len(v.Tokens) {
		// Special tokens past the embedding's rows (the multimodal tokens
		// of Ollama's gemma3 files) are dropped, as llama.cpp does: text
		// never produces them and the model has no row for them.
		extra := true
		for i, ty := range v.Types[vocab:] {
			tk := v.Tokens[vocab+i]
			extra = extra && (ty == tokenizer.TokenControl || ty == tokenizer.TokenUserDefined || (strings.HasPrefix(tk, "<") && strings.HasSuffix(tk, ">")))
		}
		if extra {
			v.Tokens, v.Types = v.Tokens[:vocab], v.Types[:vocab]
			if v.Scores != nil {
				v.Scores = v.Scores[:vocab]
			}
		}
	}
	if len(v.Tokens) > vocab {
		return nil, fmt.Errorf("the tokenizer has %d tokens, more than the model's %d rows", len(v.Tokens), vocab)
	}
	for i := len(v.Tokens); i < vocab; i++ {
		v.Tokens = append(v.Tokens, fmt.Sprintf("[PAD%d]", i))
		v.Types = append(v.Types, tokenizer.TokenUnused)
		if v.Scores != nil {
			v.Scores = append(v.Scores, 0)
		}
	}
	return v, nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// chatTemplate reads the model's chat template: GGUF tokenizer.chat_template,
// or chat_template of a Hugging Face folder's tokenizer_config.json (a
// string, or a list of named templates of which "default" is taken).
func chatTemplate(path string, gf *gguf.File) (string, error) {
	if gf != nil {
		s, _ := gf.String("tokenizer.chat_template")
		return s, nil
	}
	p := filepath.Join(path, "tokenizer_config.json")
	if !isDir(path) || !isFile(p) {
		return "", nil
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	var cfg struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return "", fmt.Errorf("%s is not valid JSON (%w); fix or delete it", p, err)
	}
	if len(cfg.ChatTemplate) == 0 || string(cfg.ChatTemplate) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(cfg.ChatTemplate, &s) == nil {
		return s, nil
	}
	var named []struct{ Name, Template string }
	if err := json.Unmarshal(cfg.ChatTemplate, &named); err != nil {
		return "", fmt.Errorf("%s: chat_template is neither a string nor a list of {name, template}", p)
	}
	for _, t := range named {
		if t.Name == "default" {
			return t.Template, nil
		}
	}
	return "", nil
}

// Template picks the prompt template for training and chat: the one named
// (see chat.TemplateNames) when name is not empty, else the one a baked-in
// adapter was trained with (PromptTemplate), else the one the model's
// chat template shows (plain for a base model), or an error saying how to
// choose one when it is not recognised.
func (b *Base) Template(name string) (chat.Template, error) {
	if strings.TrimSpace(name) != "" {
		return chat.TemplateByName(name)
	}
	if b.PromptTemplate != "" {
		return chat.TemplateByName(b.PromptTemplate)
	}
	return chat.DetectTemplate(b.ChatTemplate)
}
