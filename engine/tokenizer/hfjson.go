package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxTokenizerFile bounds the size of the tokenizer files read here (real
// ones are a few MB; Llama 3's tokenizer.json is 9 MB).
const maxTokenizerFile = 256 << 20

func readTokenizerFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w; the model's tokenizer file must sit where its path says (for a Hugging Face model, tokenizer.json in the model folder)", err)
	}
	if st.Size() > maxTokenizerFile {
		return nil, fmt.Errorf("tokenizer: %s is %d bytes, more than the %d a tokenizer file can be; is it the right file?", path, st.Size(), maxTokenizerFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return b, nil
}

// hfTokenizer is the part of a Hugging Face tokenizer.json read here.
type hfTokenizer struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    *hfNormalizer   `json:"normalizer"`
	PreTokenizer  *hfPreTokenizer `json:"pre_tokenizer"`
	PostProcessor *hfPostProc     `json:"post_processor"`
	Decoder       *hfDecoder      `json:"decoder"`
	Model         struct {
		Type         string          `json:"type"`
		Vocab        map[string]int  `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		IgnoreMerges bool            `json:"ignore_merges"`
		ByteFallback bool            `json:"byte_fallback"`
		FuseUnk      bool            `json:"fuse_unk"`
		UnkToken     *string         `json:"unk_token"`
		Prefix       *string         `json:"continuing_subword_prefix"`
		Suffix       *string         `json:"end_of_word_suffix"`
	} `json:"model"`
}

type hfNormalizer struct {
	Type        string         `json:"type"`
	Normalizers []hfNormalizer `json:"normalizers"`
	Pattern     *hfPattern     `json:"pattern"`
	Content     string         `json:"content"`
	Prepend     string         `json:"prepend"`
}

type hfDecoder struct {
	Type     string      `json:"type"`
	Decoders []hfDecoder `json:"decoders"`
	Content  string      `json:"content"`
	Start    int         `json:"start"`
}

type hfPreTokenizer struct {
	Type           string           `json:"type"`
	AddPrefixSpace bool             `json:"add_prefix_space"`
	UseRegex       *bool            `json:"use_regex"` // absent means true
	Individual     bool             `json:"individual_digits"`
	Pattern        *hfPattern       `json:"pattern"`
	Behavior       string           `json:"behavior"`
	Invert         bool             `json:"invert"`
	PreTokenizers  []hfPreTokenizer `json:"pretokenizers"`
}

type hfPattern struct {
	Regex  *string `json:"Regex"`
	String *string `json:"String"`
}

type hfPostProc struct {
	Type       string       `json:"type"`
	Processors []hfPostProc `json:"processors"`
	Single     []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
		Sequence *struct {
			ID string `json:"id"`
		} `json:"Sequence"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
}

// LoadHFTokenizerJSON reads a Hugging Face tokenizer.json holding a
// byte-level BPE model (GPT-2, SmolLM, Llama 3, Qwen2, ...) or a
// SentencePiece-style BPE with byte_fallback (Llama 2, Mistral, Gemma).
// Every added token is matched in the text as a whole string. BOS/EOS and
// whether to add them come from tokenizer_config.json beside it when
// present, else from the post-processor's template.
func LoadHFTokenizerJSON(path string) (*BPE, error) {
	raw, err := readTokenizerFile(path)
	if err != nil {
		return nil, err
	}
	var hf hfTokenizer
	if err := json.Unmarshal(raw, &hf); err != nil {
		return nil, fmt.Errorf("tokenizer: %s is not valid tokenizer.json (%w); re-download it from the model's repository", path, err)
	}
	t, err := hf.build()
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	cfgPath := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	if err := applyTokenizerConfig(t, cfgPath, hf.template()); err != nil {
		return nil, err
	}
	return t, nil
}

func (hf *hfTokenizer) build() (*BPE, error) {
	if hf.Model.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer: the model type is %q; only byte-level \"BPE\" tokenizer.json files are supported (SentencePiece models load from tokenizer.model or GGUF)", hf.Model.Type)
	}
	if (hf.Model.Prefix != nil && *hf.Model.Prefix != "") || (hf.Model.Suffix != nil && *hf.Model.Suffix != "") {
		return nil, errors.New("tokenizer: continuing_subword_prefix / end_of_word_suffix BPE models are not supported; only GPT-2-style byte-level BPE is")
	}
	merges, err := parseHFMerges(hf.Model.Merges)
	if err != nil {
		return nil, err
	}
	n := 0
	for s, id := range hf.Model.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer: vocabulary entry %q has the negative id %d", s, id)
		}
		n = max(n, id+1)
	}
	for _, a := range hf.AddedTokens {
		if a.ID < 0 || a.Content == "" {
			return nil, fmt.Errorf("tokenizer: added token %q has id %d; ids must be >= 0 and tokens non-empty", a.Content, a.ID)
		}
		n = max(n, a.ID+1)
	}
	if n > 1<<24 {
		return nil, fmt.Errorf("tokenizer: token id %d is implausibly large for a vocabulary", n-1)
	}
	// Ids beyond the tokens defined leave unused slots; a few are normal
	// (padding to a round size), a vocabulary of mostly holes is damage.
	if defined := len(hf.Model.Vocab) + len(hf.AddedTokens); n > 2*defined+1024 {
		return nil, fmt.Errorf("tokenizer: token ids go up to %d but only %d tokens are defined; the vocabulary is damaged", n-1, defined)
	}
	tokens := make([]string, n)
	types := make([]int32, n)
	filled := make([]bool, n)
	for s, id := range hf.Model.Vocab {
		if filled[id] {
			return nil, fmt.Errorf("tokenizer: id %d is given to both %q and %q in the vocabulary", id, tokens[id], s)
		}
		tokens[id], types[id], filled[id] = s, TokenNormal, true
	}
	for _, a := range hf.AddedTokens {
		typ := int32(TokenUserDefined)
		if a.Special {
			typ = TokenControl
		}
		tokens[a.ID], types[a.ID], filled[a.ID] = a.Content, typ, true
	}
	for id := range tokens {
		if !filled[id] {
			tokens[id], types[id] = fmt.Sprintf("<orchmind:unused:%d>", id), TokenUnused
		}
	}
	if hf.Model.ByteFallback {
		return hf.buildFallback(tokens, merges, types)
	}
	pre, prefixSpace, err := hf.preTokenizer()
	if err != nil {
		return nil, err
	}
	nfc, err := hf.normalizer()
	if err != nil {
		return nil, err
	}
	t, err := newBPE(tokens, merges, types, -1, -1)
	if err != nil {
		return nil, err
	}
	t.pre, t.addPrefixSpace, t.nfc = pre, prefixSpace, nfc
	t.ignoreMerges = hf.Model.IgnoreMerges
	return t, nil
}

// buildFallback builds a BPE with byte_fallback (Llama 2, Mistral, Gemma):
// its normalizer writes spaces as "▁" (Replace, with a Prepend("▁")
// before it in Llama 2 and Mistral), there is no pre-tokenizer split (or
// Gemma's Split on " ", which finds none once spaces are "▁"), and the
// decoder turns "▁" back into spaces, <0xNN> into bytes and, with a
// Strip decoder, drops the leading space that Prepend added.
func (hf *hfTokenizer) buildFallback(tokens []string, merges [][2]string, types []int32) (*BPE, error) {
	if p := hf.PreTokenizer; p != nil {
		noOp := p.Type == "Split" && p.Pattern != nil && p.Pattern.String != nil && *p.Pattern.String == " " && !p.Invert
		if !noOp {
			desc, _ := json.Marshal(p)
			return nil, fmt.Errorf("tokenizer: the pre_tokenizer %s of this byte_fallback BPE is not supported; orchmind reads the SentencePiece-style tokenizer.json of Llama 2, Mistral and Gemma (normalizer Replace \" \"→\"▁\", no pre-tokenizer); load the model's tokenizer.model or GGUF instead", desc)
		}
	}
	prepend, err := hf.fallbackNormalizer()
	if err != nil {
		return nil, err
	}
	t, err := newBPEMode(tokens, merges, types, -1, -1, true)
	if err != nil {
		return nil, err
	}
	t.pre = preTokenizer{kind: preNone}
	t.prependMeta = prepend
	t.ignoreMerges = hf.Model.IgnoreMerges
	t.fuseUnk = hf.Model.FuseUnk
	if u := hf.Model.UnkToken; u != nil && *u != "" {
		id, ok := t.ids[*u]
		if !ok {
			return nil, fmt.Errorf("tokenizer: unk_token %q is not in the vocabulary", *u)
		}
		t.unk = id
	}
	var walk func(d *hfDecoder)
	walk = func(d *hfDecoder) {
		if d == nil {
			return
		}
		for i := range d.Decoders {
			walk(&d.Decoders[i])
		}
		if d.Type == "Strip" && d.Content == " " && d.Start > 0 {
			t.stripLeading = true
		}
	}
	walk(hf.Decoder)
	return t, nil
}

// fallbackNormalizer accepts the normalizers of SentencePiece-style
// tokenizer.json files: Replace(" " → "▁"), alone (Gemma) or after
// Prepend("▁") (Llama 2, Mistral). It reports whether "▁" is prepended.
func (hf *hfTokenizer) fallbackNormalizer() (prepend bool, err error) {
	n := hf.Normalizer
	var steps []hfNormalizer
	switch {
	case n == nil:
	case n.Type == "Sequence":
		steps = n.Normalizers
	default:
		steps = []hfNormalizer{*n}
	}
	replaced := false
	for _, st := range steps {
		switch {
		case st.Type == "Prepend" && st.Prepend == spmSpace && !replaced && !prepend:
			prepend = true
		case st.Type == "Replace" && st.Pattern != nil && st.Pattern.String != nil && *st.Pattern.String == " " && st.Content == spmSpace && !replaced:
			replaced = true
		default:
			desc, _ := json.Marshal(st)
			return false, fmt.Errorf("tokenizer: the normalizer step %s of this byte_fallback BPE is not supported (orchmind knows Prepend(\"▁\") and Replace(\" \"→\"▁\"), as in Llama 2, Mistral and Gemma); load the model's tokenizer.model or GGUF instead", desc)
		}
	}
	if !replaced {
		return false, errors.New("tokenizer: this byte_fallback BPE does not write spaces as \"▁\" (normalizer Replace \" \"→\"▁\"), so it is not a SentencePiece-style tokenizer orchmind knows; load the model's tokenizer.model or GGUF instead")
	}
	return prepend, nil
}

// parseHFMerges reads model.merges as ["a b", ...] or [["a","b"], ...].
func parseHFMerges(raw json.RawMessage) ([][2]string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		out := make([][2]string, len(strs))
		for i, m := range strs {
			a, b, ok := strings.Cut(m, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return nil, fmt.Errorf("tokenizer: merge %d is %q, not two tokens separated by one space", i, m)
			}
			out[i] = [2]string{a, b}
		}
		return out, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(raw, &pairs); err != nil {
		return nil, fmt.Errorf("tokenizer: model.merges is neither a list of \"a b\" strings nor a list of [\"a\", \"b\"] pairs: %w", err)
	}
	out := make([][2]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 || p[0] == "" || p[1] == "" {
			return nil, fmt.Errorf("tokenizer: merge %d is %q, not a pair of two tokens", i, p)
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// preTokenizer recognises the pre-tokenizer configurations of byte-level
// BPE models: ByteLevel with its GPT-2 regex; a Split by a known pattern
// followed by ByteLevel without regex; Digits(individual) followed by
// ByteLevel (SmolLM).
func (hf *hfTokenizer) preTokenizer() (preTokenizer, bool, error) {
	p := hf.PreTokenizer
	if p == nil {
		return preTokenizer{}, false, errors.New("tokenizer: no pre_tokenizer; a byte-level BPE needs a ByteLevel pre-tokenizer")
	}
	useRegex := func(b hfPreTokenizer) bool { return b.UseRegex == nil || *b.UseRegex }
	if p.Type == "ByteLevel" {
		if useRegex(*p) {
			return preTokenizer{kind: preGPT2}, p.AddPrefixSpace, nil
		}
		return preTokenizer{kind: preNone}, p.AddPrefixSpace, nil
	}
	if p.Type == "Sequence" && len(p.PreTokenizers) == 2 && p.PreTokenizers[1].Type == "ByteLevel" {
		first, bl := p.PreTokenizers[0], p.PreTokenizers[1]
		switch {
		case first.Type == "Digits" && first.Individual && useRegex(bl):
			return preTokenizer{kind: preGPT2, isolateDigits: true}, bl.AddPrefixSpace, nil
		case first.Type == "Split" && !useRegex(bl):
			if first.Pattern == nil || first.Pattern.Regex == nil {
				return preTokenizer{}, false, errors.New("tokenizer: the Split pre-tokenizer has no Regex pattern")
			}
			if first.Behavior != "Isolated" || first.Invert {
				return preTokenizer{}, false, fmt.Errorf("tokenizer: Split with behavior %q (invert %v) is not supported; only Isolated splits are", first.Behavior, first.Invert)
			}
			switch *first.Pattern.Regex {
			case PatternGPT2:
				return preTokenizer{kind: preGPT2}, bl.AddPrefixSpace, nil
			case PatternLlama3:
				return preTokenizer{kind: preLlama3}, bl.AddPrefixSpace, nil
			case PatternQwen2:
				return preTokenizer{kind: preLlama3, singleDigits: true}, bl.AddPrefixSpace, nil
			}
			return preTokenizer{}, false, fmt.Errorf("tokenizer: the Split pattern %q is not one orchmind implements (it knows GPT-2's, Llama 3's and Qwen2's); this model's tokenizer is not supported yet", *first.Pattern.Regex)
		}
	}
	desc, _ := json.Marshal(p)
	return preTokenizer{}, false, fmt.Errorf("tokenizer: the pre_tokenizer %s is not a configuration orchmind knows (ByteLevel; Split(GPT-2, Llama 3 or Qwen2 pattern) + ByteLevel; Digits + ByteLevel)", desc)
}

// normalizer accepts no normalizer or NFC (Qwen2).
func (hf *hfTokenizer) normalizer() (bool, error) {
	n := hf.Normalizer
	if n == nil {
		return false, nil
	}
	if n.Type == "Sequence" && len(n.Normalizers) == 0 {
		return false, nil
	}
	if n.Type == "NFC" {
		return true, nil
	}
	return false, fmt.Errorf("tokenizer: the normalizer %q is not supported (only none or NFC)", n.Type)
}

// hfTemplate is what the post-processor adds around a single text.
type hfTemplate struct {
	bos, eos     int
	hasBOS, hasE bool
}

// template finds TemplateProcessing (alone or in a Sequence) and reads the
// special tokens its "single" template puts before and after the text.
func (hf *hfTokenizer) template() hfTemplate {
	var tpl hfTemplate
	var walk func(p *hfPostProc)
	walk = func(p *hfPostProc) {
		if p == nil {
			return
		}
		for i := range p.Processors {
			walk(&p.Processors[i])
		}
		if p.Type != "TemplateProcessing" || len(p.Single) == 0 {
			return
		}
		idOf := func(name string) (int, bool) {
			st, ok := p.SpecialTokens[name]
			if !ok || len(st.IDs) != 1 {
				return 0, false
			}
			return st.IDs[0], true
		}
		if s := p.Single[0].SpecialToken; s != nil {
			tpl.bos, tpl.hasBOS = idOf(s.ID)
		}
		if s := p.Single[len(p.Single)-1].SpecialToken; s != nil && len(p.Single) > 1 {
			tpl.eos, tpl.hasE = idOf(s.ID)
		}
	}
	walk(hf.PostProcessor)
	return tpl
}

// hfConfig is the part of tokenizer_config.json read here.
type hfConfig struct {
	BOS    json.RawMessage `json:"bos_token"`
	EOS    json.RawMessage `json:"eos_token"`
	AddBOS *bool           `json:"add_bos_token"`
	AddEOS *bool           `json:"add_eos_token"`
}

// tokenContent reads a special token given as "text" or {"content": "text"}.
func tokenContent(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", err
	}
	return obj.Content, nil
}

// applyTokenizerConfig sets BOS, EOS and whether to add them: from
// tokenizer_config.json when it exists, else from the template, else
// GPT-2's convention (<|endoftext|> as both, added to nothing).
func applyTokenizerConfig(t *BPE, cfgPath string, tpl hfTemplate) error {
	if tpl.hasBOS {
		t.bos, t.addBOS = tpl.bos, true
	}
	if tpl.hasE {
		t.eos, t.addEOS = tpl.eos, true
	}
	raw, err := readTokenizerFile(cfgPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		raw = nil
	case err != nil:
		return err
	}
	if raw != nil {
		var cfg hfConfig
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return fmt.Errorf("tokenizer: %s is not valid JSON (%w); fix or delete it", cfgPath, err)
		}
		for _, x := range []struct {
			raw json.RawMessage
			dst *int
			nam string
		}{{cfg.BOS, &t.bos, "bos_token"}, {cfg.EOS, &t.eos, "eos_token"}} {
			s, err := tokenContent(x.raw)
			if err != nil {
				return fmt.Errorf("tokenizer: %s: %s is neither a string nor {\"content\": ...}: %w", cfgPath, x.nam, err)
			}
			if s == "" {
				continue
			}
			id, ok := t.ids[s]
			if !ok {
				return fmt.Errorf("tokenizer: %s names %s %q, which is not in the vocabulary of tokenizer.json beside it; the two files do not belong together", cfgPath, x.nam, s)
			}
			*x.dst = id
		}
		if cfg.AddBOS != nil {
			t.addBOS = *cfg.AddBOS
		}
		if cfg.AddEOS != nil {
			t.addEOS = *cfg.AddEOS
		}
	}
	if id, ok := t.ids["<|endoftext|>"]; ok && t.Type(id) == TokenControl {
		if t.bos < 0 && raw == nil {
			t.bos = id
		}
		if t.eos < 0 {
			t.eos = id
		}
	}
	if t.bos >= len(t.tokens) || t.eos >= len(t.tokens) {
		return fmt.Errorf("tokenizer: BOS %d or EOS %d is outside the vocabulary of %d tokens", t.bos, t.eos, len(t.tokens))
	}
	return nil
}

// LoadGPT2Files reads OpenAI's GPT-2 tokenizer layout: encoder.json (token
// to id) and vocab.bpe (a "#version" line, then one "left right" merge per
// line in priority order). <|endoftext|> is BOS and EOS, as in GPT-2.
func LoadGPT2Files(encoderJSON, vocabBPE string) (*BPE, error) {
	raw, err := readTokenizerFile(encoderJSON)
	if err != nil {
		return nil, err
	}
	var enc map[string]int
	if err := json.Unmarshal(raw, &enc); err != nil {
		return nil, fmt.Errorf("tokenizer: %s is not a JSON object of token ids (%w); it should be GPT-2's encoder.json", encoderJSON, err)
	}
	tokens := make([]string, len(enc))
	filled := make([]bool, len(enc))
	for s, id := range enc {
		if id < 0 || id >= len(enc) || filled[id] {
			return nil, fmt.Errorf("tokenizer: %s gives %q the id %d; ids must be 0..%d, each used once", encoderJSON, s, id, len(enc)-1)
		}
		tokens[id], filled[id] = s, true
	}
	mraw, err := readTokenizerFile(vocabBPE)
	if err != nil {
		return nil, err
	}
	var merges [][2]string
	sc := bufio.NewScanner(bytes.NewReader(mraw))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimRight(sc.Text(), "\r")
		if l == "" || (line == 1 && strings.HasPrefix(l, "#version")) {
			continue
		}
		a, b, ok := strings.Cut(l, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("tokenizer: %s line %d is %q, not a merge \"left right\"; it should be GPT-2's vocab.bpe", vocabBPE, line, l)
		}
		merges = append(merges, [2]string{a, b})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: reading %s: %w", vocabBPE, err)
	}
	types := make([]int32, len(tokens))
	for i := range types {
		types[i] = TokenNormal
	}
	eot := -1
	if id, ok := enc["<|endoftext|>"]; ok {
		types[id], eot = TokenControl, id
	}
	t, err := newBPE(tokens, merges, types, eot, eot)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s and %s)", err, encoderJSON, vocabBPE)
	}
	return t, nil
}
