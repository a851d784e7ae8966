package base

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/engine/gguf"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tokenizer"
	"orchmind/internal/fuzzcheck"
)

// fuzzBaseSeeds writes two small GGUF base models that carry their own
// tokenizer: SentencePiece (tokenizer.ggml.model "llama", with a chat
// template) and byte-level BPE ("gpt2", with ChatML control tokens).
func fuzzBaseSeeds(t testing.TB) [][]byte {
	var out [][]byte
	write := func(m *model.Model, v *model.Vocab, extra map[string]string) {
		p := filepath.Join(t.TempDir(), "m.gguf")
		if err := model.WriteGGUF(p, m, "fuzz", model.AsStored, v, extra); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p, "", model.AsStored); err != nil {
			t.Fatalf("seed does not load: %v", err)
		}
		out = append(out, b)
	}
	spm := &model.Vocab{BOS: 1, EOS: 2, Tokens: []string{"<unk>", "<s>", "</s>"}, Scores: []float32{0, 0, 0}, Types: []int32{2, 3, 3}}
	for _, s := range []string{"▁", "a", "b", "▁a", "ab", "<0x0A>", "<0xC3>", "<0xA7>"} {
		spm.Tokens, spm.Scores, spm.Types = append(spm.Tokens, s), append(spm.Scores, -float32(len(spm.Tokens))), append(spm.Types, 1)
	}
	c := model.Config{Dim: 8, HiddenDim: 16, Layers: 1, Heads: 2, KVHeads: 1, Vocab: len(spm.Tokens), SeqLen: 16, NormEps: 1e-5, RopeTheta: 10000}
	m, err := model.Random(c, quant.F32, 1)
	if err != nil {
		t.Fatal(err)
	}
	write(m, spm, map[string]string{"tokenizer.chat_template": "{{ '[INST] ' + m.content + ' [/INST]' }}"})
	// Without "▁" and most <0xNN> pieces: unknown bytes have no token.
	spm.Tokens, spm.Scores, spm.Types = append(spm.Tokens[:3], spm.Tokens[4:]...), append(spm.Scores[:3], spm.Scores[4:]...), append(spm.Types[:3], spm.Types[4:]...)
	c.Vocab = len(spm.Tokens)
	if m, err = model.Random(c, quant.F32, 3); err != nil {
		t.Fatal(err)
	}
	write(m, spm, nil)

	// testBPE's vocabulary: the 256 byte tokens, merges, ChatML controls.
	var tokens []string
	var types []int32
	for b := range 256 {
		tokens, types = append(tokens, tokenizer.ByteLevel(string([]byte{byte(b)}))), append(types, tokenizer.TokenNormal)
	}
	merges := []string{"Ġ t", "h e"}
	tokens, types = append(tokens, "Ġt", "he"), append(types, tokenizer.TokenNormal, tokenizer.TokenNormal)
	tokens = append(tokens, "<|endoftext|>", "<|im_start|>", "<|im_end|>")
	types = append(types, tokenizer.TokenControl, tokenizer.TokenControl, tokenizer.TokenControl)
	eot := len(tokens) - 3
	c.Vocab = len(tokens) + 2
	if m, err = model.Random(c, quant.F32, 2); err != nil {
		t.Fatal(err)
	}
	ref, err := tokenizer.NewBPE(tokens, merges, types, eot, eot, "qwen2")
	if err != nil {
		t.Fatal(err)
	}
	v, err := VocabOf(NewBPETokenizer(ref), c.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	write(m, v, map[string]string{"tokenizer.chat_template": chatml})
	return out
}

// FuzzLoadGGUF loads fuzzed GGUF base models with the tokenizer they
// carry, as `orchmind` does for a .gguf file: no panic, one-line errors,
// memory in proportion to the file, and a base it accepts tokenizes any
// text to ids the model has rows for (a forward pass on each runs) and
// picks a chat template or says why not.
func FuzzLoadGGUF(f *testing.F) {
	for i, s := range fuzzBaseSeeds(f) {
		f.Add(s, uint8(i), "the thing<|im_end|> ça\n")
		f.Add(s, uint8(i), "xyz")
	}
	dir := fuzzcheck.Dir(f)
	f.Fuzz(func(t *testing.T, data []byte, typ uint8, text string) { checkLoadGGUF(t, dir, data, typ, text) })
}

// checkLoadGGUF is FuzzLoadGGUF's check of one file.
func checkLoadGGUF(t *testing.T, dir string, data []byte, typ uint8, text string) {
	fuzzcheck.Reset(t, dir)
	p := filepath.Join(dir, "m.gguf")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var b *Base
	var err error
	types := []quant.Type{model.AsStored, quant.Q8_0}
	fuzzcheck.Bounded(t, len(data), 256, 4<<20, func() { b, err = Load(p, "", types[int(typ)%len(types)]) })
	if err != nil {
		fuzzcheck.OneLine(t, err)
		return
	}
	if len(text) > 64 {
		text = text[:64]
	}
	m := *b.Model
	m.SeqLen = 1
	for _, enc := range []interface {
		Encode(string, bool, bool) []int
	}{b.Tok, b.Train} {
		for _, id := range enc.Encode(text, true, true) {
			if id < 0 || id >= m.Vocab {
				t.Fatalf("Encode(%q) gave id %d; the model has %d rows", text, id, m.Vocab)
			}
			_ = m.NewState().Forward(id, 0)
		}
	}
	if _, err := b.Template(""); err != nil {
		fuzzcheck.OneLine(t, err)
	}
	prev := b.Tok.BOS()
	for _, id := range []int{-1, 0, 1, 2, m.Vocab - 1, m.Vocab, 1 << 40} {
		_ = b.Tok.Piece(prev, id)
		prev = id
	}
}

// FuzzLoadGGUFTokenizer mutates the tokenizer metadata of valid GGUF bases
// (one token, score, type or merge replaced, an array cut short, a special
// id, the tokenizer kind, pre-tokenizer or chat template changed) so that
// the tokenizer builders, not the GGUF parser, see the damage. The checks
// are FuzzLoadGGUF's.
func FuzzLoadGGUFTokenizer(f *testing.F) {
	var files []*gguf.File
	for _, s := range fuzzBaseSeeds(f) {
		g, err := gguf.Parse(s)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, g)
	}
	for i := range files {
		f.Add(uint8(i), uint8(0), uint32(0), uint32(0), "xyz", "the thing<|im_end|> ça")
	}
	dir := fuzzcheck.Dir(f)
	f.Fuzz(func(t *testing.T, seed, key uint8, at, val uint32, str, text string) {
		g := files[int(seed)%len(files)]
		var keys []string
		for _, k := range g.Keys {
			if strings.HasPrefix(k, "tokenizer.") {
				keys = append(keys, k)
			}
		}
		var kvs []gguf.KV
		target := keys[int(key)%len(keys)]
		for _, k := range g.Keys {
			v := g.Metadata[k]
			if k == target {
				v = mutateValue(v, at, val, str)
			}
			kvs = append(kvs, gguf.KV{Key: k, Value: v})
		}
		var ts []gguf.WriteTensor
		for _, x := range g.Tensors {
			ts = append(ts, gguf.WriteTensor{Name: x.Name, Dims: x.Dims, Type: x.Type, Data: x.Data})
		}
		data, err := gguf.Encode(kvs, ts)
		if err != nil {
			return
		}
		checkLoadGGUF(t, dir, data, 0, text)
	})
}

// mutateValue replaces v (a GGUF metadata value) by val or str of the same
// type; in an array, element at is replaced, or with at's top bit the
// array is cut to at%len elements.
func mutateValue(v any, at, val uint32, str string) any {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return x
		}
		y := append([]any(nil), x...)
		if at&(1<<31) != 0 {
			return y[:int(at&^(1<<31))%len(y)]
		}
		y[int(at)%len(y)] = mutateValue(y[int(at)%len(y)], 0, val, str)
		return y
	case string:
		return str
	case float32:
		return math.Float32frombits(val)
	case int32:
		return int32(val)
	case uint32:
		return val
	case uint64:
		return uint64(val)
	case bool:
		return val&1 == 1
	}
	return v
}
