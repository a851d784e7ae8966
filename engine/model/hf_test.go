package model

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"orchmind/engine/quant"
	"orchmind/engine/safetensors"
	"orchmind/internal/testshared"
)

// hfW is one tensor of a Hugging Face checkpoint being written by a test.
type hfW struct {
	name  string
	shape []int64
	v     []float32
}

// hfEncode converts values to a safetensors tensor of dtype F32, F16 or BF16.
func hfEncode(t testing.TB, w hfW, dtype string) safetensors.WriteTensor {
	t.Helper()
	switch dtype {
	case "F32":
		return safetensors.F32Tensor(w.name, w.shape, w.v)
	case "F16", "BF16":
		b := make([]byte, 2*len(w.v))
		for i, x := range w.v {
			h := quant.F32ToF16(x)
			if dtype == "BF16" {
				h = quant.F32ToBF16(x)
			}
			binary.LittleEndian.PutUint16(b[2*i:], h)
		}
		return safetensors.WriteTensor{Name: w.name, DType: dtype, Shape: w.shape, Data: b}
	}
	t.Fatalf("dtype %s", dtype)
	return safetensors.WriteTensor{}
}

// hfWriteFolder writes config.json and the tensors as one model.safetensors
// (shards ≤ 1) or as shards with model.safetensors.index.json, the way
// transformers' save_pretrained lays them out.
func hfWriteFolder(t testing.TB, dir string, cfg map[string]any, ws []hfW, dtype string, shards int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, HFConfigFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if shards <= 1 {
		var ts []safetensors.WriteTensor
		for _, w := range ws {
			ts = append(ts, hfEncode(t, w, dtype))
		}
		if err := safetensors.Write(filepath.Join(dir, HFWeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		return
	}
	weightMap := map[string]string{}
	per := (len(ws) + shards - 1) / shards
	for s := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", s+1, shards)
		var ts []safetensors.WriteTensor
		for _, w := range ws[s*per : min(len(ws), (s+1)*per)] {
			ts = append(ts, hfEncode(t, w, dtype))
			weightMap[w.name] = name
		}
		if err := safetensors.Write(filepath.Join(dir, name), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	b, err = json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, HFIndexFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// hfToRotateHalf moves the rows of a [heads·hd, cols] projection from the
// interleaved RoPE layout (pairs in adjacent rows) to Hugging Face's
// rotate-half layout (row j of a head pairs with row j+hd/2): the inverse of
// what convert_hf_to_gguf.py's permute does, written out independently here.
func hfToRotateHalf(v []float32, heads, cols int) []float32 {
	out := make([]float32, len(v))
	hd := len(v) / cols / heads
	for h := range heads {
		for j := range hd / 2 {
			copy(out[(h*hd+j)*cols:][:cols], v[(h*hd+2*j)*cols:][:cols])
			copy(out[(h*hd+hd/2+j)*cols:][:cols], v[(h*hd+2*j+1)*cols:][:cols])
		}
	}
	return out
}

// hfFromModel returns m's weights under Hugging Face names and layout, and
// its config.json.
func hfFromModel(m *Model) (map[string]any, []hfW) {
	c := m.Config
	d, kv, hid := int64(c.Dim), int64(c.KVDim()), int64(c.HiddenDim)
	ws := []hfW{{"model.embed_tokens.weight", []int64{int64(c.Vocab), d}, m.Embed.Float32()}}
	for l, L := range m.Layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		ws = append(ws,
			hfW{p + "input_layernorm.weight", []int64{d}, L.AttnNorm},
			hfW{p + "self_attn.q_proj.weight", []int64{d, d}, hfToRotateHalf(L.Wq.Float32(), c.Heads, c.Dim)},
			hfW{p + "self_attn.k_proj.weight", []int64{kv, d}, hfToRotateHalf(L.Wk.Float32(), c.KVHeads, c.Dim)},
			hfW{p + "self_attn.v_proj.weight", []int64{kv, d}, L.Wv.Float32()},
			hfW{p + "self_attn.o_proj.weight", []int64{d, d}, L.Wo.Float32()},
			hfW{p + "post_attention_layernorm.weight", []int64{d}, L.FFNNorm},
			hfW{p + "mlp.gate_proj.weight", []int64{hid, d}, L.Gate.Float32()},
			hfW{p + "mlp.up_proj.weight", []int64{hid, d}, L.Up.Float32()},
			hfW{p + "mlp.down_proj.weight", []int64{d, hid}, L.Down.Float32()},
		)
	}
	ws = append(ws, hfW{"model.norm.weight", []int64{d}, m.FinalNorm})
	if !c.SharedClassifier {
		ws = append(ws, hfW{"lm_head.weight", []int64{int64(c.Vocab), d}, m.Output.Float32()})
	}
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": c.Dim, "intermediate_size": c.HiddenDim, "num_hidden_layers": c.Layers,
		"num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeads, "vocab_size": c.Vocab,
		"max_position_embeddings": c.SeqLen, "rms_norm_eps": c.NormEps, "rope_theta": c.RopeTheta,
		"tie_word_embeddings": c.SharedClassifier, "hidden_act": "silu", "rope_scaling": nil,
		"head_dim": c.HeadDim(), "attention_bias": false, "mlp_bias": false, "torch_dtype": "float32",
	}
	return cfg, ws
}

// hfLogits runs ids through m with Forward and returns the logits at each position.
func hfLogits(m *Model, ids []int) [][]float32 {
	s := m.NewState()
	var out [][]float32
	for pos, id := range ids {
		out = append(out, slices.Clone(s.Forward(id, pos)))
	}
	return out
}

// hfMaxDiff is the largest |a−b| and the largest |b| over all logits.
func hfMaxDiff[T float32 | float64](a [][]float32, b [][]T) (diff, scale float64) {
	for i := range a {
		for j := range a[i] {
			diff = max(diff, math.Abs(float64(a[i][j])-float64(b[i][j])))
			scale = max(scale, math.Abs(float64(b[i][j])))
		}
	}
	return diff, scale
}

// TestLoadHFMatchesLlama2C writes stories260K as Hugging Face folders
// (rotate-half q/k rows, F32/F16/BF16, one file or shards) and checks that
// LoadHF gives the llama2.c loader's model: same logits at every position.
func TestLoadHFMatchesLlama2C(t *testing.T) {
	p := testshared.Path(t, "models/stories260K/stories260K.bin")
	ref, err := LoadLlama2C(p, quant.F32)
	if err != nil {
		t.Fatal(err)
	}
	cfg, ws := hfFromModel(ref)
	ids := []int{1, 403, 407, 261, 378, 360, 412, 7, 99, 300, 2, 511}
	cases := []struct {
		dtype  string
		shards int
		typ    quant.Type
	}{
		{"F32", 1, quant.F32},
		{"F32", 3, quant.F32},
		{"F16", 1, quant.F16},
		{"BF16", 2, quant.BF16},
		{"F32", 1, quant.Q8_0},
		{"F32", 2, quant.Q4_0},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s_%dshards_as_%s", tc.dtype, tc.shards, tc.typ), func(t *testing.T) {
			dir := t.TempDir()
			hfWriteFolder(t, dir, cfg, ws, tc.dtype, tc.shards)
			got, err := LoadHF(dir, tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			if got.Config != ref.Config {
				t.Fatalf("config %+v, want %+v", got.Config, ref.Config)
			}
			if got.Output != got.Embed {
				t.Error("tie_word_embeddings true: the output projection must be the embedding")
			}
			// The llama2.c model converted the same way: F16 and BF16 weights
			// are what the HF file stores, quantized types are quantized from
			// the same values.
			want := ref
			if tc.dtype != "F32" || tc.typ != quant.F32 {
				want, err = LoadLlama2C(p, tc.typ)
				if err != nil {
					t.Fatal(err)
				}
			}
			if tc.dtype != "F32" {
				// The HF file stores the norms in its dtype too.
				hfRoundNorms(want, tc.dtype)
			}
			if got.Bytes() != want.Bytes() {
				t.Errorf("weights take %d bytes, llama2.c loader %d", got.Bytes(), want.Bytes())
			}
			diff, scale := hfMaxDiff(hfLogits(got, ids), hfLogits(want, ids))
			const tol = 1e-5
			t.Logf("max |Δlogit| %.3g (logits up to %.3g)", diff, scale)
			if diff > tol {
				t.Errorf("logits differ from the llama2.c model's by %g (tolerance %g)", diff, tol)
			}
		})
	}
}

// hfRoundNorms rounds m's norm weights through dtype (F16 or BF16) in place.
func hfRoundNorms(m *Model, dtype string) {
	round := func(v []float32) {
		for i, x := range v {
			if dtype == "F16" {
				v[i] = quant.F16ToF32(quant.F32ToF16(x))
			} else {
				v[i] = quant.BF16ToF32(quant.F32ToBF16(x))
			}
		}
	}
	for l := range m.Layers {
		round(m.Layers[l].AttnNorm)
		round(m.Layers[l].FFNNorm)
	}
	round(m.FinalNorm)
}

// hfRandom builds a random Llama checkpoint in Hugging Face layout with GQA
// and an untied head, large enough weights that attention is far from
// uniform (so a wrong RoPE layout changes the logits).
func hfRandom(seed uint64) (map[string]any, []hfW) {
	r := rand.New(rand.NewPCG(seed, 1))
	const dim, heads, kvHeads, hid, layers, vocab = 64, 4, 2, 96, 2, 40
	kv := int64(dim / heads * kvHeads)
	mat := func(name string, rows, cols int64, std float64) hfW {
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32(r.NormFloat64() * std)
		}
		return hfW{name, []int64{rows, cols}, v}
	}
	norm := func(name string) hfW {
		v := make([]float32, dim)
		for i := range v {
			v[i] = float32(1 + 0.2*r.NormFloat64())
		}
		return hfW{name, []int64{dim}, v}
	}
	ws := []hfW{mat("model.embed_tokens.weight", vocab, dim, 1)}
	for l := range layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		ws = append(ws, norm(p+"input_layernorm.weight"),
			mat(p+"self_attn.q_proj.weight", dim, dim, 0.3),
			mat(p+"self_attn.k_proj.weight", kv, dim, 0.3),
			mat(p+"self_attn.v_proj.weight", kv, dim, 0.2),
			mat(p+"self_attn.o_proj.weight", dim, dim, 0.1),
			norm(p+"post_attention_layernorm.weight"),
			mat(p+"mlp.gate_proj.weight", hid, dim, 0.2),
			mat(p+"mlp.up_proj.weight", hid, dim, 0.2),
			mat(p+"mlp.down_proj.weight", dim, hid, 0.1))
	}
	ws = append(ws, norm("model.norm.weight"), mat("lm_head.weight", vocab, dim, 0.3))
	// transformers ≥ 5 writes rope_parameters instead of rope_theta.
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama",
		"hidden_size": dim, "intermediate_size": hid, "num_hidden_layers": layers,
		"num_attention_heads": heads, "num_key_value_heads": kvHeads, "vocab_size": vocab,
		"max_position_embeddings": 64, "rms_norm_eps": 1e-5, "tie_word_embeddings": false,
		"rope_parameters": map[string]any{"rope_theta": 500.0, "rope_type": "default"},
	}
	return cfg, ws
}

// hfReferenceLogits is an independent float64 forward pass with Hugging
// Face's conventions, run on the checkpoint's tensors as stored: RoPE by
// rotate_half (x·cos + rotate_half(x)·sin, cos = cat(freqs, freqs)), as in
// transformers' modeling_llama.py. It never uses the permutation.
func hfReferenceLogits(t testing.TB, dir string, ids []int) [][]float64 {
	t.Helper()
	c, err := ReadHFConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	where, _, err := hfWeightFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*safetensors.File{}
	get := func(name string) []float64 {
		file := where[name]
		if files[file] == nil {
			f, err := safetensors.Open(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			files[file] = f
		}
		v, _, err := files[file].Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	linear := func(w, x []float64) []float64 {
		out := make([]float64, len(w)/len(x))
		for i := range out {
			for j, xv := range x {
				out[i] += w[i*len(x)+j] * xv
			}
		}
		return out
	}
	rms := func(x, w []float64) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(len(x))+float64(c.NormEps))
		out := make([]float64, len(x))
		for i := range x {
			out[i] = w[i] * x[i] * inv
		}
		return out
	}
	hd := c.HeadDim()
	rope := func(x []float64, pos int) {
		for h := 0; h < len(x); h += hd {
			head := slices.Clone(x[h : h+hd])
			for i := range hd {
				freq := math.Pow(float64(c.RopeTheta), -float64(2*(i%(hd/2)))/float64(hd))
				sin, cos := math.Sincos(float64(pos) * freq)
				var rot float64 // rotate_half(x) = cat(−x2, x1)
				if i < hd/2 {
					rot = -head[i+hd/2]
				} else {
					rot = head[i-hd/2]
				}
				x[h+i] = head[i]*cos + rot*sin
			}
		}
	}
	T := len(ids)
	emb := get("model.embed_tokens.weight")
	xs := make([][]float64, T)
	for p, id := range ids {
		xs[p] = slices.Clone(emb[id*c.Dim : (id+1)*c.Dim])
	}
	for l := range c.Layers {
		pre := fmt.Sprintf("model.layers.%d.", l)
		wq, wk, wv, wo := get(pre+"self_attn.q_proj.weight"), get(pre+"self_attn.k_proj.weight"), get(pre+"self_attn.v_proj.weight"), get(pre+"self_attn.o_proj.weight")
		n1, n2 := get(pre+"input_layernorm.weight"), get(pre+"post_attention_layernorm.weight")
		wg, wu, wd := get(pre+"mlp.gate_proj.weight"), get(pre+"mlp.up_proj.weight"), get(pre+"mlp.down_proj.weight")
		qs, ks, vs := make([][]float64, T), make([][]float64, T), make([][]float64, T)
		for p := range T {
			h := rms(xs[p], n1)
			qs[p], ks[p], vs[p] = linear(wq, h), linear(wk, h), linear(wv, h)
			rope(qs[p], p)
			rope(ks[p], p)
		}
		for p := range T {
			att := make([]float64, c.Dim)
			for h := range c.Heads {
				kh := h / (c.Heads / c.KVHeads)
				sc := make([]float64, p+1)
				mx := math.Inf(-1)
				for s := range p + 1 {
					for i := range hd {
						sc[s] += qs[p][h*hd+i] * ks[s][kh*hd+i]
					}
					sc[s] /= math.Sqrt(float64(hd))
					mx = max(mx, sc[s])
				}
				var sum float64
				for s := range sc {
					sc[s] = math.Exp(sc[s] - mx)
					sum += sc[s]
				}
				for s := range sc {
					for i := range hd {
						att[h*hd+i] += sc[s] / sum * vs[s][kh*hd+i]
					}
				}
			}
			o := linear(wo, att)
			for i := range o {
				xs[p][i] += o[i]
			}
			h := rms(xs[p], n2)
			g, u := linear(wg, h), linear(wu, h)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			d := linear(wd, g)
			for i := range d {
				xs[p][i] += d[i]
			}
		}
	}
	fn := get("model.norm.weight")
	head := "lm_head.weight"
	if _, ok := where[head]; !ok || c.SharedClassifier {
		head = "model.embed_tokens.weight"
	}
	wout := get(head)
	out := make([][]float64, T)
	for p := range T {
		out[p] = linear(wout, rms(xs[p], fn))
	}
	return out
}

// TestLoadHFMatchesTransformersConventions checks LoadHF + Forward against
// the independent float64 Hugging Face forward pass on a random GQA model
// with an untied head: this is what pins the direction of the q/k row
// permutation without PyTorch.
func TestLoadHFMatchesTransformersConventions(t *testing.T) {
	cfg, ws := hfRandom(7)
	ids := []int{3, 17, 39, 0, 22, 22, 5, 31, 8, 1, 14, 27, 36, 2, 9, 11}
	for _, dtype := range []string{"F32", "BF16"} {
		dir := t.TempDir()
		hfWriteFolder(t, dir, cfg, ws, dtype, 1)
		m, err := LoadHF(dir, quant.F32)
		if err != nil {
			t.Fatal(err)
		}
		if m.Output == m.Embed || m.SharedClassifier {
			t.Fatal("lm_head.weight is present and untied: it must be loaded, not shared")
		}
		if m.RopeTheta != 500 {
			t.Fatalf("rope_parameters.rope_theta 500 read as %g", m.RopeTheta)
		}
		want := hfReferenceLogits(t, dir, ids)
		diff, scale := hfMaxDiff(hfLogits(m, ids), want)
		t.Logf("%s: max |Δlogit| %.3g, logits up to %.3g", dtype, diff, scale)
		if diff > 1e-4*scale {
			t.Errorf("%s: logits differ from the float64 transformers-convention reference by %g (scale %g)", dtype, diff, scale)
		}
		// Without the permutation the model is wrong: the check has teeth.
		bad, err := LoadHF(dir, quant.F32)
		if err != nil {
			t.Fatal(err)
		}
		for l := range bad.Layers {
			for _, p := range []Proj{ProjQ, ProjK} {
				w := bad.Layers[l].Weight(p)
				heads := bad.Heads
				if p == ProjK {
					heads = bad.KVHeads
				}
				copy(w.Data, quantF32Bytes(hfToRotateHalf(w.Float32(), heads, w.Cols)))
			}
		}
		d, _ := hfMaxDiff(hfLogits(bad, ids), want)
		t.Logf("%s: without the q/k permutation: max |Δlogit| %.3g", dtype, d)
		if d < 100*diff || d < 1e-3*scale {
			t.Errorf("%s: skipping the RoPE permutation changes the logits by only %g: the test cannot tell", dtype, d)
		}

		// The fixture comparison used for transformers' own output, run on
		// this reference.
		ref := hfFixture{Tokens: ids, Logits: want}
		b, err := json.Marshal(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "logits.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		hfCheckFixture(t, dir)
	}
}

// quantF32Bytes encodes v as little-endian float32.
func quantF32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// hfFixture is testdata/hf/*/logits.json, written by make_tiny_llama.py.
type hfFixture struct {
	Tokens []int       `json:"tokens"`
	Logits [][]float64 `json:"logits"`
}

// hfCheckFixture loads the model folder dir and compares its logits with
// dir/logits.json to 1e-4 of the largest reference logit.
func hfCheckFixture(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "logits.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx hfFixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatalf("%s/logits.json: %v", dir, err)
	}
	m, err := LoadHF(dir, quant.F32)
	if err != nil {
		t.Fatal(err)
	}
	if len(fx.Tokens) == 0 || len(fx.Logits) != len(fx.Tokens) {
		t.Fatalf("%s/logits.json: %d tokens, %d logit rows", dir, len(fx.Tokens), len(fx.Logits))
	}
	for _, row := range fx.Logits {
		if len(row) != m.Vocab {
			t.Fatalf("%s/logits.json: a row of %d logits, the model's vocabulary is %d", dir, len(row), m.Vocab)
		}
	}
	diff, scale := hfMaxDiff(hfLogits(m, fx.Tokens), fx.Logits)
	t.Logf("%s: max |Δlogit| %.3g, logits up to %.3g", dir, diff, scale)
	if diff > 1e-4*scale {
		t.Errorf("%s: logits differ from the reference by %g (tolerance 1e-4 × %g)", dir, diff, scale)
	}
}

// TestLoadHFTransformersFixture compares with logits computed by PyTorch:
// by transformers itself (tiny-llama*, made by make_tiny_llama.py) and by a
// PyTorch transcription of its LlamaForCausalLM forward over the same random
// weights (tiny-llama-torch*, made by make_tiny_llama_torch.py).
func TestLoadHFTransformersFixture(t *testing.T) {
	scripts := map[string]string{
		"tiny-llama":               "make_tiny_llama.py where torch and transformers are installed",
		"tiny-llama-sharded":       "make_tiny_llama.py where torch and transformers are installed",
		"tiny-llama-torch":         "make_tiny_llama_torch.py where torch is installed",
		"tiny-llama-torch-sharded": "make_tiny_llama_torch.py where torch is installed",
		"tiny-qwen2-torch":         "make_tiny_llama_torch.py where torch is installed",
		"tiny-gemma-torch":         "make_tiny_gemma_torch.py where torch is installed",
		"tiny-gemma-wide-torch":    "make_tiny_gemma_torch.py where torch is installed",
		"tiny-qwen3-torch":         "make_tiny_qwen3_torch.py where torch is installed",
	}
	for _, name := range []string{"tiny-llama", "tiny-llama-sharded", "tiny-llama-torch", "tiny-llama-torch-sharded", "tiny-qwen2-torch", "tiny-gemma-torch", "tiny-gemma-wide-torch", "tiny-qwen3-torch"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("..", "..", "testdata", "hf", name)
			if _, err := os.Stat(filepath.Join(dir, "logits.json")); err != nil {
				t.Skipf("no PyTorch fixture in %s: run testdata/hf/%s (see docs/reference-fixtures.md)", dir, scripts[name])
			}
			hfCheckFixture(t, dir)
		})
	}
}

// TestReadHFConfig covers the config.json variants LoadHF must accept and
// the ones it must refuse with a reason.
func TestReadHFConfig(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"model_type": "llama", "hidden_size": 64, "intermediate_size": 96,
			"num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 40}
	}
	ok := []struct {
		name string
		edit func(map[string]any)
		want Config
	}{
		{"defaults", func(map[string]any) {},
			Config{Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 4, Vocab: 40, SeqLen: 2048, NormEps: 1e-6, RopeTheta: 10000}},
		{"smollm-like", func(c map[string]any) {
			c["num_key_value_heads"] = 2
			c["rope_theta"] = 100000.0
			c["tie_word_embeddings"] = true
			c["max_position_embeddings"] = 8192
			c["rms_norm_eps"] = 1e-5
			c["head_dim"] = 16
			c["rope_scaling"] = nil
		}, Config{Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 40, SeqLen: 8192, NormEps: 1e-5, RopeTheta: 100000, SharedClassifier: true}},
		{"qwen2: biases, window listed but off", func(c map[string]any) {
			c["model_type"] = "qwen2"
			c["sliding_window"] = 32
			c["use_sliding_window"] = false
			c["rope_theta"] = 1e6
		}, Config{Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 4, Vocab: 40, SeqLen: 2048, NormEps: 1e-6, RopeTheta: 1e6, Arch: ArchQwen2}},
		{"gemma: ties by default, GELU", func(c map[string]any) {
			c["model_type"] = "gemma"
			c["hidden_act"] = "gelu"
			c["hidden_activation"] = "gelu_pytorch_tanh"
			c["head_dim"] = 16
		}, Config{Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 4, Vocab: 40, SeqLen: 2048, NormEps: 1e-6, RopeTheta: 10000, Arch: ArchGemma, SharedClassifier: true}},
		{"heads wider than width/heads (Gemma 7B, Qwen3)", func(c map[string]any) {
			c["head_dim"] = 32
		}, Config{Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 4, Vocab: 40, SeqLen: 2048, NormEps: 1e-6, RopeTheta: 10000, HeadSize: 32}},
		{"mistral sliding window", func(c map[string]any) {
			c["model_type"] = "mistral"
			c["max_position_embeddings"] = 32768
			c["sliding_window"] = 4096
		}, Config{Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 4, Vocab: 40, SeqLen: 4096, NormEps: 1e-6, RopeTheta: 10000}},
		{"architectures only, default rope_type", func(c map[string]any) {
			delete(c, "model_type")
			c["architectures"] = []string{"LlamaForCausalLM"}
			c["rope_scaling"] = map[string]any{"rope_type": "default", "rope_theta": 5e5}
		}, Config{Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 4, Vocab: 40, SeqLen: 2048, NormEps: 1e-6, RopeTheta: 5e5}},
	}
	for _, tc := range ok {
		c := base()
		tc.edit(c)
		b, _ := json.Marshal(c)
		got, err := parseHFConfig(b)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
		} else if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	bad := []struct {
		edit func(map[string]any)
		want string
	}{
		{func(c map[string]any) { c["model_type"] = "gemma3n" }, `model_type "gemma3n" is not supported: orchmind loads model_type llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text and gemma3`},
		{func(c map[string]any) {
			c["model_type"] = "gemma"
			c["hidden_activation"] = "relu"
		}, `hidden_activation "relu" is not supported`},
		{func(c map[string]any) { c["head_dim"] = 15 }, "head_dim 15 must be positive and even"},
		{func(c map[string]any) { delete(c, "model_type") }, "no model_type"},
		{func(c map[string]any) {
			c["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0}
		}, `rope_scaling llama3 with factor 32, low_freq_factor 4, high_freq_factor 1`},
		{func(c map[string]any) { c["rope_scaling"] = map[string]any{"type": "linear", "factor": 0.5} }, `rope_scaling linear needs a factor ≥ 1`},
		{func(c map[string]any) { c["rope_scaling"] = map[string]any{"type": "dynamic", "factor": 2.0} }, `"dynamic"`},
		{func(c map[string]any) { c["rope_parameters"] = map[string]any{"rope_type": "yarn"} }, `"yarn"`},
		{func(c map[string]any) { c["hidden_act"] = "gelu" }, "hidden_act"},
		{func(c map[string]any) { c["attention_bias"] = true }, "attention_bias"},
		{func(c map[string]any) { c["num_key_value_heads"] = 3 }, "not a multiple of num_key_value_heads 3"},
		{func(c map[string]any) { c["num_attention_heads"] = 5 }, "hidden_size 64 is not num_attention_heads 5"},
		{func(c map[string]any) { delete(c, "hidden_size") }, "hidden_size 0"},
		{func(c map[string]any) { c["vocab_size"] = -1 }, "out of range"},
		{func(c map[string]any) { c["rope_theta"] = -1.0 }, "rope_theta"},
	}
	for _, tc := range bad {
		c := base()
		tc.edit(c)
		b, _ := json.Marshal(c)
		if _, err := parseHFConfig(b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %v: error %v, want one containing %q", c, err, tc.want)
		}
	}
	if _, err := parseHFConfig([]byte("{")); err == nil {
		t.Error("truncated JSON accepted")
	}
	// Llama 3.1+ rope_scaling gives its parameters (defaults where absent).
	c := base()
	c["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 32.0, "original_max_position_embeddings": 8192}
	b, _ := json.Marshal(c)
	_, rope, err := parseHFConfigRope(b)
	if err != nil || rope == nil || *rope != (llama3Rope{factor: 32, low: 1, high: 4, original: 8192}) {
		t.Errorf("llama3 rope_scaling: %+v, %v", rope, err)
	}
}

// TestLoadHFRejectsBadFolders checks that broken folders give errors that
// name the file and the tensor at fault.
func TestLoadHFRejectsBadFolders(t *testing.T) {
	cfg, ws := hfRandom(3)
	good := func(t *testing.T, shards int) string {
		dir := t.TempDir()
		hfWriteFolder(t, dir, cfg, ws, "F32", shards)
		return dir
	}
	expect := func(t *testing.T, dir string, want ...string) {
		t.Helper()
		_, err := LoadHF(dir, quant.Q8_0)
		if err == nil {
			t.Fatalf("bad folder loaded; want an error containing %q", want)
		}
		t.Log(err)
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	}
	t.Run("good", func(t *testing.T) {
		if _, err := LoadHF(good(t, 1), quant.Q8_0); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadHF(good(t, 2), quant.Q4_1); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing config", func(t *testing.T) {
		dir := good(t, 1)
		os.Remove(filepath.Join(dir, HFConfigFile))
		expect(t, dir, dir, "no config.json")
	})
	t.Run("unknown model_type", func(t *testing.T) {
		dir := good(t, 1)
		os.WriteFile(filepath.Join(dir, HFConfigFile), []byte(`{"model_type":"gpt2","n_embd":64}`), 0o644)
		expect(t, dir, filepath.Join(dir, HFConfigFile), `"gpt2"`)
	})
	t.Run("no weights", func(t *testing.T) {
		dir := good(t, 1)
		os.Rename(filepath.Join(dir, HFWeightsFile), filepath.Join(dir, "pytorch_model.bin"))
		expect(t, dir, "no model.safetensors", "pytorch_model.bin is refused")
	})
	t.Run("shape mismatch", func(t *testing.T) {
		ws2 := slices.Clone(ws)
		for i, w := range ws2 {
			if w.name == "model.layers.1.self_attn.k_proj.weight" {
				ws2[i] = hfW{w.name, []int64{64, 64}, make([]float32, 64*64)}
			}
		}
		dir := t.TempDir()
		hfWriteFolder(t, dir, cfg, ws2, "F32", 1)
		expect(t, dir, filepath.Join(dir, HFWeightsFile), `"model.layers.1.self_attn.k_proj.weight"`, "shape [64 64]", "[32 64]")
	})
	t.Run("missing tensor", func(t *testing.T) {
		ws2 := slices.DeleteFunc(slices.Clone(ws), func(w hfW) bool { return w.name == "model.layers.1.mlp.up_proj.weight" })
		dir := t.TempDir()
		hfWriteFolder(t, dir, cfg, ws2, "F16", 1)
		expect(t, dir, filepath.Join(dir, HFWeightsFile), `no tensor "model.layers.1.mlp.up_proj.weight"`)
	})
	t.Run("missing from index", func(t *testing.T) {
		ws2 := slices.DeleteFunc(slices.Clone(ws), func(w hfW) bool { return w.name == "model.norm.weight" })
		dir := t.TempDir()
		hfWriteFolder(t, dir, cfg, ws2, "F32", 3)
		expect(t, dir, filepath.Join(dir, HFIndexFile), `no tensor "model.norm.weight"`)
	})
	t.Run("index points at the wrong shard", func(t *testing.T) {
		dir := good(t, 2)
		p := filepath.Join(dir, HFIndexFile)
		b, _ := os.ReadFile(p)
		var idx map[string]map[string]any
		json.Unmarshal(b, &idx)
		idx["weight_map"]["model.embed_tokens.weight"] = "model-00002-of-00002.safetensors"
		b, _ = json.Marshal(idx)
		os.WriteFile(p, b, 0o644)
		expect(t, dir, filepath.Join(dir, "model-00002-of-00002.safetensors"), `"model.embed_tokens.weight"`, "not in this file")
	})
	t.Run("index escapes the folder", func(t *testing.T) {
		dir := good(t, 2)
		p := filepath.Join(dir, HFIndexFile)
		os.WriteFile(p, []byte(`{"weight_map":{"model.norm.weight":"../../etc/x.safetensors"}}`), 0o644)
		expect(t, dir, p, "not a .safetensors file inside the model folder")
	})
	t.Run("missing shard", func(t *testing.T) {
		dir := good(t, 2)
		os.Remove(filepath.Join(dir, "model-00002-of-00002.safetensors"))
		expect(t, dir, filepath.Join(dir, HFIndexFile), "shard model-00002-of-00002.safetensors listed there is missing")
	})
	t.Run("truncated", func(t *testing.T) {
		dir := good(t, 1)
		p := filepath.Join(dir, HFWeightsFile)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		// The last tensor by name is model.norm.weight (64 float32).
		os.Truncate(p, st.Size()-100)
		expect(t, dir, p, `"model.norm.weight"`, "truncated")
		os.Truncate(p, 5)
		expect(t, dir, p, "truncated")
	})
	t.Run("bias", func(t *testing.T) {
		ws2 := append(slices.Clone(ws), hfW{"model.layers.0.self_attn.q_proj.bias", []int64{64}, make([]float32, 64)})
		dir := t.TempDir()
		hfWriteFolder(t, dir, cfg, ws2, "F32", 1)
		expect(t, dir, `"model.layers.0.self_attn.q_proj.bias"`, "biases are not supported")
	})
	t.Run("integer weights", func(t *testing.T) {
		dir := t.TempDir()
		hfWriteFolder(t, dir, cfg, ws, "F32", 1)
		f, err := safetensors.Open(filepath.Join(dir, HFWeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		var ts []safetensors.WriteTensor
		for _, n := range f.Names() {
			raw, _ := f.Raw(n)
			info, _ := f.Info(n)
			wt := safetensors.WriteTensor{Name: n, DType: info.DType, Shape: info.Shape, Data: raw}
			if n == "model.layers.0.mlp.gate_proj.weight" {
				wt.DType, wt.Data = "I8", raw[:len(raw)/4]
			}
			ts = append(ts, wt)
		}
		if err := safetensors.Write(filepath.Join(dir, HFWeightsFile), ts, nil); err != nil {
			t.Fatal(err)
		}
		expect(t, dir, `"model.layers.0.mlp.gate_proj.weight"`, "dtype I8")
	})
	t.Run("bad type", func(t *testing.T) {
		_, err := LoadHF(good(t, 1), quant.Type(9999))
		if err == nil {
			t.Fatal("unknown quant type accepted")
		}
	})
	t.Run("a file, not the folder", func(t *testing.T) {
		dir := good(t, 1)
		expect(t, filepath.Join(dir, HFWeightsFile), "not a folder")
	})
	t.Run("not a folder", func(t *testing.T) {
		_, err := LoadHF(filepath.Join(t.TempDir(), "nope"), quant.F32)
		if err == nil || !errors.Is(err, fs.ErrNotExist) && !strings.Contains(err.Error(), "no config.json") {
			t.Fatal("missing folder accepted")
		}
	})
}

// BenchmarkLoadHF loads a random checkpoint with SmolLM-135M's dimensions
// (576 wide, 30 layers, 9/3 heads, MLP 1536, vocabulary 49152, tied head) as
// one BF16 model.safetensors of 270 MB, converting to Q8_0. It reports the
// load rate and, on Linux, the peak resident memory of the load alone.
func BenchmarkLoadHF(b *testing.B) {
	const dim, hid, layers, heads, kvHeads, vocab = 576, 1536, 30, 9, 3, 49152
	kv := int64(dim / heads * kvHeads)
	dir := b.TempDir()
	cfg := map[string]any{"model_type": "llama", "hidden_size": dim, "intermediate_size": hid,
		"num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kvHeads,
		"vocab_size": vocab, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
		"rope_theta": 10000.0, "tie_word_embeddings": true}
	cb, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, HFConfigFile), cb, 0o644); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	bf16 := func(name string, shape ...int64) safetensors.WriteTensor {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		data := make([]byte, 2*n)
		for i := int64(0); i < n; i++ {
			binary.LittleEndian.PutUint16(data[2*i:], quant.F32ToBF16(float32(r.NormFloat64()*0.05)))
		}
		return safetensors.WriteTensor{Name: name, DType: "BF16", Shape: shape, Data: data}
	}
	ts := []safetensors.WriteTensor{bf16("model.embed_tokens.weight", vocab, dim), bf16("model.norm.weight", dim)}
	for l := range layers {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts, bf16(p+"input_layernorm.weight", dim), bf16(p+"post_attention_layernorm.weight", dim),
			bf16(p+"self_attn.q_proj.weight", dim, dim), bf16(p+"self_attn.k_proj.weight", kv, dim),
			bf16(p+"self_attn.v_proj.weight", kv, dim), bf16(p+"self_attn.o_proj.weight", dim, dim),
			bf16(p+"mlp.gate_proj.weight", hid, dim), bf16(p+"mlp.up_proj.weight", hid, dim),
			bf16(p+"mlp.down_proj.weight", dim, hid))
	}
	path := filepath.Join(dir, HFWeightsFile)
	if err := safetensors.Write(path, ts, nil); err != nil {
		b.Fatal(err)
	}
	ts = nil
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	debug.FreeOSMemory()
	resetPeak := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	b.SetBytes(st.Size())
	b.ResetTimer()
	var m *Model
	for b.Loop() {
		m, err = LoadHF(dir, quant.Q8_0)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(m.Bytes())/1e6, "model-MB")
	if resetPeak {
		if s, err := os.ReadFile("/proc/self/status"); err == nil {
			for line := range strings.Lines(string(s)) {
				var kb float64
				if _, err := fmt.Sscanf(line, "VmHWM: %f kB", &kb); err == nil {
					b.ReportMetric(kb/1e3, "peak-RSS-MB")
				}
			}
		}
	}
}

// TestRoPERowPermutation pins the row order against numpy's
// w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2) worked out by hand for two
// heads of 8 rows, and checks convertRows against whole-matrix quantization.
func TestRoPERowPermutation(t *testing.T) {
	from := ropeRowSource(16, 2)
	var got []int
	for r := range 16 {
		got = append(got, from(r))
	}
	want := []int{0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15}
	if !slices.Equal(got, want) {
		t.Fatalf("row sources %v, want %v", got, want)
	}

	r := rand.New(rand.NewPCG(5, 6))
	const rows, cols = 300, 96
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	raw := quantF32Bytes(v)
	id := func(r int) int { return r }
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q4_1} {
		data, err := convertRows(quant.F32, raw, rows, cols, typ, id)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := quant.Quantize(typ, v, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(data, whole) {
			t.Errorf("%s: chunked parallel conversion differs from quantizing the whole matrix", typ)
		}
	}
	rev := func(r int) int { return rows - 1 - r }
	data, err := convertRows(quant.F32, raw, rows, cols, quant.F32, rev)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(data[:4*cols], raw[(rows-1)*4*cols:]) {
		t.Error("row mapping not applied")
	}
	if _, err := convertRows(quant.F32, raw[:len(raw)-4], rows, cols, quant.Q8_0, id); err == nil {
		t.Error("short data accepted")
	}
}

// FuzzParseHFConfig checks that any config.json either is refused or gives
// an architecture the forward pass can run.
func FuzzParseHFConfig(f *testing.F) {
	f.Add([]byte(`{"model_type":"llama","hidden_size":64,"intermediate_size":96,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":40}`))
	f.Add([]byte(`{"model_type":"mistral","hidden_size":64,"intermediate_size":96,"num_hidden_layers":1,"num_attention_heads":8,"vocab_size":9,"sliding_window":3,"rope_parameters":{"rope_theta":1e6}}`))
	f.Add([]byte(`{"architectures":["LlamaForCausalLM"],"head_dim":null,"rope_scaling":{"type":"default"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseHFConfig(data)
		if err != nil {
			return
		}
		if c.Dim <= 0 || c.HiddenDim <= 0 || c.Layers <= 0 || c.Vocab <= 0 || c.SeqLen <= 0 ||
			c.Heads <= 0 || c.KVHeads <= 0 || c.Dim%c.Heads != 0 || c.Heads%c.KVHeads != 0 || c.HeadDim()%2 != 0 ||
			!(c.NormEps > 0) || !(c.RopeTheta > 0) {
			t.Fatalf("accepted an impossible config %+v from %q", c, data)
		}
	})
}
