package hub

// Recommendation is a small base worth offering to someone who has none.
type Recommendation struct {
	// Title is the model's usual name; Spec what `model pull` takes.
	Title, Spec string
	// Size is the download size in bytes (the Ollama library's figure).
	Size int64
	// Arch is the GGUF architecture the model has.
	Arch string
}

// Need estimates the memory training on it takes (see Entry.Need).
func (r Recommendation) Need() int64 { return r.Size + r.Size/5 + overhead }

// Recommended are small bases, smallest first: their Ollama library names
// and download sizes.
var Recommended = []Recommendation{
	{"Gemma 3 270M", "gemma3:270m", 292_000_000, "gemma3"},
	{"Qwen3 0.6B", "qwen3:0.6b", 523_000_000, "qwen3"},
	{"SmolLM2 360M", "smollm2:360m", 726_000_000, "llama"},
	{"Gemma 3 1B", "gemma3:1b", 815_000_000, "gemma3"},
	{"Llama 3.2 1B", "llama3.2:1b", 1_300_000_000, "llama"},
}
