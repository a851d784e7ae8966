package base

import (
	"path/filepath"
	"reflect"
	"testing"

	"orchmind/engine/gguf"
	"orchmind/engine/model"
	"orchmind/engine/quant"
)

// TestGGUFWriteKeepsSpacePrefix: a SentencePiece vocabulary written back
// to GGUF (model convert, export gguf) records tokenizer.ggml.add_space_prefix
// as the tokenizer has it, so the file reads back (in orchmind and in
// llama.cpp, whose default is true) with the same ids: Gemma's false on a
// gemma3 file, and also the cases where the architecture's default would
// be wrong (a llama file without the prefix, a gemma3 file with it).
func TestGGUFWriteKeepsSpacePrefix(t *testing.T) {
	for _, tc := range []struct {
		arch   string
		prefix bool
	}{{"gemma3", false}, {"llama", false}, {"gemma3", true}, {"llama", true}} {
		src := gemmaStyleGGUF(tc.prefix)
		src.Metadata["general.architecture"] = tc.arch
		tok, err := ggufSPM(src)
		if err != nil {
			t.Fatal(err)
		}
		if tok.AddSpacePrefix() != tc.prefix {
			t.Fatalf("%s: source tokenizer prefix %v, want %v", tc.arch, tok.AddSpacePrefix(), tc.prefix)
		}
		c := model.Config{Dim: 16, HiddenDim: 32, Layers: 1, Heads: 2, KVHeads: 1, Vocab: tok.VocabSize(), SeqLen: 64,
			NormEps: 1e-6, RopeTheta: 10000, SharedClassifier: true}
		if tc.arch == "gemma3" {
			c.Arch, c.HeadSize, c.SlidingWindow, c.SlidingPattern, c.QueryScale, c.RopeLocalTheta = model.ArchGemma3, 8, 4, 6, 8, 10000
			c.RopeTheta = 1e6
		}
		m, err := model.Random(c, quant.F32, 1)
		if err != nil {
			t.Fatal(err)
		}
		v, err := VocabOf(tok, c.Vocab)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "m.gguf")
		if err := model.WriteGGUF(p, m, "t", model.AsStored, v, nil); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := f.Metadata["tokenizer.ggml.add_space_prefix"].(bool)
		if a, _ := f.String("general.architecture"); !ok || got != tc.prefix || a != tc.arch {
			f.Close()
			t.Fatalf("%s, prefix %v: the written file has architecture %q and add_space_prefix %v (present %v)", tc.arch, tc.prefix, a, got, ok)
		}
		back, err := ggufSPM(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		text := "<start_of_turn>hi hi\nA<end_of_turn>"
		if back.AddSpacePrefix() != tc.prefix || !reflect.DeepEqual(back.Encode(text, true, false), tok.Encode(text, true, false)) {
			t.Errorf("%s, prefix %v: read back with prefix %v, ids %v; before %v", tc.arch, tc.prefix, back.AddSpacePrefix(),
				back.Encode(text, true, false), tok.Encode(text, true, false))
		}
	}
}
