package model

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"orchmind/engine/gguf"
	"orchmind/engine/quant"
	"orchmind/engine/tensor"
)

// AsStored asks a loader to keep every weight in the type it is stored in
// (llama2.c and Hugging Face checkpoints: float32).
const AsStored quant.Type = 1 << 30

// Load opens a base model of any supported format: a GGUF file, a Hugging
// Face folder (config.json + safetensors), or a llama2.c checkpoint. Weights
// are converted to typ (AsStored keeps them). The GGUF file is returned too
// (nil for other formats): it carries the tokenizer.
func Load(path string, typ quant.Type) (*Model, *gguf.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("model: %w", err)
	}
	if st.IsDir() {
		if typ == AsStored {
			typ = quant.F32
		}
		m, err := LoadHF(path, typ)
		return m, nil, err
	}
	head := make([]byte, 4)
	if f, err := os.Open(path); err == nil {
		_, _ = f.Read(head)
		f.Close()
	}
	if gguf.IsGGUF(head) {
		return LoadGGUF(path, typ)
	}
	if filepath.Base(path) == "config.json" {
		return Load(filepath.Dir(path), typ)
	}
	if typ == AsStored {
		typ = quant.F32
	}
	m, err := LoadLlama2C(path, typ)
	return m, nil, err
}

// LoadGGUF reads a llama-architecture GGUF model. Quantized weights stay in
// their blocks unless typ asks for another type.
func LoadGGUF(path string, typ quant.Type) (*Model, *gguf.File, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, nil, err
	}
	m, err := FromGGUF(f, typ)
	if err != nil {
		return nil, nil, fmt.Errorf("model %s: %w", path, err)
	}
	return m, f, nil
}

// FromGGUF builds a model from a parsed GGUF file.
func FromGGUF(f *gguf.File, typ quant.Type) (*Model, error) {
	arch, _ := f.String("general.architecture")
	switch arch {
	case ArchLlama, ArchQwen2, ArchGemma, ArchQwen3, ArchGemma2, ArchGemma3:
	case "gemma3n":
		return nil, fmt.Errorf("architecture %q (Gemma 3n: per-layer embeddings, AltUp, LAuReL) is not supported; orchmind runs %s", arch, SupportedArchs)
	default:
		return nil, fmt.Errorf("architecture %q is not supported yet; orchmind runs %s", arch, SupportedArchs)
	}
	geti := func(k string, def int) (int, error) {
		v, ok := f.Uint(arch + "." + k)
		if !ok {
			if def >= 0 {
				return def, nil
			}
			return 0, fmt.Errorf("metadata %s.%s is missing", arch, k)
		}
		if v == 0 || v > 1<<24 {
			return 0, fmt.Errorf("metadata %s.%s = %d is absurd", arch, k, v)
		}
		return int(v), nil
	}
	var c Config
	if arch != ArchLlama {
		c.Arch = arch
	}
	var errs []error
	var e error
	c.Dim, e = geti("embedding_length", -1)
	errs = append(errs, e)
	c.HiddenDim, e = geti("feed_forward_length", -1)
	errs = append(errs, e)
	c.Layers, e = geti("block_count", -1)
	errs = append(errs, e)
	c.Heads, e = geti("attention.head_count", -1)
	errs = append(errs, e)
	c.KVHeads, e = geti("attention.head_count_kv", c.Heads)
	errs = append(errs, e)
	c.SeqLen, e = geti("context_length", 2048)
	errs = append(errs, e)
	if err := errors.Join(errs...); err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), "\n", "; ")) // one line
	}
	// Every block has at least nine tensors: check the claimed count
	// against the file before allocating the blocks.
	if c.Layers > len(f.Tensors)/9 {
		return nil, fmt.Errorf("metadata %s.block_count = %d but the file holds only %d tensors (at least 9 per block): the file is inconsistent", arch, c.Layers, len(f.Tensors))
	}
	c.NormEps, c.RopeTheta = 1e-5, 10000
	if c.Arch == ArchGemma2 || c.Arch == ArchGemma3 {
		c.NormEps = 1e-6 // Ollama's gemma3 files leave it out
	}
	if c.Arch == ArchGemma3 {
		c.RopeTheta = 1e6
	}
	if v, ok := f.Float(arch + ".attention.layer_norm_rms_epsilon"); ok {
		c.NormEps = float32(v)
	}
	for _, k := range []string{".rope.freq_base", ".rope.global.freq_base"} { // the second: Ollama's gemma3
		if v, ok := f.Float(arch + k); ok {
			c.RopeTheta = float32(v)
			break
		}
	}
	if kl, ok := f.Uint(arch + ".attention.key_length"); ok && (c.Dim%c.Heads != 0 || int(kl) != c.Dim/c.Heads) {
		// Heads of another width than width/heads (Qwen3, Gemma 7B).
		if kl == 0 || kl > 1<<16 || kl%2 != 0 {
			return nil, fmt.Errorf("metadata %s.attention.key_length = %d is not a positive even head size", arch, kl)
		}
		c.HeadSize = int(kl)
	}
	if vl, ok := f.Uint(arch + ".attention.value_length"); ok && int(vl) != c.HeadDim() {
		return nil, fmt.Errorf("%s.attention.value_length %d differs from the key length %d: not supported", arch, vl, c.HeadDim())
	}
	if c.Heads%c.KVHeads != 0 || (c.HeadSize == 0 && c.Dim%c.Heads != 0) || c.HeadDim()%2 != 0 {
		return nil, fmt.Errorf("heads %d / kv heads %d do not divide width %d", c.Heads, c.KVHeads, c.Dim)
	}
	if n, ok := f.Uint(arch + ".expert_count"); ok && n > 0 {
		return nil, fmt.Errorf("this is a mixture-of-experts model (%d experts), which orchmind does not run yet: use a dense llama model", n)
	}
	if n, ok := f.Uint(arch + ".rope.dimension_count"); ok && int(n) != c.HeadDim() {
		return nil, fmt.Errorf("RoPE covers %d of the %d dimensions of each head (%s.rope.dimension_count); orchmind rotates whole heads only", n, c.HeadDim(), arch)
	}
	if s, ok := f.String(arch + ".rope.scaling.type"); ok && s != "" && s != "none" {
		if s != "linear" {
			return nil, fmt.Errorf("RoPE scaling %q is not supported yet: use a model without rope scaling (or with linear scaling)", s)
		}
		v, ok := f.Float(arch + ".rope.scaling.factor")
		if !ok || !(v >= 1) || v > 1<<16 {
			return nil, fmt.Errorf("%s.rope.scaling.type is linear but %s.rope.scaling.factor is missing or below 1", arch, arch)
		}
		if v > 1 {
			c.RopeScale = float32(v)
		}
	}
	if c.Arch == ArchGemma2 || c.Arch == ArchGemma3 {
		if err := gemmaGGUFConfig(f, &c); err != nil {
			return nil, err
		}
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || len(emb.Dims) != 2 {
		return nil, errors.New("tensor token_embd.weight is missing or not a matrix")
	}
	if int(emb.Dims[0]) != c.Dim || emb.Dims[1] == 0 || emb.Dims[1] > 1<<24 {
		return nil, fmt.Errorf("tensor token_embd.weight has shape %v, want [%d vocab]", emb.Dims, c.Dim)
	}
	c.Vocab = int(emb.Dims[1])
	if n, ok := f.Uint(arch + ".vocab_size"); ok && int(n) != c.Vocab {
		return nil, fmt.Errorf("%s.vocab_size is %d but token_embd.weight has %d rows: the file is inconsistent", arch, n, c.Vocab)
	}
	if toks, ok := f.Metadata["tokenizer.ggml.tokens"].([]any); ok && len(toks) != c.Vocab && (c.Arch != ArchGemma3 || len(toks) < c.Vocab) {
		// (Ollama's gemma3 files list multimodal tokens past the embedding's
		// rows; text never produces them.)
		return nil, fmt.Errorf("the file's tokenizer has %d tokens but token_embd.weight has %d rows: the file is inconsistent", len(toks), c.Vocab)
	}
	_, hasOut := f.Tensor("output.weight")
	c.SharedClassifier = !hasOut
	var err error
	used := map[string]bool{}
	mat0 := func(name string, rows, cols int) *tensor.Matrix {
		if err != nil {
			return nil
		}
		t, ok := f.Tensor(name)
		used[name] = true
		if !ok {
			err = fmt.Errorf("tensor %s is missing", name)
			return nil
		}
		if len(t.Dims) != 2 || int(t.Dims[0]) != cols || int(t.Dims[1]) != rows {
			err = fmt.Errorf("tensor %s has shape %v, want [%d %d]", name, t.Dims, cols, rows)
			return nil
		}
		want := t.Type
		if typ != AsStored && typ != t.Type {
			want = StorageType(typ, cols)
		}
		if want == t.Type {
			var m *tensor.Matrix
			m, err = tensor.NewMatrix(t.Type, rows, cols, t.Data)
			return m
		}
		vals := make([]float32, rows*cols)
		if e := quant.Dequantize(t.Type, t.Data, vals); e != nil {
			err = fmt.Errorf("tensor %s: %w", name, e)
			return nil
		}
		var m *tensor.Matrix
		m, err = tensor.Quantized(want, rows, cols, vals)
		return m
	}

	// Qwen2 files keep q/k rows in the rotate-half (NEOX) order that
	// llama.cpp runs them in; the engine uses the interleaved order.
	var ropeHeads map[string]int
	if c.NeoxRope() {
		ropeHeads = map[string]int{}
		for l := range c.Layers {
			p := fmt.Sprintf("blk.%d.", l)
			ropeHeads[p+"attn_q.weight"], ropeHeads[p+"attn_q.bias"] = c.Heads, c.Heads
			ropeHeads[p+"attn_k.weight"], ropeHeads[p+"attn_k.bias"] = c.KVHeads, c.KVHeads
			ropeHeads[p+"attn_q_norm.weight"], ropeHeads[p+"attn_k_norm.weight"] = 1, 1 // one head's weights
		}
	}
	mat := func(name string, rows, cols int) *tensor.Matrix {
		m := mat0(name, rows, cols)
		if m == nil || ropeHeads[name] == 0 {
			return m
		}
		perm := ropeRowSource(rows, ropeHeads[name])
		rb := len(m.Data) / rows
		data := make([]byte, len(m.Data))
		for r := range rows {
			copy(data[r*rb:(r+1)*rb], m.Data[perm(r)*rb:(perm(r)+1)*rb])
		}
		m, err = tensor.NewMatrix(m.Type, rows, cols, data)
		return m
	}
	vecN := func(name string, n int) []float32 {
		if err != nil {
			return nil
		}
		t, ok := f.Tensor(name)
		used[name] = true
		if !ok || t.Elements() != uint64(n) {
			err = fmt.Errorf("vector %s is missing or not %d long", name, n)
			return nil
		}
		v := make([]float32, n)
		if e := quant.Dequantize(t.Type, t.Data, v); e != nil {
			err = fmt.Errorf("tensor %s: %w", name, e)
			return nil
		}
		if h := ropeHeads[name]; h > 0 {
			perm, u := ropeRowSource(n, h), make([]float32, n)
			for r := range u {
				u[r] = v[perm(r)]
			}
			v = u
		}
		return v
	}
	vec := func(name string) []float32 { return vecN(name, c.Dim) }
	m := &Model{Config: c, Layers: make([]Layer, c.Layers)}
	m.Embed = mat("token_embd.weight", c.Vocab, c.Dim)
	kv := c.KVDim()
	for l := range m.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		m.Layers[l] = Layer{AttnNorm: vec(p + "attn_norm.weight"), FFNNorm: vec(p + "ffn_norm.weight"),
			Wq: mat(p+"attn_q.weight", c.QDim(), c.Dim), Wk: mat(p+"attn_k.weight", kv, c.Dim), Wv: mat(p+"attn_v.weight", kv, c.Dim),
			Wo: mat(p+"attn_output.weight", c.Dim, c.QDim()), Gate: mat(p+"ffn_gate.weight", c.HiddenDim, c.Dim),
			Up: mat(p+"ffn_up.weight", c.HiddenDim, c.Dim), Down: mat(p+"ffn_down.weight", c.Dim, c.HiddenDim)}
		if c.QKVBias() {
			L := &m.Layers[l]
			L.Bias[ProjQ], L.Bias[ProjK], L.Bias[ProjV] = vecN(p+"attn_q.bias", c.QDim()), vecN(p+"attn_k.bias", kv), vecN(p+"attn_v.bias", kv)
		}
		if c.QKNorm() {
			L := &m.Layers[l]
			L.QNorm, L.KNorm = vecN(p+"attn_q_norm.weight", c.HeadDim()), vecN(p+"attn_k_norm.weight", c.HeadDim())
		}
		if c.SandwichNorm() {
			L := &m.Layers[l]
			L.PostAttnNorm, L.PostFFNNorm = vec(p+"post_attention_norm.weight"), vec(p+"post_ffw_norm.weight")
		}
	}
	m.FinalNorm = vec("output_norm.weight")
	if _, ok := f.Tensor("rope_freqs.weight"); ok {
		// Llama 3.1+ RoPE scaling: one factor per pair of a head.
		m.RopeFactors = vecN("rope_freqs.weight", c.HeadDim()/2)
		for i, v := range m.RopeFactors {
			if !(v > 0) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("rope_freqs.weight[%d] is %g: RoPE frequency factors must be positive", i, v)
			}
		}
	}
	m.Output = m.Embed
	if hasOut {
		m.Output = mat("output.weight", c.Vocab, c.Dim)
	}
	if err != nil {
		return nil, err
	}
	var unused []string
	vision := 0
	for _, t := range f.Tensors {
		switch {
		case used[t.Name]:
		case c.Arch == ArchGemma3 && (strings.HasPrefix(t.Name, "v.") || strings.HasPrefix(t.Name, "mm.")):
			vision++ // Ollama's gemma3 files carry the vision tower too
		default:
			unused = append(unused, t.Name)
		}
	}
	if len(unused) > 0 {
		shown := unused[:min(len(unused), 8)]
		more := ""
		if len(unused) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(unused)-len(shown))
		}
		return nil, fmt.Errorf("the file's architecture is %s but it holds tensors a %s model has not: %s%s; it is a variant orchmind does not run (orchmind runs %s)", arch, arch, strings.Join(shown, ", "), more, SupportedArchs)
	}
	if vision > 0 {
		m.Skipped = fmt.Sprintf("%d tensors of the vision tower and multimodal projector (v.*, mm.*; orchmind runs the text model)", vision)
		slog.Info("model: gemma3 vision tensors skipped: orchmind runs the text model", "file", f.Path, "tensors", vision)
	}
	return m, nil
}

// gemmaGGUFConfig reads what Gemma 2 and 3 add to Gemma from a GGUF file's
// metadata, with llama.cpp's defaults and names (and the names of Ollama's
// gemma3 files): sliding window, soft-capping, the local RoPE base.
func gemmaGGUFConfig(f *gguf.File, c *Config) error {
	a := c.Arch
	fl := func(keys ...string) (float64, bool) {
		for _, k := range keys {
			if v, ok := f.Float(a + "." + k); ok {
				return v, true
			}
		}
		return 0, false
	}
	if a == ArchGemma2 {
		// llama.cpp: window 4096 unless the file says, every other layer,
		// scores capped at 50 and logits at 30 unless the file says.
		c.SlidingWindow, c.SlidingPattern, c.AttnSoftcap, c.FinalSoftcap = 4096, 2, 50, 30
		if v, ok := fl("attn_logit_softcapping"); ok {
			c.AttnSoftcap = float32(v)
		}
	} else {
		// llama.cpp: sliding layers only where the file gives a window,
		// 5 of every 6, RoPE base 10,000 there; no soft-capping unless the
		// file says.
		c.SlidingPattern, c.RopeLocalTheta = 6, 10000
		if v, ok := fl("rope.freq_base_swa", "rope.local.freq_base"); ok {
			c.RopeLocalTheta = float32(v)
		}
		if _, ok := f.String(a + ".rope.scaling.type"); !ok && c.SeqLen >= 131072 {
			// Ollama's converter dropped the linear scaling of Gemma 3 4B
			// and larger (factor 8 in their config.json): llama.cpp puts it
			// back for files of their context length, and so does this.
			_, global := f.Float(a + ".rope.global.freq_base")
			_, eps := f.Float(a + ".attention.layer_norm_rms_epsilon")
			if global || !eps || hasTensorPrefix(f, "v.") {
				c.RopeScale = 8
			}
		}
	}
	if v, ok := f.Uint(a + ".attention.sliding_window"); ok {
		if v > 1<<24 {
			return fmt.Errorf("metadata %s.attention.sliding_window = %d is absurd", a, v)
		}
		c.SlidingWindow = int(v)
	}
	if v, ok := f.Uint(a + ".attention.sliding_window_pattern"); ok && v > 0 && v < 1<<16 {
		c.SlidingPattern = int(v)
	}
	if v, ok := fl("final_logit_softcapping"); ok {
		c.FinalSoftcap = float32(v)
	}
	for _, v := range []float32{c.AttnSoftcap, c.FinalSoftcap, c.RopeLocalTheta} {
		if v < 0 || math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s: soft-capping and RoPE bases must be positive numbers, got %g", a, v)
		}
	}
	// query_pre_attn_scalar: llama.cpp derives it (Dim/Heads for the 27B
	// models, 46 or 62 layers; HeadDim otherwise); orchmind's files say it.
	c.QueryScale = float32(c.HeadDim())
	if (a == ArchGemma2 && c.Layers == 46) || (a == ArchGemma3 && c.Layers == 62) {
		c.QueryScale = float32(c.Dim / c.Heads)
	}
	if v, ok := fl("attention.query_pre_attn_scalar"); ok {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("metadata %s.attention.query_pre_attn_scalar = %g must be positive", a, v)
		}
		c.QueryScale = float32(v)
	}
	return nil
}

// Vocab is a tokenizer vocabulary to store in a GGUF file: SentencePiece
// (Model "" or "llama": tokens with scores) or byte-level BPE (Model
// "gpt2": tokens and merges, Pre naming the pre-tokenizer split).
type Vocab struct {
	Model    string // tokenizer.ggml.model; "" is "llama"
	Tokens   []string
	Scores   []float32 // SentencePiece only
	Types    []int32
	Merges   []string // BPE only: "left right", in priority order
	Pre      string   // BPE only: tokenizer.ggml.pre
	BOS, EOS int      // -1: the vocabulary has none
	// NoBOS records that the model was trained without BOS before each
	// text (tokenizer.ggml.add_bos_token false); SentencePiece models add it.
	NoBOS bool
	// SpacePrefix (SentencePiece only) says whether the tokenizer puts a
	// dummy-prefix space before the text (tokenizer.ggml.add_space_prefix:
	// true for Llama 2, false for Gemma); nil leaves the key out, and
	// readers assume true (orchmind: false for Gemma architectures).
	SpacePrefix *bool
}

// kvs is the tokenizer.ggml.* metadata of v.
func (v *Vocab) kvs() ([]gguf.KV, error) {
	special := func(kvs []gguf.KV) []gguf.KV {
		for _, x := range []struct {
			key string
			id  int
		}{{"tokenizer.ggml.bos_token_id", v.BOS}, {"tokenizer.ggml.eos_token_id", v.EOS}} {
			if x.id >= 0 {
				kvs = append(kvs, gguf.KV{Key: x.key, Value: uint32(x.id)})
			}
		}
		return kvs
	}
	switch v.Model {
	case "", "llama":
		kvs := []gguf.KV{{Key: "tokenizer.ggml.model", Value: "llama"},
			{Key: "tokenizer.ggml.tokens", Value: v.Tokens},
			{Key: "tokenizer.ggml.scores", Value: v.Scores},
			{Key: "tokenizer.ggml.token_type", Value: v.Types}}
		kvs = append(special(kvs), gguf.KV{Key: "tokenizer.ggml.unknown_token_id", Value: uint32(0)})
		if v.NoBOS {
			kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: false})
		}
		if v.SpacePrefix != nil {
			kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_space_prefix", Value: *v.SpacePrefix})
		}
		return kvs, nil
	case "gpt2":
		kvs := []gguf.KV{{Key: "tokenizer.ggml.model", Value: "gpt2"},
			{Key: "tokenizer.ggml.pre", Value: v.Pre},
			{Key: "tokenizer.ggml.tokens", Value: v.Tokens},
			{Key: "tokenizer.ggml.token_type", Value: v.Types},
			{Key: "tokenizer.ggml.merges", Value: v.Merges}}
		return append(special(kvs), gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: !v.NoBOS}), nil
	}
	return nil, fmt.Errorf("tokenizer model %q cannot be written to GGUF (orchmind writes llama and gpt2)", v.Model)
}

// WriteGGUF writes m as a llama GGUF file with its matrices converted to typ
// (AsStored keeps them; rows that are not whole blocks fall back to F16)
// and, when vocab is given, its tokenizer, so the file stands alone.
//
// extra adds string metadata (sorted by key).
func WriteGGUF(path string, m *Model, name string, typ quant.Type, vocab *Vocab, extra map[string]string) error {
	c := m.Config
	a := c.ArchName()
	kvs := []gguf.KV{
		{Key: "general.architecture", Value: a},
		{Key: "general.name", Value: name},
		{Key: a + ".context_length", Value: uint32(c.SeqLen)},
		{Key: a + ".embedding_length", Value: uint32(c.Dim)},
		{Key: a + ".block_count", Value: uint32(c.Layers)},
		{Key: a + ".feed_forward_length", Value: uint32(c.HiddenDim)},
		{Key: a + ".rope.dimension_count", Value: uint32(c.HeadDim())},
		{Key: a + ".attention.head_count", Value: uint32(c.Heads)},
		{Key: a + ".attention.head_count_kv", Value: uint32(c.KVHeads)},
		{Key: a + ".attention.layer_norm_rms_epsilon", Value: c.NormEps},
		{Key: a + ".rope.freq_base", Value: c.RopeTheta},
	}
	if c.HeadSize > 0 {
		kvs = append(kvs, gguf.KV{Key: a + ".attention.key_length", Value: uint32(c.HeadSize)},
			gguf.KV{Key: a + ".attention.value_length", Value: uint32(c.HeadSize)})
	}
	if c.RopeScale > 1 {
		kvs = append(kvs, gguf.KV{Key: a + ".rope.scaling.type", Value: "linear"},
			gguf.KV{Key: a + ".rope.scaling.factor", Value: c.RopeScale})
	}
	if c.Arch == ArchGemma2 || c.Arch == ArchGemma3 {
		// llama.cpp's names; query_pre_attn_scalar is orchmind's own key
		// (llama.cpp derives it from the model's size).
		kvs = append(kvs, gguf.KV{Key: a + ".attention.sliding_window", Value: uint32(c.SlidingWindow)},
			gguf.KV{Key: a + ".attention.query_pre_attn_scalar", Value: c.QueryScale})
		if c.Arch == ArchGemma2 {
			kvs = append(kvs, gguf.KV{Key: a + ".attn_logit_softcapping", Value: c.AttnSoftcap})
		}
		if c.Arch == ArchGemma2 || c.FinalSoftcap > 0 {
			kvs = append(kvs, gguf.KV{Key: a + ".final_logit_softcapping", Value: c.FinalSoftcap})
		}
		if c.Arch == ArchGemma3 {
			local := c.RopeLocalTheta
			if local == 0 {
				local = c.RopeTheta
			}
			kvs = append(kvs, gguf.KV{Key: a + ".rope.freq_base_swa", Value: local})
		}
		if want := map[string]int{ArchGemma2: 2, ArchGemma3: 6}[c.Arch]; c.SlidingPattern != want {
			kvs = append(kvs, gguf.KV{Key: a + ".attention.sliding_window_pattern", Value: uint32(c.SlidingPattern)})
		}
	}
	// Qwen2 files keep q/k rows in rotate-half (NEOX) order: undo the
	// interleaving the loaders applied.
	neoxHeads := func(n string) int {
		if !c.NeoxRope() {
			return 0
		}
		switch {
		case strings.HasSuffix(n, ".attn_q.weight"), strings.HasSuffix(n, ".attn_q.bias"):
			return c.Heads
		case strings.HasSuffix(n, ".attn_k.weight"), strings.HasSuffix(n, ".attn_k.bias"):
			return c.KVHeads
		case strings.HasSuffix(n, ".attn_q_norm.weight"), strings.HasSuffix(n, ".attn_k_norm.weight"):
			return 1
		}
		return 0
	}
	unpermute := func(data []byte, rows, heads int) []byte {
		perm, rb := ropeRowSource(rows, heads), len(data)/rows
		out := make([]byte, len(data))
		for r := range rows {
			copy(out[perm(r)*rb:(perm(r)+1)*rb], data[r*rb:(r+1)*rb])
		}
		return out
	}
	if vocab != nil {
		vk, err := vocab.kvs()
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		kvs = append(kvs, vk...)
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kvs = append(kvs, gguf.KV{Key: k, Value: extra[k]})
	}
	var ts []gguf.WriteTensor
	var err error
	m.EachTensor(func(n string, w *tensor.Matrix, norm []float32) {
		if err != nil {
			return
		}
		if w == nil {
			data, _ := quant.Quantize(quant.F32, norm, nil)
			if h := neoxHeads(n); h > 0 {
				data = unpermute(data, len(norm), h)
			}
			ts = append(ts, gguf.WriteTensor{Name: n, Dims: []uint64{uint64(len(norm))}, Type: quant.F32, Data: data})
			return
		}
		out := w
		if typ != AsStored && StorageType(typ, w.Cols) != w.Type {
			out, err = tensor.Quantized(StorageType(typ, w.Cols), w.Rows, w.Cols, w.Float32())
			if err != nil {
				err = fmt.Errorf("convert %s: %w", n, err)
				return
			}
		}
		data := out.Data
		if h := neoxHeads(n); h > 0 {
			data = unpermute(data, out.Rows, h)
		}
		ts = append(ts, gguf.WriteTensor{Name: n, Dims: []uint64{uint64(out.Cols), uint64(out.Rows)}, Type: out.Type, Data: data})
	})
	if err != nil {
		return err
	}
	return gguf.Write(path, kvs, ts)
}

// hasTensorPrefix reports whether a tensor of f is named prefix….
func hasTensorPrefix(f *gguf.File, prefix string) bool {
	for _, t := range f.Tensors {
		if strings.HasPrefix(t.Name, prefix) {
			return true
		}
	}
	return false
}
