package model

import (
	"path/filepath"
	"slices"
	"testing"

	"orchmind/trainer/gguf"
	"orchmind/trainer/quant"
	"orchmind/trainer/tokenizer"
)

func vocabOf(tok *tokenizer.Llama2C) *Vocab {
	t, s, ty := tok.GGUFVocab()
	return &Vocab{Tokens: t, Scores: s, Types: ty, BOS: tok.BOS(), EOS: tok.EOS()}
}

// TestGGUFRoundTrip converts stories260K to GGUF and checks that the copy is
// the same model: same fingerprint, same greedy text, same tokenizer.
func TestGGUFRoundTrip(t *testing.T) {
	m, tok := loadStories(t, quant.F32)
	dir := t.TempDir()
	p := filepath.Join(dir, "s.gguf")
	if err := WriteGGUF(p, m, "stories260K", AsStored, vocabOf(tok), nil); err != nil {
		t.Fatal(err)
	}
	g, f, err := Load(p, AsStored)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(g) != Fingerprint(m) {
		t.Fatal("the F32 GGUF copy has another fingerprint than the llama2.c original")
	}
	toks, _ := f.Metadata["tokenizer.ggml.tokens"].([]any)
	scores, _ := f.Metadata["tokenizer.ggml.scores"].([]any)
	ts, ss := make([]string, len(toks)), make([]float32, len(scores))
	for i := range toks {
		ts[i], ss[i] = toks[i].(string), scores[i].(float32)
	}
	gt, err := tokenizer.FromSPMVocab(ts, ss)
	if err != nil {
		t.Fatal(err)
	}
	text := "Lily and Ben went to the park.\nThey played!"
	if a, b := gt.Encode(text, true, false), tok.Encode(text, true, false); !slices.Equal(a, b) {
		t.Fatalf("GGUF tokenizer gives %v, tok512.bin %v", a, b)
	}
	if a, b := generate(t, g, gt), generate(t, m, tok); a != b {
		t.Fatalf("greedy text differs after conversion:\n%s\n%s", a, b)
	}

	// Q8_0: same shapes, other bytes; generation drifts late.
	q := filepath.Join(dir, "q.gguf")
	if err := WriteGGUF(q, m, "stories260K", quant.Q8_0, vocabOf(tok), nil); err != nil {
		t.Fatal(err)
	}
	gq, _, err := Load(q, AsStored)
	if err != nil {
		t.Fatal(err)
	}
	if gq.Layers[0].Wq.Type != quant.Q8_0 || gq.Layers[0].Down.Type != quant.F16 {
		t.Fatalf("types %s/%s, want Q8_0 with F16 for the 172-wide rows", gq.Layers[0].Wq.Type, gq.Layers[0].Down.Type)
	}
	if ShapeID(gq) != ShapeID(m) || Fingerprint(gq) == Fingerprint(m) {
		t.Fatal("Q8_0 copy: want the same shape ID and another fingerprint")
	}
	ref := generate(t, m, tok)
	got := generate(t, gq, gt)
	t.Logf("GGUF Q8_0 greedy text matches the f32 text for %d of %d bytes", commonPrefix(got, ref), len(ref))
	if gq.Bytes() >= m.Bytes()/2 {
		t.Errorf("Q8_0 model holds %d bytes, f32 %d: not quantized in memory", gq.Bytes(), m.Bytes())
	}
}

func TestGGUFRefusesOtherArchitectures(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.gguf")
	if err := gguf.Write(p, []gguf.KV{{Key: "general.architecture", Value: "gpt2"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(p, AsStored); err == nil {
		t.Fatal("gpt2 GGUF accepted")
	}
}
