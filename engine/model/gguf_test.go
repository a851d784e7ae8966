package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"orchmind/engine/gguf"
	"orchmind/engine/quant"
	"orchmind/engine/safetensors"
	"orchmind/engine/tensor"
	"orchmind/engine/tokenizer"
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

// logitsOf runs ids through a fresh State and returns a copy of every
// position's logits.
func logitsOf(m *Model, ids []int) [][]float32 {
	s := m.NewState()
	out := make([][]float32, len(ids))
	for pos, id := range ids {
		out[pos] = append([]float32(nil), s.Forward(id, pos)...)
	}
	return out
}

// TestGGUFF32SameLogits: the F32 GGUF copy of stories260K gives exactly the
// llama2.c checkpoint's logits, bit for bit, at every position.
func TestGGUFF32SameLogits(t *testing.T) {
	m, tok := loadStories(t, quant.F32)
	p := filepath.Join(t.TempDir(), "s.gguf")
	if err := WriteGGUF(p, m, "stories260K", quant.F32, vocabOf(tok), nil); err != nil {
		t.Fatal(err)
	}
	g, _, err := Load(p, AsStored)
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode("One day, a little girl named Lily found a needle in her room.", true, false)
	a, b := logitsOf(m, ids), logitsOf(g, ids)
	for pos := range a {
		for i := range a[pos] {
			if math.Float32bits(a[pos][i]) != math.Float32bits(b[pos][i]) {
				t.Fatalf("position %d logit %d: .bin %g, GGUF %g", pos, i, a[pos][i], b[pos][i])
			}
		}
	}
}

// randomModel builds a small untied model with K-quant-friendly widths
// (multiples of 256) and weights of typical size.
func randomModel(seed uint64) *Model {
	c := Config{Dim: 256, HiddenDim: 512, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 96, SeqLen: 64, NormEps: 1e-5, RopeTheta: 10000}
	rng := rand.New(rand.NewPCG(seed, 1))
	mat := func(rows, cols int) *tensor.Matrix {
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.05)
		}
		w, err := tensor.Quantized(quant.F32, rows, cols, v)
		if err != nil {
			panic(err)
		}
		return w
	}
	norm := func() []float32 {
		v := make([]float32, c.Dim)
		for i := range v {
			v[i] = 1 + float32(rng.NormFloat64()*0.1)
		}
		return v
	}
	m := &Model{Config: c, Embed: mat(c.Vocab, c.Dim), Output: mat(c.Vocab, c.Dim), FinalNorm: norm()}
	for range c.Layers {
		m.Layers = append(m.Layers, Layer{AttnNorm: norm(), FFNNorm: norm(),
			Wq: mat(c.Dim, c.Dim), Wk: mat(c.KVDim(), c.Dim), Wv: mat(c.KVDim(), c.Dim), Wo: mat(c.Dim, c.Dim),
			Gate: mat(c.HiddenDim, c.Dim), Up: mat(c.HiddenDim, c.Dim), Down: mat(c.Dim, c.HiddenDim)})
	}
	return m
}

// TestGGUFKQuants writes a random model as Q4_0, Q4_K, Q5_K, Q6_K and Q8_0
// GGUFs, loads them (weights stay in their blocks) and compares logits with
// the F32 original. The errors must come in that order, strictly
// decreasing (Q4_K beats Q4_0 at the same size), and stay far below the
// ~1.4 a wrong decoding gives. (Two random layers amplify weight error:
// 0.07 relative for Q4_K weights gives about 0.27 in the logits.)
func TestGGUFKQuants(t *testing.T) {
	m := randomModel(7)
	ids := []int{1, 5, 17, 42, 88, 3, 60, 9}
	ref := logitsOf(m, ids)
	var prev float64 = math.Inf(1)
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q4_K, quant.Q5_K, quant.Q6_K, quant.Q8_0} {
		p := filepath.Join(t.TempDir(), typ.String()+".gguf")
		if err := WriteGGUF(p, m, "random", typ, nil, nil); err != nil {
			t.Fatal(err)
		}
		g, _, err := Load(p, AsStored)
		if err != nil {
			t.Fatal(err)
		}
		if g.Layers[1].Down.Type != typ || g.Output.Type != typ || g.SharedClassifier {
			t.Fatalf("%s file loaded as %s/%s shared=%v", typ, g.Layers[1].Down.Type, g.Output.Type, g.SharedClassifier)
		}
		if ShapeID(g) != ShapeID(m) || Fingerprint(g) == Fingerprint(m) {
			t.Fatalf("%s: want the F32 shape ID and another fingerprint", typ)
		}
		got := logitsOf(g, ids)
		var num, den float64
		for pos := range ref {
			for i := range ref[pos] {
				d := float64(got[pos][i] - ref[pos][i])
				num += d * d
				den += float64(ref[pos][i]) * float64(ref[pos][i])
			}
		}
		rel := math.Sqrt(num / den)
		t.Logf("%s: logits relative RMS error %.4f, %d bytes in memory (F32 %d)", typ, rel, g.Bytes(), m.Bytes())
		if rel > 0.5 || rel >= prev {
			t.Errorf("%s: relative error %.4f (previous type %.4f)", typ, rel, prev)
		}
		prev = rel
	}
}

// TestGGUFRefusesInconsistentFiles edits the metadata or tensors of a valid
// model file and expects a clear refusal for each.
func TestGGUFRefusesInconsistentFiles(t *testing.T) {
	m := randomModel(3)
	dir := t.TempDir()
	src := filepath.Join(dir, "ok.gguf")
	if err := WriteGGUF(src, m, "random", AsStored, nil, nil); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(name string, kv func(map[string]any), drop string, extra *gguf.WriteTensor) string {
		md := map[string]any{}
		for k, v := range f.Metadata {
			md[k] = v
		}
		kv(md)
		var kvs []gguf.KV
		for _, k := range f.Keys {
			if v, ok := md[k]; ok {
				kvs = append(kvs, gguf.KV{Key: k, Value: v})
				delete(md, k)
			}
		}
		for k, v := range md {
			kvs = append(kvs, gguf.KV{Key: k, Value: v})
		}
		var ts []gguf.WriteTensor
		for _, tt := range f.Tensors {
			if tt.Name != drop {
				ts = append(ts, gguf.WriteTensor{Name: tt.Name, Dims: tt.Dims, Type: tt.Type, Data: tt.Data})
			}
		}
		if extra != nil {
			ts = append(ts, *extra)
		}
		p := filepath.Join(dir, name+".gguf")
		if err := gguf.Write(p, kvs, ts); err != nil {
			t.Fatal(err)
		}
		return p
	}
	none := func(map[string]any) {}
	cases := map[string]string{
		"mixture of experts": edit("moe", func(md map[string]any) { md["llama.expert_count"] = uint32(8) }, "", nil),
		"partial rope":       edit("rope", func(md map[string]any) { md["llama.rope.dimension_count"] = uint32(32) }, "", nil),
		"rope scaling":       edit("yarn", func(md map[string]any) { md["llama.rope.scaling.type"] = "yarn" }, "", nil),
		"vocab size":         edit("vocab", func(md map[string]any) { md["llama.vocab_size"] = uint32(97) }, "", nil),
		"missing layers":     edit("layers", func(md map[string]any) { delete(md, "llama.block_count") }, "", nil),
		"missing tensor":     edit("missing", none, "blk.1.ffn_up.weight", nil),
		"zero rope freqs": edit("freqs", none, "", &gguf.WriteTensor{Name: "rope_freqs.weight", Dims: []uint64{32}, Type: quant.F32,
			Data: make([]byte, 128)}),
		"other architecture": edit("gpt2", func(md map[string]any) { md["general.architecture"] = "gpt2" }, "", nil),
	}
	for name, p := range cases {
		if _, _, err := Load(p, AsStored); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error does not name the file: %v", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, _, err := Load(edit("same", none, "", nil), AsStored); err != nil {
		t.Fatalf("unedited copy refused: %v", err)
	}
}

// TestGGMLReadsOurGGUF: testdata/ggml_reads_stories260K_q8_0.txt is what
// ggml's own GGUF reader (gguf_init_from_file of ggml-org/ggml d99724f2,
// called from a small C++ program outside this repository) printed for `orchmind model convert stories260K.bin --out q.gguf --quant q8_0`:
// version, alignment, data offset, every key with its type, every tensor
// with its type, offset and size. Writing the same file again must give a
// file our reader sees identically, so both readers agree on our layout.
func TestGGMLReadsOurGGUF(t *testing.T) {
	want, err := os.ReadFile("testdata/ggml_reads_stories260K_q8_0.txt")
	if err != nil {
		t.Fatal(err)
	}
	m, tok := loadStories(t, quant.F32)
	p := filepath.Join(t.TempDir(), "q.gguf")
	if err := WriteGGUF(p, m, "stories260K", quant.Q8_0, vocabOf(tok), map[string]string{"orchmind.document_end": "bos"}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	typeCode := func(v any) int {
		switch v.(type) {
		case uint32:
			return 4
		case float32:
			return 6
		case string:
			return 8
		case []any:
			return 9
		}
		return -1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version %d alignment %d data_offset %d kv %d tensors %d\n", f.Version, f.Alignment, f.DataOffset, len(f.Keys), len(f.Tensors))
	for _, k := range f.Keys {
		fmt.Fprintf(&b, "kv %s type %d\n", k, typeCode(f.Metadata[k]))
	}
	for _, tt := range f.Tensors {
		fmt.Fprintf(&b, "tensor %s type %d offset %d size %d\n", tt.Name, tt.Type, tt.Offset, tt.Size)
	}
	if b.String() != string(want) {
		t.Fatalf("our reader sees:\n%s\nggml's reader saw:\n%s", b.String(), want)
	}
}

// TestGGUFQwen2 writes the Qwen2 fixture (q/k/v biases, tied embeddings)
// as GGUF and reads it back: the q/k rows and biases in the file are in the
// Hugging Face (rotate-half, llama.cpp "NEOX") order, as llama.cpp's
// convert_hf_to_gguf.py leaves them for qwen2, and the reloaded model gives
// the same logits and fingerprint.
func TestGGUFQwen2(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "hf", "tiny-qwen2-torch")
	m, _, f := ggufRoundTrip(t, dir, "qwen2")
	if m.Arch != ArchQwen2 || m.Layers[0].Bias[ProjQ] == nil || !m.SharedClassifier {
		t.Fatalf("loaded %+v, want qwen2 with biases and tied embeddings", m.Config)
	}
	ids := []int{1, 5, 17, 42, 3, 95, 0, 63}
	a := logitsOf(m, ids)
	// The file's rows are the checkpoint's rows, in its order.
	requireCheckpointRows(t, dir, f, []checkpointRow{
		{"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", 0},
		{"model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", 0},
		{"model.layers.1.self_attn.q_proj.bias", "blk.1.attn_q.bias", 0},
		{"model.layers.1.self_attn.k_proj.bias", "blk.1.attn_k.bias", 0},
		{"model.layers.1.self_attn.v_proj.bias", "blk.1.attn_v.bias", 0},
	})
	// Quantized on load, Q8_0 keeps the same structure.
	q, f2, err := LoadGGUF(f.Path, quant.Q8_0)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	qa := logitsOf(q, ids)
	var worst, scale float64
	for i := range a {
		for j := range a[i] {
			worst = max(worst, math.Abs(float64(qa[i][j]-a[i][j])))
			scale = max(scale, math.Abs(float64(a[i][j])))
		}
	}
	// Q8_0 rounding of these random weights moves the logits by ~4% (the
	// llama fixture: ~3%); a row-order mistake would scramble them.
	if worst > 0.1*scale {
		t.Fatalf("Q8_0 copy drifts by %g of %g", worst, scale)
	}
}

// TestGGUFGemma writes the Gemma fixture as GGUF and reads it back: the file
// says gemma, keeps q/k rows in the checkpoint's (rotate-half) order and the
// norms as 1 + weight, as llama.cpp's convert_hf_to_gguf.py writes Gemma,
// has no output.weight, and the reloaded model gives the same logits and
// fingerprint.
func TestGGUFGemma(t *testing.T) {
	for _, c := range []struct {
		name string
		head int
	}{{"tiny-gemma-torch", 16}, {"tiny-gemma-wide-torch", 32}} {
		t.Run(c.name, func(t *testing.T) { ggufGemma(t, c.name, c.head) })
	}
}

func ggufGemma(t *testing.T, name string, head int) {
	dir := filepath.Join("..", "..", "testdata", "hf", name)
	m, g, f := ggufRoundTrip(t, dir, "gemma")
	if m.Arch != ArchGemma || !m.SharedClassifier || !m.GELU() || m.EmbedScale() != 8 || m.HeadDim() != head {
		t.Fatalf("loaded %+v, want gemma with tied embeddings, GELU, embeddings × 8 and heads of %d", m.Config, head)
	}
	if _, ok := f.Tensor("output.weight"); ok {
		t.Fatal("a tied Gemma file has output.weight")
	}
	if g.HeadDim() != head {
		t.Fatalf("heads of %d after GGUF, want %d", g.HeadDim(), head)
	}
	requireCheckpointRows(t, dir, f, []checkpointRow{
		{"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", 0},
		{"model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", 0},
		{"model.layers.1.input_layernorm.weight", "blk.1.attn_norm.weight", 1},
		{"model.norm.weight", "output_norm.weight", 1},
	})
}

// TestGGUFQwen3 writes the Qwen3 fixture (per-head q/k norms, heads of 32 in
// a width of 64) as GGUF and reads it back: the file says qwen3, has
// attn_q_norm/attn_k_norm and q/k rows in the checkpoint's (rotate-half)
// order, and the reloaded model gives the same logits and fingerprint.
func TestGGUFQwen3(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "hf", "tiny-qwen3-torch")
	m, _, f := ggufRoundTrip(t, dir, "qwen3")
	if m.Arch != ArchQwen3 || !m.QKNorm() || m.HeadDim() != 32 || m.QDim() != 128 || m.Layers[0].QNorm == nil {
		t.Fatalf("loaded %+v, want qwen3 with q/k norms and heads of 32", m.Config)
	}
	if kl, _ := f.Uint("qwen3.attention.key_length"); kl != 32 {
		t.Fatalf("qwen3.attention.key_length %d, want 32", kl)
	}
	requireCheckpointRows(t, dir, f, []checkpointRow{
		{"model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", 0},
		{"model.layers.1.self_attn.k_norm.weight", "blk.1.attn_k_norm.weight", 0},
		{"model.layers.0.self_attn.q_norm.weight", "blk.0.attn_q_norm.weight", 0},
	})
}

// ggufRoundTrip loads the Hugging Face fixture in dir, writes it as GGUF and
// loads that back (closed at the end of the test), requiring the file to
// name arch, and the reloaded model the same fingerprint and bit-identical
// logits.
func ggufRoundTrip(t *testing.T, dir, arch string) (m, g *Model, f *gguf.File) {
	t.Helper()
	m, err := LoadHF(dir, quant.F32)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), arch+".gguf")
	if err := WriteGGUF(p, m, "tiny-"+arch, quant.F32, nil, nil); err != nil {
		t.Fatal(err)
	}
	g, f, err = LoadGGUF(p, AsStored)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if a, _ := f.String("general.architecture"); a != arch {
		t.Fatalf("general.architecture %q, want %q", a, arch)
	}
	if _, ok := f.Uint(arch + ".block_count"); !ok {
		t.Fatalf("no %s.block_count", arch)
	}
	if Fingerprint(g) != Fingerprint(m) {
		t.Fatal("fingerprint changed through GGUF")
	}
	ids := []int{1, 5, 17, 42, 3, 95, 0, 63}
	a, b := logitsOf(m, ids), logitsOf(g, ids)
	for i := range a {
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				t.Fatalf("logit [%d][%d]: %g from HF, %g from GGUF", i, j, a[i][j], b[i][j])
			}
		}
	}
	return m, g, f
}

// checkpointRow names a tensor of a Hugging Face checkpoint, the GGUF tensor
// that must hold its values in the same order, and what llama.cpp adds to
// them (Gemma's norms: 1).
type checkpointRow struct {
	hf, gg string
	plus   float32
}

// requireCheckpointRows checks each row of rows between dir's
// model.safetensors and the GGUF file f.
func requireCheckpointRows(t *testing.T, dir string, f *gguf.File, rows []checkpointRow) {
	t.Helper()
	st, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rows {
		want, _, err := st.Float32(c.hf)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			want[i] += c.plus
		}
		ti, ok := f.Tensor(c.gg)
		if !ok {
			t.Fatalf("no %s in the file", c.gg)
		}
		got := make([]float32, len(want))
		if err := quant.Dequantize(ti.Type, ti.Data, got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s is not %s (+%g) in the checkpoint's order", c.gg, c.hf, c.plus)
		}
	}
}
