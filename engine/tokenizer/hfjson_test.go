package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// gpt2Golden is testdata/bpe/gpt2_golden.json, written by make_golden.py
// with the algorithm of OpenAI's gpt-2 encoder.py and Python's regex module.
type gpt2Golden struct {
	Generator string `json:"generator"`
	VocabSize int    `json:"vocab_size"`
	Merges    int    `json:"merges"`
	Cases     []struct {
		Text      string              `json:"text"`
		IDs       []int               `json:"ids"`
		PreTokens map[string][]string `json:"pretokens"`
	} `json:"cases"`
}

func readGolden(t *testing.T) gpt2Golden {
	t.Helper()
	raw, err := os.ReadFile("testdata/bpe/gpt2_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g gpt2Golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 20 {
		t.Fatalf("gpt2_golden.json has %d cases, want >= 20", len(g.Cases))
	}
	return g
}

// TestGoldenPreTokens compares the hand-written splits with Python's regex
// module running the original patterns, on the golden texts.
func TestGoldenPreTokens(t *testing.T) {
	g := readGolden(t)
	for _, c := range g.Cases {
		if len(c.PreTokens) != 4 {
			t.Fatalf("case %q has pre-tokens for %d families, want 4", c.Text, len(c.PreTokens))
		}
		for pre, want := range c.PreTokens {
			got, err := PreTokenize(pre, c.Text)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("PreTokenize(%s, %q)\n got %q\nwant %q", pre, c.Text, got, want)
			}
		}
	}
}

// gpt2Dir is where GPT-2's encoder.json and vocab.bpe are, from
// $ORCHMIND_GPT2_VOCAB; the test skips without them. They are not
// committed: OpenAI's release (and copies in many public repositories)
// has them; vocab.bpe's sha256 is 1ce16647…7726adc5.
func gpt2Dir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("ORCHMIND_GPT2_VOCAB")
	if d == "" {
		t.Skip("skipping: set ORCHMIND_GPT2_VOCAB to a folder holding GPT-2's encoder.json and vocab.bpe to run the GPT-2 golden test")
	}
	for _, f := range []string{"encoder.json", "vocab.bpe"} {
		if _, err := os.Stat(filepath.Join(d, f)); err != nil {
			t.Skipf("skipping: ORCHMIND_GPT2_VOCAB=%s has no %s", d, f)
		}
	}
	return d
}

func checkGolden(t *testing.T, tok *BPE, g gpt2Golden) {
	t.Helper()
	if tok.VocabSize() != g.VocabSize {
		t.Fatalf("vocabulary of %d tokens, the reference used %d", tok.VocabSize(), g.VocabSize)
	}
	for _, c := range g.Cases {
		got := tok.Encode(c.Text, false, false)
		if !reflect.DeepEqual(got, c.IDs) {
			t.Errorf("Encode(%q)\n got %v\nwant %v (%s)", c.Text, got, c.IDs, g.Generator)
			continue
		}
		if dec := tok.Decode(got); dec != c.Text {
			t.Errorf("Decode(Encode(%q)) = %q", c.Text, dec)
		}
	}
}

// TestGPT2Golden requires the reference's ids exactly with GPT-2's real
// 50,257-token vocabulary.
func TestGPT2Golden(t *testing.T) {
	g := readGolden(t)
	d := gpt2Dir(t)
	tok, err := LoadGPT2Files(filepath.Join(d, "encoder.json"), filepath.Join(d, "vocab.bpe"))
	if err != nil {
		t.Fatal(err)
	}
	eot, ok := tok.ID("<|endoftext|>")
	if !ok || tok.BOS() != eot || tok.EOS() != eot || eot != 50256 {
		t.Fatalf("<|endoftext|> = %d, BOS %d, EOS %d; want 50256 for all", eot, tok.BOS(), tok.EOS())
	}
	checkGolden(t, tok, g)
	if got := tok.Encode("Hello world<|endoftext|>", false, false); !reflect.DeepEqual(got, []int{15496, 995, 50256}) {
		t.Errorf("special token in text: %v", got)
	}
}

// TestGPT2GoldenViaTokenizerJSON writes GPT-2's vocabulary as a Hugging
// Face tokenizer.json (the layout of the gpt2 repository on the Hub, merges
// as pairs) and runs the golden texts through LoadHFTokenizerJSON.
func TestGPT2GoldenViaTokenizerJSON(t *testing.T) {
	g := readGolden(t)
	d := gpt2Dir(t)
	ref, err := LoadGPT2Files(filepath.Join(d, "encoder.json"), filepath.Join(d, "vocab.bpe"))
	if err != nil {
		t.Fatal(err)
	}
	path := writeTokenizerJSON(t, ref, true, map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}, nil)
	tok, err := LoadHFTokenizerJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != 50256 || tok.EOS() != 50256 || tok.AddBOS() {
		t.Errorf("BOS %d EOS %d AddBOS %v; GPT-2 has <|endoftext|> (50256) for both and adds neither", tok.BOS(), tok.EOS(), tok.AddBOS())
	}
	checkGolden(t, tok, g)
}

// writeTokenizerJSON writes tok as a tokenizer.json in a temporary folder
// with the given pre-tokenizer and post-processor.
func writeTokenizerJSON(t testing.TB, tok *BPE, pairs bool, pre, post map[string]any) string {
	t.Helper()
	vocab := map[string]int{}
	var added []map[string]any
	for id, s := range tok.tokens {
		switch tok.types[id] {
		case TokenControl, TokenUserDefined:
			added = append(added, map[string]any{"id": id, "content": s, "special": tok.types[id] == TokenControl})
			if tok.types[id] == TokenUserDefined {
				continue
			}
		}
		vocab[s] = id
	}
	ms := make([][2]string, len(tok.merges))
	for k, m := range tok.merges {
		ms[m.rank] = [2]string{tok.tokens[int(k>>32)], tok.tokens[int(uint32(k))]}
	}
	var merges any = ms
	if !pairs {
		strs := make([]string, len(ms))
		for i, m := range ms {
			strs[i] = m[0] + " " + m[1]
		}
		merges = strs
	}
	doc := map[string]any{
		"version":        "1.0",
		"added_tokens":   added,
		"normalizer":     nil,
		"pre_tokenizer":  pre,
		"post_processor": post,
		"decoder":        map[string]any{"type": "ByteLevel"},
		"model":          map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "byte_fallback": false, "vocab": vocab, "merges": merges},
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func splitThenByteLevel(pattern string) map[string]any {
	return map[string]any{"type": "Sequence", "pretokenizers": []any{
		map[string]any{"type": "Split", "pattern": map[string]any{"Regex": pattern}, "behavior": "Isolated", "invert": false},
		map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
	}}
}

// TestLoadHFTokenizerJSON loads the hand-built vocabulary written as
// tokenizer.json in each pre-tokenizer configuration and both merge
// layouts, and requires the same ids as NewBPE with the matching GGUF name.
func TestLoadHFTokenizerJSON(t *testing.T) {
	text := "I'VE 12345 said:\n\n  the theing, hell<|endoftext|>ação<tool> 7x"
	llamaTemplate := map[string]any{"type": "Sequence", "processors": []any{
		map[string]any{"type": "ByteLevel"},
		map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<|endoftext|>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"special_tokens": map[string]any{"<|endoftext|>": map[string]any{"id": "<|endoftext|>", "ids": []int{tEOT}, "tokens": []string{"<|endoftext|>"}}}},
	}}
	cases := []struct {
		gguf    string
		pre     map[string]any
		post    map[string]any
		addBOS  bool
		ignoreM bool
	}{
		{"gpt2", map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}, nil, false, false},
		{"gpt2", splitThenByteLevel(PatternGPT2), nil, false, false},
		{"llama-bpe", splitThenByteLevel(PatternLlama3), llamaTemplate, true, true},
		{"qwen2", splitThenByteLevel(PatternQwen2), nil, false, false},
		{"smollm", map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Digits", "individual_digits": true},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		}}, nil, false, false},
	}
	for i, c := range cases {
		ref := newTestBPE(t, c.gguf)
		for _, pairs := range []bool{false, true} {
			path := writeTokenizerJSON(t, ref, pairs, c.pre, c.post)
			if c.ignoreM {
				// Llama 3's tokenizer.json says so in the model section.
				raw, _ := os.ReadFile(path)
				raw = []byte(strings.Replace(string(raw), `"type":"BPE"`, `"type":"BPE","ignore_merges":true`, 1))
				if err := os.WriteFile(path, raw, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tok, err := LoadHFTokenizerJSON(path)
			if err != nil {
				t.Fatalf("case %d (%s, pairs %v): %v", i, c.gguf, pairs, err)
			}
			if got, want := tok.Encode(text, false, false), ref.Encode(text, false, false); !reflect.DeepEqual(got, want) {
				t.Errorf("case %d (%s, pairs %v): Encode = %v, NewBPE gives %v", i, c.gguf, pairs, got, want)
			}
			if tok.AddBOS() != c.addBOS || tok.ignoreMerges != c.ignoreM || tok.EOS() != tEOT {
				t.Errorf("case %d (%s): AddBOS %v ignoreMerges %v EOS %d", i, c.gguf, tok.AddBOS(), tok.ignoreMerges, tok.EOS())
			}
			if dec := tok.Decode(tok.Encode(text, true, false)); dec != strings.Replace(text, "<|endoftext|>", "", 1) {
				t.Errorf("case %d: Decode = %q", i, dec)
			}
		}
	}
}

// TestNFCNormalizer checks Qwen2's NFC normalizer: a decomposed "é"
// (e + U+0301) encodes as the composed one; without it, it does not.
func TestNFCNormalizer(t *testing.T) {
	ref := newTestBPE(t, "qwen2")
	path := writeTokenizerJSON(t, ref, false, splitThenByteLevel(PatternQwen2), nil)
	plain, err := LoadHFTokenizerJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	raw = []byte(strings.Replace(string(raw), `"normalizer":null`, `"normalizer":{"type":"NFC"}`, 1))
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	nfc, err := LoadHFTokenizerJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	composed, decomposed := "café", "cafe\u0301"
	if got, want := nfc.Encode(decomposed, false, false), plain.Encode(composed, false, false); !reflect.DeepEqual(got, want) {
		t.Errorf("NFC: Encode(decomposed) = %v, want the composed form's %v", got, want)
	}
	if reflect.DeepEqual(plain.Encode(decomposed, false, false), plain.Encode(composed, false, false)) {
		t.Error("without a normalizer the decomposed text encodes like the composed one")
	}
	raw = []byte(strings.Replace(string(raw), `{"type":"NFC"}`, `{"type":"NFKD"}`, 1))
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadHFTokenizerJSON(path); err == nil || !strings.Contains(err.Error(), "NFKD") {
		t.Errorf("NFKD normalizer: err = %v", err)
	}
}

func TestTokenizerConfig(t *testing.T) {
	ref := newTestBPE(t, "gpt2")
	path := writeTokenizerJSON(t, ref, false, map[string]any{"type": "ByteLevel"}, nil)
	cfg := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"bos_token": {"content": "<tool>", "special": true}, "eos_token": "<|endoftext|>", "add_bos_token": true}`)
	tok, err := LoadHFTokenizerJSON(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != tTool || tok.EOS() != tEOT || !tok.AddBOS() || tok.AddEOS() {
		t.Errorf("BOS %d EOS %d AddBOS %v AddEOS %v", tok.BOS(), tok.EOS(), tok.AddBOS(), tok.AddEOS())
	}
	if got := tok.Encode("a", tok.AddBOS(), tok.AddEOS()); !reflect.DeepEqual(got, []int{tTool, 'a'}) {
		t.Errorf("Encode with the config's flags = %v", got)
	}
	write(`{"bos_token": null, "eos_token": "<|endoftext|>"}`) // Qwen2: no BOS
	if tok, err = LoadHFTokenizerJSON(path); err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != -1 || tok.AddBOS() || tok.EOS() != tEOT {
		t.Errorf("without bos_token: BOS %d AddBOS %v EOS %d", tok.BOS(), tok.AddBOS(), tok.EOS())
	}
	if got := tok.Encode("a", true, false); !reflect.DeepEqual(got, []int{'a'}) {
		t.Errorf("Encode(addBOS) without a BOS = %v", got)
	}
	write(`{"bos_token": "<nope>"}`)
	if _, err := LoadHFTokenizerJSON(path); err == nil || !strings.Contains(err.Error(), "<nope>") || !strings.Contains(err.Error(), "tokenizer_config.json") {
		t.Errorf("unknown bos_token: err = %v", err)
	}
	write(`{"bos_token": `)
	if _, err := LoadHFTokenizerJSON(path); err == nil || !strings.Contains(err.Error(), "tokenizer_config.json") {
		t.Errorf("malformed config: err = %v", err)
	}
}

func TestLoadHFTokenizerJSONErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "tokenizer.json")
	if _, err := LoadHFTokenizerJSON(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: err = %v, want one naming %s", err, missing)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"model": {"type": "BPE", "vocab": {`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadHFTokenizerJSON(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "re-download") {
		t.Errorf("malformed file: err = %v", err)
	}
	ref := newTestBPE(t, "gpt2")
	path := writeTokenizerJSON(t, ref, false, splitThenByteLevel(`\w+|\s+`), nil)
	if _, err := LoadHFTokenizerJSON(path); err == nil || !strings.Contains(err.Error(), `\\w+|\\s+`) {
		t.Errorf("unknown split pattern: err = %v", err)
	}
	path = writeTokenizerJSON(t, ref, false, map[string]any{"type": "Whitespace"}, nil)
	if _, err := LoadHFTokenizerJSON(path); err == nil || !strings.Contains(err.Error(), "Whitespace") {
		t.Errorf("unknown pre-tokenizer: err = %v", err)
	}
	for _, c := range []struct{ from, to, want string }{
		{`"type":"BPE"`, `"type":"WordPiece"`, "WordPiece"},
		{`"byte_fallback":false`, `"byte_fallback":true`, "byte_fallback"},
		{`"merges":[`, `"merges":[["a"],`, "not a pair"},
		{`"merges":[`, `"merges":["Ġ zzz",`, `"zzz"`},
	} {
		path := writeTokenizerJSON(t, ref, strings.Contains(c.from+c.to, "[\"a\"]"), map[string]any{"type": "ByteLevel"}, nil)
		raw, _ := os.ReadFile(path)
		if !strings.Contains(string(raw), c.from) {
			t.Fatalf("fixture lacks %s", c.from)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(string(raw), c.from, c.to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadHFTokenizerJSON(path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.to, err, c.want)
		}
	}
}

func TestLoadGPT2FilesErrors(t *testing.T) {
	dir := t.TempDir()
	enc, bpe := filepath.Join(dir, "encoder.json"), filepath.Join(dir, "vocab.bpe")
	if _, err := LoadGPT2Files(enc, bpe); err == nil || !strings.Contains(err.Error(), enc) {
		t.Errorf("missing encoder.json: err = %v", err)
	}
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[ByteLevel(string([]byte{byte(b)}))] = b
	}
	vocab["Ġt"] = 256
	raw, _ := json.Marshal(vocab)
	if err := os.WriteFile(enc, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bpe, []byte("#version: 0.2\nĠ t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := LoadGPT2Files(enc, bpe)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode(" t t", false, false); !reflect.DeepEqual(got, []int{256, 256}) || tok.BOS() != -1 {
		t.Errorf("Encode = %v, BOS %d", got, tok.BOS())
	}
	if err := os.WriteFile(bpe, []byte("#version: 0.2\nĠ t\nĠtx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadGPT2Files(enc, bpe); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("bad merge line: err = %v", err)
	}
	vocab["dup"] = 5
	raw, _ = json.Marshal(vocab)
	if err := os.WriteFile(enc, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadGPT2Files(enc, bpe); err == nil || !strings.Contains(err.Error(), "each used once") {
		t.Errorf("duplicate id: err = %v", err)
	}
}
