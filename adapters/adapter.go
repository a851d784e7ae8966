package adapters

import (
	"fmt"
	"slices"
	"strings"
)

// Module is a LoRA target module in PEFT naming.
type Module string

// Target modules of a Llama block.
const (
	Q    Module = "q_proj"
	K    Module = "k_proj"
	V    Module = "v_proj"
	O    Module = "o_proj"
	Gate Module = "gate_proj"
	Up   Module = "up_proj"
	Down Module = "down_proj"
)

// Pair is one LoRA pair: the update is (Alpha/Rank) · B·A, A is [Rank, In]
// and B is [Out, Rank], both row-major f32.
type Pair struct {
	In, Out int
	A       []float32
	B       []float32
}

// Key addresses one pair.
type Key struct {
	Layer  int
	Module Module
}

// Adapter is a LoRA adapter in memory.
type Adapter struct {
	Rank            int
	Alpha           float32
	Dropout         float32
	TargetModules   []Module
	BaseFingerprint string
	BaseName        string
	Pairs           map[Key]*Pair
	// TextModel is where PEFT finds the language model's layers inside
	// the base: "" for model.layers (…ForCausalLM), or
	// "model.language_model" / "language_model.model" for the text model of
	// Gemma 3's multimodal checkpoint (transformers ≥ 4.52 / earlier). It
	// names the tensors written and is set from those read.
	TextModel string
}

// Validate checks shapes and settings.
func (a *Adapter) Validate() error { return a.validate(true) }

// validate is Validate; without data it checks the shapes only (the pairs
// hold no values, as CheckFolder reads them).
func (a *Adapter) validate(data bool) error {
	if a.Rank <= 0 {
		return fmt.Errorf("adapter: rank must be > 0 (got %d)", a.Rank)
	}
	if !(a.Alpha > 0) {
		return fmt.Errorf("adapter: alpha must be > 0 (got %g)", a.Alpha)
	}
	if len(a.Pairs) == 0 {
		return fmt.Errorf("adapter: no LoRA tensors")
	}
	for k, p := range a.Pairs {
		if _, ok := PEFTModulePath(k.Module); !ok {
			return fmt.Errorf("adapter: layer %d: unknown target module %q", k.Layer, k.Module)
		}
		if k.Layer < 0 || p.In <= 0 || p.Out <= 0 {
			return fmt.Errorf("adapter: layer %d %s: bad shape in=%d out=%d", k.Layer, k.Module, p.In, p.Out)
		}
		if !data {
			continue
		}
		if len(p.A) != a.Rank*p.In {
			return fmt.Errorf("adapter: layer %d %s: lora_A has %d values, want rank %d × in %d", k.Layer, k.Module, len(p.A), a.Rank, p.In)
		}
		if len(p.B) != p.Out*a.Rank {
			return fmt.Errorf("adapter: layer %d %s: lora_B has %d values, want out %d × rank %d", k.Layer, k.Module, len(p.B), p.Out, a.Rank)
		}
	}
	return nil
}

// SortedKeys returns the pair keys by layer then module.
func (a *Adapter) SortedKeys() []Key {
	keys := make([]Key, 0, len(a.Pairs))
	for k := range a.Pairs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y Key) int {
		if x.Layer != y.Layer {
			return x.Layer - y.Layer
		}
		return strings.Compare(string(x.Module), string(y.Module))
	})
	return keys
}

// PEFTModulePath returns the sub-path of a module inside a Llama block.
func PEFTModulePath(m Module) (string, bool) {
	switch m {
	case Q, K, V, O:
		return "self_attn." + string(m), true
	case Gate, Up, Down:
		return "mlp." + string(m), true
	}
	return "", false
}

// PEFTNames returns the PEFT safetensors key names of lora_A ([r, in]) and
// lora_B ([out, r]) for k.
func PEFTNames(k Key) (a, b string, err error) { return PEFTNamesIn(k, "") }

// PEFTNamesIn is PEFTNames for a language model at textModel inside the
// base (see Adapter.TextModel; "" is model).
func PEFTNamesIn(k Key, textModel string) (a, b string, err error) {
	sub, ok := PEFTModulePath(k.Module)
	if !ok {
		return "", "", fmt.Errorf("unknown target module %q", k.Module)
	}
	if textModel == "" {
		textModel = "model"
	}
	base := fmt.Sprintf("base_model.model.%s.layers.%d.%s", textModel, k.Layer, sub)
	return base + ".lora_A.weight", base + ".lora_B.weight", nil
}

// peftTextPrefixes are where PEFT puts the language model's layers: a
// …ForCausalLM (model.layers) or the text model of Gemma 3's multimodal
// checkpoint, named language_model.model.layers before transformers 4.52
// and model.language_model.layers after.
var peftTextPrefixes = []string{"base_model.model.model.layers.", "base_model.model.language_model.model.layers.", "base_model.model.model.language_model.layers."}

// PEFTTextModel returns where the language model of the PEFT tensor name
// lives (see Adapter.TextModel): "" for model.layers.
func PEFTTextModel(name string) string {
	for _, p := range peftTextPrefixes[1:] {
		if strings.HasPrefix(name, p) {
			return strings.TrimSuffix(strings.TrimPrefix(p, "base_model.model."), ".layers.")
		}
	}
	return ""
}

// IsPEFTVisionName reports whether name is a LoRA tensor on the vision
// tower or multimodal projector of a multimodal checkpoint (Gemma 3), which
// orchmind does not run.
func IsPEFTVisionName(name string) bool {
	for _, p := range []string{"base_model.model.vision_tower.", "base_model.model.multi_modal_projector.", "base_model.model.model.vision_tower.", "base_model.model.model.multi_modal_projector."} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// ParsePEFTName is the inverse of PEFTNames; isA tells lora_A from lora_B.
// It also takes the names of the language model inside Gemma 3's
// multimodal checkpoint (either transformers naming).
func ParsePEFTName(name string) (k Key, isA bool, err error) {
	var rest string
	for _, p := range peftTextPrefixes[1:] {
		if strings.HasPrefix(name, p) {
			name = peftTextPrefixes[0] + strings.TrimPrefix(name, p)
		}
	}
	if _, err := fmt.Sscanf(name, "base_model.model.model.layers.%d.%s", &k.Layer, &rest); err != nil {
		return Key{}, false, fmt.Errorf("not a PEFT LoRA tensor name: %q", name)
	}
	switch {
	case strings.HasSuffix(rest, ".lora_A.weight"):
		isA, rest = true, strings.TrimSuffix(rest, ".lora_A.weight")
	case strings.HasSuffix(rest, ".lora_B.weight"):
		rest = strings.TrimSuffix(rest, ".lora_B.weight")
	default:
		return Key{}, false, fmt.Errorf("not a PEFT LoRA tensor name: %q", name)
	}
	i := strings.LastIndexByte(rest, '.')
	k.Module = Module(rest[i+1:])
	if sub, ok := PEFTModulePath(k.Module); !ok || sub != rest {
		return Key{}, false, fmt.Errorf("PEFT tensor %q: unknown module path %q", name, rest)
	}
	return k, isA, nil
}

// GGUFNames returns llama.cpp GGUF LoRA tensor names for k. As written by
// llama.cpp's convert_lora_to_gguf.py, lora_a keeps PEFT's [r, in] layout
// (ggml ne = [in, r]) and lora_b keeps [out, r] (ggml ne = [r, out]); neither
// is transposed.
func GGUFNames(k Key) (a, b string, err error) {
	var n string
	switch k.Module {
	case Q:
		n = "attn_q"
	case K:
		n = "attn_k"
	case V:
		n = "attn_v"
	case O:
		n = "attn_output"
	case Gate:
		n = "ffn_gate"
	case Up:
		n = "ffn_up"
	case Down:
		n = "ffn_down"
	default:
		return "", "", fmt.Errorf("unknown target module %q", k.Module)
	}
	base := fmt.Sprintf("blk.%d.%s.weight", k.Layer, n)
	return base + ".lora_a", base + ".lora_b", nil
}

// GGUFMetadata returns the key/values llama.cpp requires in a GGUF LoRA file
// (checked by llama-adapter.cpp): architecture, general.type "adapter",
// adapter.type "lora" and adapter.lora.alpha as f32.
func GGUFMetadata(a *Adapter) map[string]any {
	return map[string]any{
		"general.architecture": "llama",
		"general.type":         "adapter",
		"adapter.type":         "lora",
		"adapter.lora.alpha":   a.Alpha,
	}
}

// GGUFTensors lists a's tensors with llama.cpp names. Shapes are row-major
// (outermost first): lora_a [r, in] and lora_b [out, r]; a GGUF writer
// reverses them into ggml ne order, giving lora_a ne=[in, r] and lora_b
// ne=[r, out], which is what llama-adapter.cpp validates against the base
// tensor (ne=[in, out]).
func GGUFTensors(a *Adapter) ([]Tensor, error) {
	var ts []Tensor
	for _, k := range a.SortedKeys() {
		p := a.Pairs[k]
		an, bn, err := GGUFNames(k)
		if err != nil {
			return nil, err
		}
		ts = append(ts, Tensor{an, []int{a.Rank, p.In}, p.A}, Tensor{bn, []int{p.Out, a.Rank}, p.B})
	}
	return ts, nil
}
