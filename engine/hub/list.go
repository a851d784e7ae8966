package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"orchmind/engine/gguf"
)

// Entry is one base model found on this machine.
type Entry struct {
	// Spec is what --model takes to load it (ollama:…, hf:…).
	Spec string
	// Source: "orchmind", "ollama" or "hf-cache".
	Source string
	Path   string
	// Size is the bytes on disk.
	Size int64
	// Arch is the architecture (llama, qwen3, gemma3…); Quant the weights'
	// type (Q4_K_M, BF16…); either may be "" when the files do not say.
	Arch, Quant string
	// Need estimates the memory training a LoRA adapter on it takes: the
	// weights as held (safetensors are held as float32 unless --quant asks
	// otherwise) plus a fifth for activations, the adapter and its optimizer.
	Need int64
	// Problem says why the entry cannot be described, if it cannot.
	Problem string
}

// Fits says whether the base fits avail bytes for training: "yes", "no"
// or "?" when avail is unknown (0).
func (e Entry) Fits(avail int64) string {
	switch {
	case avail <= 0 || e.Need <= 0:
		return "?"
	case e.Need <= avail:
		return "yes"
	}
	return "no"
}

// List returns every base in orchmind's folder, Ollama's store and the
// Hugging Face cache, described from their headers (nothing is loaded).
func (h *Hub) List() []Entry {
	var out []Entry
	seen := map[string]bool{}
	for _, st := range h.ollamaStores() {
		for _, m := range ollamaModels(st.dir) {
			if seen[m.Blob] {
				continue
			}
			seen[m.Blob] = true
			e := Describe(m.Blob)
			e.Spec, e.Source = "ollama:"+m.Name.String(), st.source
			out = append(out, e)
		}
	}
	for _, st := range h.hfStores() {
		ds, _ := os.ReadDir(st.dir)
		for _, d := range ds {
			rest, ok := strings.CutPrefix(d.Name(), "models--")
			if !ok || !d.IsDir() {
				continue
			}
			repo := strings.Replace(rest, "--", "/", 1)
			n, err := ParseHFName(repo)
			if err != nil {
				continue
			}
			snap, err := hfSnapshot(st.dir, n)
			if err != nil {
				continue
			}
			var ggufs []string
			_ = filepath.WalkDir(snap, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.HasSuffix(strings.ToLower(p), ".gguf") && !splitRE.MatchString(p) {
					ggufs = append(ggufs, p)
				}
				return nil
			})
			if _, err := os.Stat(filepath.Join(snap, "config.json")); err == nil && hasSafetensors(snap) {
				e := Describe(snap)
				e.Spec, e.Source = "hf:"+repo, st.source
				out = append(out, e)
			}
			for _, g := range ggufs {
				e := Describe(g)
				e.Spec, e.Source = "hf:"+repo, st.source
				if q := quantOfName(filepath.Base(g)); q != "" {
					e.Spec += ":" + q
				} else if len(ggufs) > 1 {
					continue
				}
				out = append(out, e)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Spec < out[j].Spec })
	return out
}

func hasSafetensors(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	return len(m) > 0
}

// knownQuants are the quantization names GGUF files carry in their names.
var knownQuants = []string{"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S", "IQ3_M", "IQ4_XS", "IQ4_NL",
	"Q2_K_S", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_1", "Q4_K_S", "Q4_K_M", "Q5_0", "Q5_1", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0",
	"F16", "BF16", "F32"}

func quantOfName(name string) string {
	base := strings.TrimSuffix(name, filepath.Ext(name))
	best := ""
	for _, q := range knownQuants {
		if quantRE(q).MatchString(base) && len(q) > len(best) {
			best = q
		}
	}
	return best
}

// fileTypes names llama.cpp's general.file_type values.
var fileTypes = map[uint64]string{0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
	11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
	19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S",
	27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16"}

const overhead = 256 << 20

// Describe reads what a base's headers say: a GGUF file's architecture and
// weight type, or a Hugging Face folder's config.json and weight sizes.
func Describe(path string) Entry {
	e := Entry{Path: path}
	st, err := os.Stat(path)
	if err != nil {
		e.Problem = err.Error()
		return e
	}
	if st.IsDir() {
		return describeFolder(path, e)
	}
	e.Size = st.Size()
	f, err := gguf.Open(path)
	if err != nil {
		e.Problem = "not a GGUF file"
		return e
	}
	defer f.Close()
	e.Arch, _ = f.String("general.architecture")
	if ft, ok := f.Uint("general.file_type"); ok {
		e.Quant = fileTypes[ft]
	}
	if e.Quant == "" {
		count := map[string]int64{}
		for _, t := range f.Tensors {
			if len(t.Dims) >= 2 {
				count[t.Type.String()] += int64(t.Elements())
			}
		}
		var best int64
		for k, v := range count {
			if v > best || v == best && k < e.Quant {
				e.Quant, best = k, v
			}
		}
	}
	e.Need = e.Size + e.Size/5 + overhead
	return e
}

func describeFolder(dir string, e Entry) Entry {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		e.Problem = "no config.json"
		return e
	}
	var c struct {
		ModelType     string   `json:"model_type"`
		Architectures []string `json:"architectures"`
		TorchDtype    string   `json:"torch_dtype"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		e.Problem = fmt.Sprintf("config.json: %v", err)
		return e
	}
	e.Arch = c.ModelType
	e.Quant = strings.ToUpper(strings.Replace(strings.TrimPrefix(c.TorchDtype, "torch."), "float", "F", 1))
	switch e.Quant {
	case "BF16", "BFLOAT16":
		e.Quant = "BF16"
	case "F16", "FLOAT16", "HALF":
		e.Quant = "F16"
	case "F32", "FLOAT32", "":
		e.Quant = "F32"
	}
	ms, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	for _, m := range ms {
		if st, err := os.Stat(m); err == nil {
			e.Size += st.Size()
		}
	}
	// Held as float32: 4 bytes per parameter.
	per := int64(4)
	if e.Quant == "BF16" || e.Quant == "F16" {
		per = 2
	}
	held := e.Size / per * 4
	e.Need = held + held/5 + overhead
	return e
}

// Pull downloads the base named spec: hf:ORG/REPO[:QUANT] from Hugging
// Face, anything else (ollama:NAME or a bare NAME) from the Ollama
// registry. A base already on this computer (orchmind's folder, Ollama's
// store, the Hugging Face cache) is not downloaded again: Resolved.Here
// says so.
func (h *Hub) Pull(ctx context.Context, spec string, progress Progress) (Resolved, error) {
	scheme, rest := Scheme(spec)
	full := spec
	if scheme == "" {
		full = "ollama:" + spec
	}
	if r, err := h.Resolve(full); err == nil {
		r.Here = true
		return r, nil
	}
	if scheme == "hf" {
		return h.PullHF(ctx, rest, progress)
	}
	return h.PullOllama(ctx, rest, progress)
}
