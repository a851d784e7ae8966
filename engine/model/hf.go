package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"orchmind/engine/quant"
	"orchmind/engine/safetensors"
	"orchmind/engine/tensor"
)

// Files of a Hugging Face model folder.
const (
	HFConfigFile  = "config.json"
	HFWeightsFile = "model.safetensors"
	HFIndexFile   = "model.safetensors.index.json"
)

// hfConfig is the part of a Hugging Face config.json that a Llama-family
// model needs. Pointers tell "absent or null" from zero.
type hfConfig struct {
	Architectures         []string       `json:"architectures"`
	ModelType             string         `json:"model_type"`
	HiddenSize            int            `json:"hidden_size"`
	IntermediateSize      int            `json:"intermediate_size"`
	NumHiddenLayers       int            `json:"num_hidden_layers"`
	NumAttentionHeads     int            `json:"num_attention_heads"`
	NumKeyValueHeads      *int           `json:"num_key_value_heads"`
	VocabSize             int            `json:"vocab_size"`
	MaxPositionEmbeddings *int           `json:"max_position_embeddings"`
	RMSNormEps            *float64       `json:"rms_norm_eps"`
	RopeTheta             *float64       `json:"rope_theta"`
	TieWordEmbeddings     *bool          `json:"tie_word_embeddings"`
	HeadDim               *int           `json:"head_dim"`
	HiddenAct             *string        `json:"hidden_act"`
	HiddenActivation      *string        `json:"hidden_activation"` // Gemma: wins over hidden_act
	AttentionBias         *bool          `json:"attention_bias"`
	MLPBias               *bool          `json:"mlp_bias"`
	SlidingWindow         *int           `json:"sliding_window"`
	UseSlidingWindow      *bool          `json:"use_sliding_window"` // Qwen2
	RopeScaling           map[string]any `json:"rope_scaling"`
	RopeParameters        map[string]any `json:"rope_parameters"` // transformers ≥ 5
	// Gemma 2 and 3.
	QueryPreAttnScalar    *float64 `json:"query_pre_attn_scalar"`
	AttnLogitSoftcapping  *float64 `json:"attn_logit_softcapping"`
	FinalLogitSoftcapping *float64 `json:"final_logit_softcapping"`
	RopeLocalBaseFreq     *float64 `json:"rope_local_base_freq"`
	SlidingWindowPattern  *int     `json:"sliding_window_pattern"`
	LayerTypes            []string `json:"layer_types"`
}

// gemmaDefaults returns the config that transformers' Gemma2Config or
// Gemma3TextConfig assumes for each field a config.json leaves out (the
// text_config of Gemma 3 4B lists only a few).
func gemmaDefaults(mt string) hfConfig {
	i := func(v int) *int { return &v }
	f := func(v float64) *float64 { return &v }
	b := true
	act := "gelu_pytorch_tanh"
	h := hfConfig{HiddenSize: 2304, IntermediateSize: 9216, NumHiddenLayers: 26, NumAttentionHeads: 8,
		NumKeyValueHeads: i(4), HeadDim: i(256), RMSNormEps: f(1e-6), TieWordEmbeddings: &b,
		HiddenActivation: &act, QueryPreAttnScalar: f(256), SlidingWindow: i(4096)}
	if mt == "gemma2" {
		h.VocabSize, h.MaxPositionEmbeddings = 256000, i(8192)
		h.AttnLogitSoftcapping, h.FinalLogitSoftcapping = f(50), f(30)
		return h
	}
	h.VocabSize, h.MaxPositionEmbeddings = 262208, i(131072) // rope_theta 1e6: see parseHFConfigRope
	h.RopeLocalBaseFreq, h.SlidingWindowPattern = f(10000), i(6)
	return h
}

// hfModelTypes are the config.json model_type values LoadHF accepts: the
// architectures whose weights and forward pass are exactly Llama's.
var hfModelTypes = map[string]string{
	"LlamaForCausalLM":   "llama",
	"MistralForCausalLM": "mistral",
	"Qwen2ForCausalLM":   "qwen2",
	"GemmaForCausalLM":   "gemma",
	"Qwen3ForCausalLM":   "qwen3",
	"Gemma2ForCausalLM":  "gemma2",
	"Gemma3ForCausalLM":  "gemma3_text",
	// The text model of the multimodal Gemma 3 (4B and larger); the vision
	// tower and projector are skipped.
	"Gemma3ForConditionalGeneration": "gemma3",
}

// ReadHFConfig reads dir/config.json of a Hugging Face Llama-family model
// (model_type llama, as in Llama 2/3, SmolLM and TinyLlama, or mistral) and
// returns its architecture. It refuses, with the reason, what the forward
// pass of this package cannot run exactly: biases, activations other than
// SiLU (GELU for Gemma), RoPE scaling other than Llama 3's.
func ReadHFConfig(dir string) (Config, error) {
	c, _, err := readHFConfig(dir)
	return c, err
}

// llama3Rope holds the rope_scaling parameters of Llama 3.1+ ("llama3").
type llama3Rope struct {
	factor, low, high float64
	original          int
}

func readHFConfig(dir string) (Config, *llama3Rope, error) {
	path := filepath.Join(dir, HFConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Config{}, nil, fmt.Errorf("model %s: no %s: a Hugging Face model folder holds config.json beside model.safetensors (download the whole repository, not only the weights)", dir, HFConfigFile)
		}
		return Config{}, nil, fmt.Errorf("model: %w", err)
	}
	c, rope, err := parseHFConfigRope(data)
	if err != nil {
		return Config{}, nil, fmt.Errorf("model %s: %w", path, err)
	}
	return c, rope, nil
}

// parseHFConfig turns the bytes of a config.json into a Config.
func parseHFConfig(data []byte) (Config, error) {
	c, _, err := parseHFConfigRope(data)
	return c, err
}

// parseHFConfigRope is parseHFConfig that also returns Llama 3 RoPE scaling
// parameters (nil for plain RoPE).
func parseHFConfigRope(data []byte) (Config, *llama3Rope, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return Config{}, nil, fmt.Errorf("not valid JSON for a model config: %w", err)
	}
	mt := h.ModelType
	if mt == "" {
		for _, a := range h.Architectures {
			if t, ok := hfModelTypes[a]; ok {
				mt = t
			}
		}
	}
	const known = "orchmind loads model_type llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text and gemma3 (its text model): Llama 2/3, SmolLM, TinyLlama, Mistral, Qwen2/2.5, Qwen3, Gemma 1/2/3"
	if mt == "gemma3" {
		// Gemma3ForConditionalGeneration: the language model's config is
		// text_config; the vision tower is not run.
		var outer struct {
			TextConfig json.RawMessage `json:"text_config"`
		}
		if err := json.Unmarshal(data, &outer); err != nil || len(outer.TextConfig) == 0 || string(outer.TextConfig) == "null" {
			return Config{}, nil, errors.New("model_type gemma3 without a text_config: a Gemma3ForConditionalGeneration config.json holds the language model's settings in text_config")
		}
		data, mt = outer.TextConfig, "gemma3_text"
	}
	switch mt {
	case "llama", "mistral", "qwen2", "qwen3", "gemma":
	case "gemma2", "gemma3_text":
		h = gemmaDefaults(mt)
		if err := json.Unmarshal(data, &h); err != nil {
			return Config{}, nil, fmt.Errorf("not valid JSON for a model config: %w", err)
		}
	case "":
		return Config{}, nil, fmt.Errorf("no model_type and no known architecture (%v): %s", h.Architectures, known)
	default:
		return Config{}, nil, fmt.Errorf("model_type %q is not supported: %s", mt, known)
	}
	gemma := mt == "gemma" || mt == "gemma2" || mt == "gemma3_text"
	if gemma {
		// Gemma's MLP is GeGLU with the tanh approximation of GELU
		// (transformers runs gelu_pytorch_tanh even where an early
		// config.json says hidden_act "gelu").
		act := h.HiddenAct
		if h.HiddenActivation != nil {
			act = h.HiddenActivation
		}
		if act != nil && *act != "gelu_pytorch_tanh" && *act != "gelu" && *act != "gelu_new" {
			return Config{}, nil, fmt.Errorf("hidden_activation %q is not supported: Gemma's MLP here uses gelu_pytorch_tanh", *act)
		}
	} else if h.HiddenAct != nil && *h.HiddenAct != "silu" {
		return Config{}, nil, fmt.Errorf("hidden_act %q is not supported: the Llama MLP here uses silu", *h.HiddenAct)
	}
	if h.AttentionBias != nil && *h.AttentionBias && mt != "qwen2" {
		return Config{}, nil, errors.New("attention_bias is true: biases on all four attention projections are not supported (Llama models have none; Qwen2's q/k/v biases are)")
	}
	if h.MLPBias != nil && *h.MLPBias {
		return Config{}, nil, errors.New("mlp_bias is true: MLP biases are not supported (Llama models have none)")
	}
	c := Config{
		Dim: h.HiddenSize, HiddenDim: h.IntermediateSize, Layers: h.NumHiddenLayers,
		Heads: h.NumAttentionHeads, KVHeads: h.NumAttentionHeads, Vocab: h.VocabSize,
		SeqLen: 2048, NormEps: 1e-6, RopeTheta: 10000,
	}
	if h.NumKeyValueHeads != nil {
		c.KVHeads = *h.NumKeyValueHeads
	}
	if h.MaxPositionEmbeddings != nil {
		c.SeqLen = *h.MaxPositionEmbeddings
	}
	if h.RMSNormEps != nil {
		c.NormEps = float32(*h.RMSNormEps)
	}
	theta := h.RopeTheta
	var l3 *llama3Rope
	localTheta := h.RopeLocalBaseFreq
	ropeParams := h.RopeParameters
	if full, ok := ropeParams["full_attention"].(map[string]any); ok {
		// transformers ≥ 5 keeps one set of RoPE parameters per layer
		// type (Gemma 3: global and sliding layers).
		if sl, ok := ropeParams["sliding_attention"].(map[string]any); ok {
			if v, ok := sl["rope_theta"].(float64); ok {
				localTheta = &v
			}
			if k, _ := sl["rope_type"].(string); k != "" && k != "default" {
				return Config{}, nil, fmt.Errorf("RoPE scaling %q on sliding-window layers is not supported", k)
			}
		}
		ropeParams = full
	}
	for _, rope := range []map[string]any{h.RopeScaling, ropeParams} {
		if rope == nil {
			continue
		}
		kind, _ := rope["rope_type"].(string)
		if kind == "" {
			kind, _ = rope["type"].(string)
		}
		switch kind {
		case "", "default":
		case "llama3":
			num := func(k string, def float64) float64 {
				if v, ok := rope[k].(float64); ok {
					return v
				}
				return def
			}
			l3 = &llama3Rope{factor: num("factor", 8), low: num("low_freq_factor", 1), high: num("high_freq_factor", 4),
				original: int(num("original_max_position_embeddings", 8192))}
			if !(l3.factor >= 1) || !(l3.low > 0) || !(l3.high > l3.low) || l3.original <= 0 {
				return Config{}, nil, fmt.Errorf("rope_scaling llama3 with factor %g, low_freq_factor %g, high_freq_factor %g, original_max_position_embeddings %d is not valid", l3.factor, l3.low, l3.high, l3.original)
			}
		case "linear":
			f, ok := rope["factor"].(float64)
			if !ok || !(f >= 1) || f > 1<<16 {
				return Config{}, nil, fmt.Errorf("rope_scaling linear needs a factor ≥ 1, got %v", rope["factor"])
			}
			c.RopeScale = float32(f)
		default:
			return Config{}, nil, fmt.Errorf("RoPE scaling %q is not supported yet: only plain RoPE, linear and Llama 3's llama3 scaling run here", kind)
		}
		if v, ok := rope["rope_theta"].(float64); ok && theta == nil {
			theta = &v
		}
	}
	if theta == nil && mt == "gemma3_text" {
		v := 1e6 // Gemma3TextConfig's default
		theta = &v
	}
	if theta != nil {
		c.RopeTheta = float32(*theta)
	}
	c.SharedClassifier = h.TieWordEmbeddings != nil && *h.TieWordEmbeddings
	if gemma {
		c.Arch = ArchGemma
		c.SharedClassifier = h.TieWordEmbeddings == nil || *h.TieWordEmbeddings // Gemma ties by default
	}
	if mt == "gemma2" || mt == "gemma3_text" {
		if err := gemmaConfig(&c, &h, mt, localTheta); err != nil {
			return Config{}, nil, err
		}
		h.SlidingWindow = nil // run as sliding-window attention, not a shorter context
	}
	if mt == "qwen2" || mt == "qwen3" {
		c.Arch = ArchQwen2
		if mt == "qwen3" {
			c.Arch = ArchQwen3
		}
		if h.UseSlidingWindow == nil || !*h.UseSlidingWindow {
			h.SlidingWindow = nil // Qwen2 lists a window but uses it only when use_sliding_window is set
		}
	}
	const lim = 1 << 20
	if c.Dim <= 0 || c.Dim > lim || c.HiddenDim <= 0 || c.HiddenDim > lim || c.Layers <= 0 || c.Layers > 1024 ||
		c.Heads <= 0 || c.Heads > c.Dim || c.KVHeads <= 0 || c.Vocab <= 0 || c.Vocab > 1<<24 || c.SeqLen <= 0 || c.SeqLen > 1<<24 {
		return Config{}, nil, fmt.Errorf("hidden_size %d, intermediate_size %d, num_hidden_layers %d, num_attention_heads %d, num_key_value_heads %d, vocab_size %d, max_position_embeddings %d: missing or out of range",
			c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KVHeads, c.Vocab, c.SeqLen)
	}
	if h.HeadDim != nil && (c.Dim%c.Heads != 0 || *h.HeadDim != c.Dim/c.Heads) {
		// Heads narrower or wider than width/heads (Qwen3, Gemma 7B): q and
		// the attention output are Heads·head_dim wide.
		if *h.HeadDim <= 0 || *h.HeadDim > lim || *h.HeadDim%2 != 0 {
			return Config{}, nil, fmt.Errorf("head_dim %d must be positive and even", *h.HeadDim)
		}
		c.HeadSize = *h.HeadDim
	}
	if (c.HeadSize == 0 && c.Dim%c.Heads != 0) || c.HeadDim()%2 != 0 {
		return Config{}, nil, fmt.Errorf("hidden_size %d is not num_attention_heads %d × an even head size (and no head_dim says otherwise)", c.Dim, c.Heads)
	}
	if c.Heads%c.KVHeads != 0 {
		return Config{}, nil, fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.Heads, c.KVHeads)
	}
	if !(c.NormEps > 0) || !(c.RopeTheta > 0) || math.IsInf(float64(c.RopeTheta), 0) {
		return Config{}, nil, fmt.Errorf("rms_norm_eps %g and rope_theta %g must be positive", c.NormEps, c.RopeTheta)
	}
	if h.SlidingWindow != nil && *h.SlidingWindow > 0 && *h.SlidingWindow < c.SeqLen {
		// Within the window, sliding-window attention is full attention:
		// cap the context there rather than compute something else.
		c.SeqLen = *h.SlidingWindow
	}
	return c, l3, nil
}

// gemmaConfig fills in c what Gemma 2 and 3 add to Gemma (model_type mt):
// sliding-window layers, soft-capping, query_pre_attn_scalar, the local
// RoPE base.
func gemmaConfig(c *Config, h *hfConfig, mt string, localTheta *float64) error {
	c.Arch, c.SlidingPattern = ArchGemma2, 2
	if mt == "gemma3_text" {
		c.Arch, c.SlidingPattern = ArchGemma3, 6
		if h.SlidingWindowPattern != nil {
			c.SlidingPattern = *h.SlidingWindowPattern
		}
		if localTheta != nil {
			c.RopeLocalTheta = float32(*localTheta)
		}
		if !(c.RopeLocalTheta >= 0) || math.IsInf(float64(c.RopeLocalTheta), 0) {
			return fmt.Errorf("rope_local_base_freq %g must be positive", c.RopeLocalTheta)
		}
	}
	if h.SlidingWindow != nil {
		c.SlidingWindow = *h.SlidingWindow
	}
	if c.SlidingWindow < 0 || c.SlidingPattern < 0 {
		return fmt.Errorf("sliding_window %d and sliding_window_pattern %d must not be negative", c.SlidingWindow, c.SlidingPattern)
	}
	if h.LayerTypes != nil {
		// transformers ≥ 4.53 lists each layer's kind; the engine runs the
		// periodic patterns Gemma uses (every n-th layer global).
		if len(h.LayerTypes) != c.Layers {
			return fmt.Errorf("layer_types lists %d layers for num_hidden_layers %d", len(h.LayerTypes), c.Layers)
		}
		pattern := 0
		for i, t := range h.LayerTypes {
			if t == "full_attention" {
				pattern = i + 1
				break
			}
		}
		if pattern == 0 {
			pattern = 1 // every layer slides
		}
		for i, t := range h.LayerTypes {
			want := "full_attention"
			if pattern == 1 || i%pattern < pattern-1 {
				want = "sliding_attention"
			}
			if t != want {
				return fmt.Errorf("layer_types %v: layer %d is %q where a repeating pattern of %d would make it %q; orchmind runs periodic local/global patterns only", h.LayerTypes, i, t, pattern, want)
			}
		}
		c.SlidingPattern = pattern
	}
	if h.QueryPreAttnScalar != nil {
		if !(*h.QueryPreAttnScalar > 0) || math.IsInf(*h.QueryPreAttnScalar, 0) {
			return fmt.Errorf("query_pre_attn_scalar %g must be positive", *h.QueryPreAttnScalar)
		}
		c.QueryScale = float32(*h.QueryPreAttnScalar)
	}
	for _, x := range []struct {
		name string
		v    *float64
		dst  *float32
	}{{"attn_logit_softcapping", h.AttnLogitSoftcapping, &c.AttnSoftcap}, {"final_logit_softcapping", h.FinalLogitSoftcapping, &c.FinalSoftcap}} {
		if x.v == nil {
			continue
		}
		if *x.v < 0 || math.IsNaN(*x.v) || math.IsInf(*x.v, 0) {
			return fmt.Errorf("%s %g must be positive (or null for none)", x.name, *x.v)
		}
		*x.dst = float32(*x.v)
	}
	return nil
}

// hfTensor is one tensor LoadHF needs: its name, the shape config.json
// implies ([rows] for a vector, [rows, cols] for a matrix), and where it goes.
type hfTensor struct {
	name       string
	rows, cols int // cols 0: a vector
	ropeHeads  int // > 0: permute rows from rotate-half to interleaved RoPE, this many heads
	mat        **tensor.Matrix
	vec        *[]float32
}

// LoadHF loads a Hugging Face Llama-family model folder: config.json (see
// ReadHFConfig) and the weights in model.safetensors, or in shards listed by
// model.safetensors.index.json, stored as F32, F16 or BF16. Matrices are
// converted to typ as they are read, one tensor at a time (typ F16 or BF16
// keeps weights stored in that type bit for bit; rows that are not whole
// blocks of typ fall back to F16, see StorageType); norms stay float32.
//
// Hugging Face stores the rows of q_proj and k_proj in the "rotate half"
// RoPE layout; they are permuted on load into the interleaved layout that
// Forward uses, as llama.cpp's convert_hf_to_gguf.py does. An absent
// lm_head.weight or tie_word_embeddings true shares the embedding.
//
// Memory: one safetensors file is held at a time, plus one tensor in float32.
func LoadHF(dir string, typ quant.Type) (*Model, error) {
	if typ != quant.F32 && typ != quant.F16 && typ != quant.BF16 && typ != quant.Q8_0 && typ != quant.Q4_0 && typ != quant.Q4_1 {
		return nil, fmt.Errorf("model: cannot load weights as %s (use f32, f16, bf16, q8_0, q4_0 or q4_1)", typ)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("model %s: not a folder: pass the Hugging Face model folder that holds config.json and model.safetensors", dir)
	}
	c, rope, err := readHFConfig(dir)
	if err != nil {
		return nil, err
	}
	where, listedIn, err := hfWeightFiles(dir)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: c, Layers: make([]Layer, c.Layers)}
	if rope != nil {
		m.RopeFactors = Llama3RopeFactors(c.RopeTheta, c.HeadDim(), rope.factor, rope.low, rope.high, rope.original)
	}
	kv := c.KVDim()
	// The language model's tensors are under model. (…ForCausalLM) or,
	// in Gemma3ForConditionalGeneration, under language_model.model.
	// (transformers < 4.52) or model.language_model. (later).
	pre, lmHead := "model.", "lm_head.weight"
	for _, p := range []string{"model.language_model.", "language_model.model."} {
		if _, ok := where[p+"embed_tokens.weight"]; ok {
			pre = p
			if _, ok := where["language_model.lm_head.weight"]; ok {
				lmHead = "language_model.lm_head.weight"
			}
		}
	}
	want := []hfTensor{{name: pre + "embed_tokens.weight", rows: c.Vocab, cols: c.Dim, mat: &m.Embed}}
	ffnNorm := "post_attention_layernorm.weight"
	if c.SandwichNorm() {
		ffnNorm = "pre_feedforward_layernorm.weight"
	}
	for l := range c.Layers {
		L := &m.Layers[l]
		p := fmt.Sprintf("%slayers.%d.", pre, l)
		want = append(want,
			hfTensor{name: p + "input_layernorm.weight", rows: c.Dim, vec: &L.AttnNorm},
			hfTensor{name: p + "self_attn.q_proj.weight", rows: c.QDim(), cols: c.Dim, ropeHeads: c.Heads, mat: &L.Wq},
			hfTensor{name: p + "self_attn.k_proj.weight", rows: kv, cols: c.Dim, ropeHeads: c.KVHeads, mat: &L.Wk},
			hfTensor{name: p + "self_attn.v_proj.weight", rows: kv, cols: c.Dim, mat: &L.Wv},
			hfTensor{name: p + "self_attn.o_proj.weight", rows: c.Dim, cols: c.QDim(), mat: &L.Wo},
			hfTensor{name: p + ffnNorm, rows: c.Dim, vec: &L.FFNNorm},
			hfTensor{name: p + "mlp.gate_proj.weight", rows: c.HiddenDim, cols: c.Dim, mat: &L.Gate},
			hfTensor{name: p + "mlp.up_proj.weight", rows: c.HiddenDim, cols: c.Dim, mat: &L.Up},
			hfTensor{name: p + "mlp.down_proj.weight", rows: c.Dim, cols: c.HiddenDim, mat: &L.Down},
		)
		if c.SandwichNorm() {
			want = append(want,
				hfTensor{name: p + "post_attention_layernorm.weight", rows: c.Dim, vec: &L.PostAttnNorm},
				hfTensor{name: p + "post_feedforward_layernorm.weight", rows: c.Dim, vec: &L.PostFFNNorm})
		}
	}
	if c.QKNorm() {
		for l := range c.Layers {
			L := &m.Layers[l]
			p := fmt.Sprintf("%slayers.%d.self_attn.", pre, l)
			want = append(want,
				hfTensor{name: p + "q_norm.weight", rows: c.HeadDim(), ropeHeads: 1, vec: &L.QNorm},
				hfTensor{name: p + "k_norm.weight", rows: c.HeadDim(), ropeHeads: 1, vec: &L.KNorm})
		}
	}
	if c.QKVBias() {
		for l := range c.Layers {
			L := &m.Layers[l]
			p := fmt.Sprintf("%slayers.%d.self_attn.", pre, l)
			want = append(want,
				hfTensor{name: p + "q_proj.bias", rows: c.QDim(), ropeHeads: c.Heads, vec: &L.Bias[ProjQ]},
				hfTensor{name: p + "k_proj.bias", rows: kv, ropeHeads: c.KVHeads, vec: &L.Bias[ProjK]},
				hfTensor{name: p + "v_proj.bias", rows: kv, vec: &L.Bias[ProjV]})
		}
	}
	want = append(want, hfTensor{name: pre + "norm.weight", rows: c.Dim, vec: &m.FinalNorm})
	if !c.SharedClassifier {
		if _, ok := where[lmHead]; ok {
			want = append(want, hfTensor{name: lmHead, rows: c.Vocab, cols: c.Dim, mat: &m.Output})
		} else {
			slog.Debug("model: no lm_head.weight, the output projection shares the token embedding", "dir", dir)
			m.SharedClassifier = true
		}
	}
	if pre != "model." {
		m.HFTextModel = strings.TrimSuffix(pre, ".")
		vision := 0
		for n := range where {
			if !strings.HasPrefix(n, pre) && n != lmHead && n != "lm_head.weight" {
				vision++
			}
		}
		if vision > 0 {
			m.Skipped = fmt.Sprintf("%d tensors of the vision tower and multimodal projector (orchmind runs the text model)", vision)
			slog.Info("model: Gemma 3 vision tower and projector skipped: orchmind runs the text model", "dir", dir, "tensors", vision)
		}
	}

	for n, file := range where {
		if strings.HasSuffix(n, ".bias") && strings.HasPrefix(n, "model.layers.") && !c.QKVBias() {
			return nil, fmt.Errorf("model %s: tensor %q: projections with biases are not supported (Llama models have none)", filepath.Join(dir, file), n)
		}
	}
	// Group by file so each file is read once and dropped before the next.
	byFile := map[string][]hfTensor{}
	for _, w := range want {
		file, ok := where[w.name]
		if !ok {
			return nil, fmt.Errorf("model %s: no tensor %q: the checkpoint is incomplete or not a Llama model", listedIn, w.name)
		}
		byFile[file] = append(byFile[file], w)
	}
	files := make([]string, 0, len(byFile))
	for f := range byFile {
		files = append(files, f)
	}
	slices.Sort(files)
	for _, name := range files {
		path := filepath.Join(dir, name)
		f, err := safetensors.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("model %s: the shard %s listed there is missing (%d tensors, %q first): download all the model's files", listedIn, name, len(byFile[name]), byFile[name][0].name)
		}
		if err != nil {
			return nil, fmt.Errorf("model: reading weights: %w", err)
		}
		for _, w := range byFile[name] {
			if err := loadHFTensor(f, w, typ); err != nil {
				return nil, fmt.Errorf("model %s: tensor %q: %w", path, w.name, err)
			}
		}
	}
	if m.SharedClassifier {
		m.Output = m.Embed
	}
	if c.GemmaFamily() {
		// Gemma's RMSNorm scales by 1 + weight (every norm of Gemma 2 and 3
		// too, q/k norms included); GGUF files store the sum (llama.cpp's
		// converter adds the 1), and so does the engine.
		norms := [][]float32{m.FinalNorm}
		for l := range m.Layers {
			L := &m.Layers[l]
			norms = append(norms, L.AttnNorm, L.FFNNorm, L.PostAttnNorm, L.PostFFNNorm, L.QNorm, L.KNorm)
		}
		for _, v := range norms {
			for i := range v {
				v[i]++
			}
		}
	}
	return m, nil
}

// hfWeightFiles maps each tensor name to the file (relative to dir) that
// holds it, from model.safetensors.index.json or the single
// model.safetensors. It also returns the path that listed the names, for
// error messages.
func hfWeightFiles(dir string) (map[string]string, string, error) {
	index := filepath.Join(dir, HFIndexFile)
	data, err := os.ReadFile(index)
	if err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, "", fmt.Errorf("model %s: not a valid safetensors index: %w", index, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, "", fmt.Errorf("model %s: the weight_map is empty", index)
		}
		for name, file := range idx.WeightMap {
			if !filepath.IsLocal(file) || !strings.HasSuffix(file, ".safetensors") {
				return nil, "", fmt.Errorf("model %s: tensor %q is mapped to %q, which is not a .safetensors file inside the model folder", index, name, file)
			}
		}
		return idx.WeightMap, index, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("model: %w", err)
	}
	single := filepath.Join(dir, HFWeightsFile)
	f, err := safetensors.Open(single)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			hint := ""
			if _, e := os.Stat(filepath.Join(dir, "pytorch_model.bin")); e == nil {
				hint = "; pytorch_model.bin is refused (unpickling can run code): convert it to safetensors"
			}
			return nil, "", fmt.Errorf("model %s: no %s or %s%s", dir, HFWeightsFile, HFIndexFile, hint)
		}
		return nil, "", fmt.Errorf("model: reading weights: %w", err)
	}
	where := map[string]string{}
	for _, n := range f.Names() {
		where[n] = HFWeightsFile
	}
	return where, single, nil
}

// loadHFTensor reads w from f, checks its shape, permutes RoPE rows when
// asked and stores it converted to typ.
func loadHFTensor(f *safetensors.File, w hfTensor, typ quant.Type) error {
	info, ok := f.Info(w.name)
	if !ok {
		return errors.New("not in this file, although the index lists it here: the download is incomplete or the index is stale")
	}
	want := []int64{int64(w.rows)}
	if w.cols > 0 {
		want = append(want, int64(w.cols))
	}
	if !slices.Equal(info.Shape, want) {
		return fmt.Errorf("shape %v, but config.json implies %v: the weights do not belong to this config", info.Shape, want)
	}
	var src quant.Type
	switch info.DType {
	case "F32":
		src = quant.F32
	case "F16":
		src = quant.F16
	case "BF16":
		src = quant.BF16
	default:
		return fmt.Errorf("dtype %s is not supported (use F32, F16 or BF16 weights)", info.DType)
	}
	raw, err := f.Raw(w.name)
	if err != nil {
		return err
	}
	if w.cols == 0 {
		v := make([]float32, w.rows)
		if err := quant.Dequantize(src, raw, v); err != nil {
			return err
		}
		if w.ropeHeads > 0 {
			// A q/k bias follows its matrix's rows to the interleaved order.
			perm, u := ropeRowSource(w.rows, w.ropeHeads), make([]float32, w.rows)
			for r := range u {
				u[r] = v[perm(r)]
			}
			v = u
		}
		*w.vec = v
		return nil
	}
	st := StorageType(typ, w.cols)
	perm := func(r int) int { return r }
	if w.ropeHeads > 0 {
		perm = ropeRowSource(w.rows, w.ropeHeads)
	}
	data, err := convertRows(src, raw, w.rows, w.cols, st, perm)
	if err != nil {
		return fmt.Errorf("converting to %s: %w", st, err)
	}
	mat, err := tensor.NewMatrix(st, w.rows, w.cols, data)
	if err != nil {
		return err
	}
	*w.mat = mat
	return nil
}

// convertRows returns the rows×cols matrix raw, stored as src, converted to
// dst with output row r taken from input row from(r). The work is split over
// the cores in chunks of rows, each converted through a small float32
// buffer, so no float32 copy of the whole matrix is ever made; rows already
// in dst are copied as they are.
func convertRows(src quant.Type, raw []byte, rows, cols int, dst quant.Type, from func(int) int) ([]byte, error) {
	srb, err := quant.RowBytes(src, cols)
	if err != nil {
		return nil, err
	}
	drb, err := quant.RowBytes(dst, cols)
	if err != nil {
		return nil, err
	}
	if len(raw) != rows*srb {
		return nil, fmt.Errorf("%d bytes for %d rows of %d %s values", len(raw), rows, cols, src)
	}
	out := make([]byte, rows*drb)
	chunk := max(1, (1<<16)/cols) // rows per task: ~64K values
	tasks := (rows + chunk - 1) / chunk
	workers := min(runtime.GOMAXPROCS(0), tasks)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range workers {
		wg.Go(func() {
			buf := make([]float32, cols)
			for {
				t := int(next.Add(1)) - 1
				if t >= tasks {
					return
				}
				for r := t * chunk; r < min(rows, (t+1)*chunk); r++ {
					in := raw[from(r)*srb : (from(r)+1)*srb]
					o := out[r*drb : r*drb : (r+1)*drb]
					if src == dst {
						copy(o[:drb], in)
						continue
					}
					err := quant.Dequantize(src, in, buf)
					if err == nil {
						_, err = quant.Quantize(dst, buf, o)
					}
					if err != nil {
						errOnce.Do(func() { first = err })
						return
					}
				}
			}
		})
	}
	wg.Wait()
	return out, first
}

// ropeRowSource maps a row of a [heads·hd, in] projection in the
// interleaved RoPE layout that Forward uses (a head's pairs are adjacent
// rows) to the row of Hugging Face's rotate-half layout (row j of a head
// pairs with row j+hd/2) that holds it. It is llama.cpp's
// convert_hf_to_gguf.py permute(w, n_head):
// w.reshape(n_head, 2, hd/2, in).swapaxes(1, 2).reshape(w.shape).
func ropeRowSource(rows, heads int) func(int) int {
	hd := rows / heads
	half := hd / 2
	return func(r int) int {
		h, i := r/hd, r%hd
		j, s := i/2, i%2
		return h*hd + s*half + j
	}
}
