package model

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"orchmind/engine/gguf"
	"orchmind/engine/quant"
	"orchmind/engine/tensor"
)

// gemma23Fixture loads testdata/hf/name (made by make_tiny_gemma23_torch.py)
// and its reference logits, skipping when absent.
func gemma23Fixture(t *testing.T, name string) (*Model, hfFixture, string) {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "hf", name)
	b, err := os.ReadFile(filepath.Join(dir, "logits.json"))
	if err != nil {
		t.Skipf("no PyTorch fixture in %s: run testdata/hf/make_tiny_gemma23_torch.py (see docs/reference-fixtures.md)", dir)
	}
	var fx hfFixture
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	m, err := LoadHF(dir, quant.F32)
	if err != nil {
		t.Fatal(err)
	}
	return m, fx, dir
}

// TestGemma23MatchesPyTorch compares Gemma 2 and Gemma 3 logits with the
// PyTorch transcriptions of transformers' forward passes: every position,
// one token at a time and as one prefill, within 2e-5 of the largest logit.
// The fixtures run 24 tokens against a window of 5, local and global layers
// on different RoPE bases (and linear scaling), soft-capping, q/k norms,
// heads of 32 in a width of 64 and query_pre_attn_scalar 24.
func TestGemma23MatchesPyTorch(t *testing.T) {
	for _, c := range []struct {
		name, arch string
		layers     int
	}{{"tiny-gemma3-torch", ArchGemma3, 7}, {"tiny-gemma3-mm-torch", ArchGemma3, 7}, {"tiny-gemma2-torch", ArchGemma2, 3}} {
		t.Run(c.name, func(t *testing.T) {
			m, fx, _ := gemma23Fixture(t, c.name)
			if m.Arch != c.arch || m.Layers[0].PostAttnNorm == nil || m.SlidingWindow != 5 || m.QueryScale != 24 || m.HeadDim() != 32 || len(m.Layers) != c.layers {
				t.Fatalf("loaded %+v", m.Config)
			}
			if (m.Arch == ArchGemma3) != (m.Layers[0].QNorm != nil) {
				t.Fatal("q/k norms: Gemma 3 has them, Gemma 2 not")
			}
			var sliding []bool
			for l := range m.Layers {
				sliding = append(sliding, m.Sliding(l))
			}
			want := []bool{true, false, true}
			if m.Arch == ArchGemma3 {
				want = []bool{true, true, true, true, true, false, true}
				if m.RopeLocalTheta != 10000 || m.RopeTheta != 1e6 || m.RopeScale != 8 || m.AttnSoftcap != 0 || m.FinalSoftcap != 0 {
					t.Fatalf("gemma3 RoPE/caps: %+v", m.Config)
				}
			} else if m.AttnSoftcap != 5 || m.FinalSoftcap != 8 {
				t.Fatalf("gemma2 caps: %+v", m.Config)
			}
			if !slices.Equal(sliding, want) {
				t.Fatalf("sliding layers %v, want %v", sliding, want)
			}
			if strings.Contains(c.name, "-mm-") != (m.Skipped != "") {
				t.Fatalf("Skipped = %q", m.Skipped)
			}
			got := hfLogits(m, fx.Tokens)
			diff, scale := hfMaxDiff(got, fx.Logits)
			t.Logf("%s: max |Δlogit| %.3g over logits up to %.3g (%.2g relative)", c.name, diff, scale, diff/scale)
			if diff > 2e-5*scale {
				t.Errorf("logits differ from PyTorch's by %g (tolerance 2e-5 × %g)", diff, scale)
			}
			// Prefill of all the tokens at once: the last position's logits.
			last := m.NewState().Prefill(fx.Tokens, 0)
			d, _ := hfMaxDiff([][]float32{last}, fx.Logits[len(fx.Logits)-1:])
			if d > 2e-5*scale {
				t.Errorf("prefill logits differ from PyTorch's by %g", d)
			}
		})
	}
}

// TestGemma23FixtureIsSensitive: each feature the fixtures exercise moves
// the logits far beyond the tolerance when switched off, so the match above
// proves each of them.
func TestGemma23FixtureIsSensitive(t *testing.T) {
	for _, name := range []string{"tiny-gemma3-torch", "tiny-gemma2-torch"} {
		m, fx, _ := gemma23Fixture(t, name)
		edits := map[string]func(*Config){
			"no window":       func(c *Config) { c.SlidingWindow = 0 },
			"query scale":     func(c *Config) { c.QueryScale = 0 },
			"window 6":        func(c *Config) { c.SlidingWindow = 6 },
			"all global":      func(c *Config) { c.SlidingPattern = 100 },
			"no sandwich":     nil,
			"other rope base": func(c *Config) { c.RopeLocalTheta, c.RopeTheta = c.RopeTheta, c.RopeLocalTheta+1 },
		}
		if m.Arch == ArchGemma3 {
			edits["no rope scaling"] = func(c *Config) { c.RopeScale = 0 }
		} else {
			edits["no attention cap"] = func(c *Config) { c.AttnSoftcap = 0 }
			edits["no final cap"] = func(c *Config) { c.FinalSoftcap = 0 }
		}
		for what, edit := range edits {
			mm := *m
			if edit == nil {
				mm.Layers = slices.Clone(m.Layers)
				for l := range mm.Layers {
					mm.Layers[l].PostAttnNorm, mm.Layers[l].PostFFNNorm = nil, nil
				}
			} else {
				edit(&mm.Config)
			}
			diff, scale := hfMaxDiff(hfLogits(&mm, fx.Tokens), fx.Logits)
			if diff < 1e-3*scale {
				t.Errorf("%s: %s changes the logits by only %g: the fixture does not exercise it", name, what, diff)
			}
		}
	}
}

// TestGGUFGemma23RoundTrip writes the fixtures as llama.cpp-layout GGUF
// (gemma2/gemma3 names and metadata) and loads them back: the same config,
// every tensor bit for bit, the same logits; writing the reloaded model
// again gives the same bytes.
func TestGGUFGemma23RoundTrip(t *testing.T) {
	for _, name := range []string{"tiny-gemma3-torch", "tiny-gemma3-mm-torch", "tiny-gemma2-torch"} {
		t.Run(name, func(t *testing.T) {
			m, fx, _ := gemma23Fixture(t, name)
			dir := t.TempDir()
			p1, p2 := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
			if err := WriteGGUF(p1, m, "tiny", AsStored, nil, nil); err != nil {
				t.Fatal(err)
			}
			g, f, err := LoadGGUF(p1, AsStored)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if a, _ := f.String("general.architecture"); a != m.Arch {
				t.Fatalf("architecture %q, want %q", a, m.Arch)
			}
			for _, n := range []string{"blk.0.post_attention_norm.weight", "blk.0.post_ffw_norm.weight", "blk.0.ffn_norm.weight"} {
				if _, ok := f.Tensor(n); !ok {
					t.Fatalf("no %s in the file", n)
				}
			}
			if w, _ := f.Uint(m.Arch + ".attention.sliding_window"); w != 5 {
				t.Fatalf("%s.attention.sliding_window = %d", m.Arch, w)
			}
			want := m.Config
			if g.Config != want {
				t.Fatalf("config after GGUF %+v, want %+v", g.Config, want)
			}
			if Fingerprint(g) != Fingerprint(m) {
				t.Fatal("fingerprint changed through GGUF")
			}
			var names []string
			var mats []*tensor.Matrix
			var vecs [][]float32
			m.EachTensor(func(n string, w *tensor.Matrix, v []float32) {
				names, mats, vecs = append(names, n), append(mats, w), append(vecs, v)
			})
			i := 0
			g.EachTensor(func(n string, w *tensor.Matrix, v []float32) {
				if n != names[i] {
					t.Fatalf("tensor %d is %s, want %s", i, n, names[i])
				}
				if w != nil && (w.Type != mats[i].Type || !bytes.Equal(w.Data, mats[i].Data)) {
					t.Errorf("%s differs after GGUF", n)
				}
				if v != nil && !slices.Equal(v, vecs[i]) {
					t.Errorf("%s differs after GGUF", n)
				}
				i++
			})
			a, b := hfLogits(m, fx.Tokens), hfLogits(g, fx.Tokens)
			for pos := range a {
				if !slices.Equal(a[pos], b[pos]) {
					t.Fatalf("position %d: logits differ after GGUF", pos)
				}
			}
			if err := WriteGGUF(p2, g, "tiny", AsStored, nil, nil); err != nil {
				t.Fatal(err)
			}
			b1, _ := os.ReadFile(p1)
			b2, _ := os.ReadFile(p2)
			if !bytes.Equal(b1, b2) {
				t.Fatal("writing the reloaded model gives other bytes")
			}
		})
	}
}

// TestGemma23KVCacheBounded: sliding layers keep a ring of their window
// (plus one prefill batch) however long the sequence, and the ring gives
// the logits of a cache that keeps every position.
func TestGemma23KVCacheBounded(t *testing.T) {
	c := Config{Dim: 32, HiddenDim: 48, Layers: 7, Heads: 2, KVHeads: 1, Vocab: 40, SeqLen: 2048, NormEps: 1e-6,
		RopeTheta: 1e6, Arch: ArchGemma3, HeadSize: 16, SlidingWindow: 7, SlidingPattern: 6, RopeLocalTheta: 10000,
		QueryScale: 16, SharedClassifier: true}
	m := randomGemma(c, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]int, 700)
	for i := range ids {
		ids[i] = rng.IntN(c.Vocab)
	}
	ring, full := m.NewState(), m.NewState()
	for l := range full.kv {
		full.kv[l].ring = 0
	}
	// Prefill most, then one token at a time past the ring's size.
	ring.Prefill(ids[:400], 0)
	full.Prefill(ids[:400], 0)
	var a, b []float32
	for pos := 400; pos < len(ids); pos++ {
		a, b = ring.Forward(ids[pos], pos), full.Forward(ids[pos], pos)
	}
	if d, _ := hfMaxDiff([][]float32{a}, [][]float32{b}); d > 1e-5 {
		t.Fatalf("ring cache logits differ by %g", d)
	}
	kvBytes := int64(4 * 2 * c.KVDim())
	want := 6*kvBytes*int64(c.SlidingWindow+prefillBatch) + kvBytes*int64(len(ids)) // 6 sliding layers: rings
	if got := ring.CacheBytes(); got > want+kvBytes*int64(len(ids)) || got >= full.CacheBytes()/2 {
		t.Fatalf("cache %d bytes (full cache %d), want about %d", got, full.CacheBytes(), want)
	}
}

// randomGemma draws a small model of config c with random weights.
func randomGemma(c Config, seed uint64) *Model {
	rng := rand.New(rand.NewPCG(seed, 7))
	mat := func(r, k int, s float32) *tensor.Matrix {
		v := make([]float32, r*k)
		for i := range v {
			v[i] = s * float32(rng.NormFloat64())
		}
		m, _ := tensor.Quantized(quant.F32, r, k, v)
		return m
	}
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1 + 0.2*float32(rng.NormFloat64())
		}
		return v
	}
	m := &Model{Config: c, Layers: make([]Layer, c.Layers)}
	m.Embed = mat(c.Vocab, c.Dim, 0.3)
	m.Output = m.Embed
	for l := range m.Layers {
		m.Layers[l] = Layer{AttnNorm: vec(c.Dim), FFNNorm: vec(c.Dim), PostAttnNorm: vec(c.Dim), PostFFNNorm: vec(c.Dim),
			Wq: mat(c.QDim(), c.Dim, 0.3), Wk: mat(c.KVDim(), c.Dim, 0.3), Wv: mat(c.KVDim(), c.Dim, 0.2), Wo: mat(c.Dim, c.QDim(), 0.2),
			Gate: mat(c.HiddenDim, c.Dim, 0.2), Up: mat(c.HiddenDim, c.Dim, 0.2), Down: mat(c.Dim, c.HiddenDim, 0.2)}
		if c.QKNorm() {
			m.Layers[l].QNorm, m.Layers[l].KNorm = vec(c.HeadDim()), vec(c.HeadDim())
		}
	}
	m.FinalNorm = vec(c.Dim)
	return m
}

// TestGemmaRefusals: Gemma 3n and other architectures are refused by name
// with the list of what runs; a gemma3 GGUF with tensors a gemma3 model has
// not says which.
func TestGemmaRefusals(t *testing.T) {
	for _, cfg := range []string{
		`{"architectures": ["Gemma3nForConditionalGeneration"], "model_type": "gemma3n", "text_config": {}}`,
		`{"architectures": ["Gemma3nForCausalLM"]}`,
	} {
		_, err := parseHFConfig([]byte(cfg))
		if err == nil || !strings.Contains(err.Error(), "gemma3") || !strings.Contains(err.Error(), "gemma2") {
			t.Errorf("%s: error %v, want a refusal listing what is supported", cfg, err)
		}
	}
	p := filepath.Join(t.TempDir(), "n.gguf")
	if err := gguf.Write(p, []gguf.KV{{Key: "general.architecture", Value: "gemma3n"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(p, AsStored); err == nil || !strings.Contains(err.Error(), `"gemma3n"`) || !strings.Contains(err.Error(), "gemma3 (text)") {
		t.Fatalf("gemma3n GGUF: %v", err)
	}
	m, _, _ := gemma23Fixture(t, "tiny-gemma3-torch")
	q := filepath.Join(t.TempDir(), "g.gguf")
	if err := WriteGGUF(q, m, "tiny", AsStored, nil, nil); err != nil {
		t.Fatal(err)
	}
	r := withTensors(t, q, gguf.WriteTensor{Name: "blk.0.laurel_l.weight", Dims: []uint64{4}, Type: quant.F32, Data: make([]byte, 16)},
		gguf.WriteTensor{Name: "per_layer_token_embd.weight", Dims: []uint64{4}, Type: quant.F32, Data: make([]byte, 16)})
	_, _, err := Load(r, AsStored)
	if err == nil || !strings.Contains(err.Error(), "blk.0.laurel_l.weight") || !strings.Contains(err.Error(), "per_layer_token_embd.weight") {
		t.Fatalf("mixed GGUF: %v", err)
	}
	_ = math.Pi
}

// TestGemma3RealConfigs parses config.json files as Google publishes them:
// Gemma 3 1B (Gemma3ForCausalLM, everything listed) and the 4B multimodal
// checkpoint, whose text_config lists a few fields and leaves the rest to
// transformers' defaults.
func TestGemma3RealConfigs(t *testing.T) {
	one := `{"architectures": ["Gemma3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
	 "attn_logit_softcapping": null, "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": [1, 106],
	 "final_logit_softcapping": null, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 1152,
	 "initializer_range": 0.02, "intermediate_size": 6912, "max_position_embeddings": 32768, "model_type": "gemma3_text",
	 "num_attention_heads": 4, "num_hidden_layers": 26, "num_key_value_heads": 1, "pad_token_id": 0,
	 "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000, "rope_scaling": null,
	 "rope_theta": 1000000, "sliding_window": 512, "sliding_window_pattern": 6, "torch_dtype": "bfloat16",
	 "use_cache": true, "vocab_size": 262144}`
	c, err := parseHFConfig([]byte(one))
	want := Config{Dim: 1152, HiddenDim: 6912, Layers: 26, Heads: 4, KVHeads: 1, Vocab: 262144, SeqLen: 32768, NormEps: 1e-6,
		RopeTheta: 1e6, SharedClassifier: true, Arch: ArchGemma3, HeadSize: 256, SlidingWindow: 512, SlidingPattern: 6,
		RopeLocalTheta: 10000, QueryScale: 256}
	if err != nil || c != want {
		t.Fatalf("Gemma 3 1B: %+v, %v; want %+v", c, err, want)
	}
	four := `{"architectures": ["Gemma3ForConditionalGeneration"], "boi_token_index": 255999, "eoi_token_index": 256000,
	 "eos_token_id": [1, 106], "image_token_index": 262144, "initializer_range": 0.02, "mm_tokens_per_image": 256,
	 "model_type": "gemma3", "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
	 "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
	 "torch_dtype": "bfloat16", "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
	 "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": false}}`
	c, err = parseHFConfig([]byte(four))
	want = Config{Dim: 2560, HiddenDim: 10240, Layers: 34, Heads: 8, KVHeads: 4, Vocab: 262208, SeqLen: 131072, NormEps: 1e-6,
		RopeTheta: 1e6, SharedClassifier: true, Arch: ArchGemma3, HeadSize: 256, SlidingWindow: 1024, SlidingPattern: 6,
		RopeLocalTheta: 10000, QueryScale: 256, RopeScale: 8}
	if err != nil || c != want {
		t.Fatalf("Gemma 3 4B: %+v, %v; want %+v", c, err, want)
	}
	// transformers ≥ 5: RoPE parameters per layer type.
	five := strings.Replace(one, `"rope_scaling": null,`, `"rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 4.0, "rope_theta": 500000},
	 "sliding_attention": {"rope_type": "default", "rope_theta": 20000}},`, 1)
	five = strings.Replace(strings.Replace(five, `"rope_theta": 1000000,`, "", 1), `"rope_local_base_freq": 10000,`, "", 1)
	c, err = parseHFConfig([]byte(five))
	if err != nil || c.RopeTheta != 500000 || c.RopeLocalTheta != 20000 || c.RopeScale != 4 {
		t.Fatalf("rope_parameters per layer type: %+v, %v", c, err)
	}
}
