package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Hub knows where base models live on this machine and where to download
// them from. The zero value finds nothing; FromEnv fills it the way Ollama
// and Hugging Face's own tools would.
type Hub struct {
	// ModelsDir is orchmind's own models folder: pulled Ollama models in
	// ModelsDir/ollama (Ollama's layout), pulled Hugging Face repos in
	// ModelsDir/huggingface (the Hugging Face cache's layout).
	ModelsDir string
	// OllamaDirs are Ollama's model stores ($OLLAMA_MODELS, else
	// ~/.ollama/models and, on Linux, the system service's store).
	OllamaDirs []string
	// HFCache is the Hugging Face hub cache ($HF_HUB_CACHE, $HF_HOME/hub,
	// else ~/.cache/huggingface/hub).
	HFCache string
	// OllamaRegistry is the base URL of the Ollama registry
	// ($ORCHMIND_OLLAMA_REGISTRY, else https://registry.ollama.ai).
	OllamaRegistry string
	// HFEndpoint is the base URL of Hugging Face ($HF_ENDPOINT, else
	// https://huggingface.co).
	HFEndpoint string
	// HFToken is sent to Hugging Face for gated models ($HF_TOKEN, else the
	// token `huggingface-cli login` stored).
	HFToken string
	// Client does the HTTP requests (nil: a client without overall timeout).
	Client *http.Client
	// Parallel is how many ranges of one big file download at once (0: 4).
	Parallel int
	// Log receives retries and other notes (nil: discarded).
	Log *slog.Logger
	// minParallel overrides parallelMin (tests).
	minParallel int64
}

// FromEnv returns a Hub reading the environment as Ollama and Hugging
// Face's clients do, with orchmind's models in modelsDir.
func FromEnv(modelsDir string) *Hub {
	h := &Hub{ModelsDir: modelsDir, OllamaRegistry: "https://registry.ollama.ai", HFEndpoint: "https://huggingface.co"}
	home, _ := os.UserHomeDir()
	if d := os.Getenv("OLLAMA_MODELS"); d != "" {
		h.OllamaDirs = []string{d}
	} else if home != "" {
		h.OllamaDirs = []string{filepath.Join(home, ".ollama", "models")}
		if runtime.GOOS == "linux" {
			h.OllamaDirs = append(h.OllamaDirs, "/usr/share/ollama/.ollama/models")
		}
	}
	hfHome := os.Getenv("HF_HOME")
	if hfHome == "" {
		if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
			hfHome = filepath.Join(x, "huggingface")
		} else if home != "" {
			hfHome = filepath.Join(home, ".cache", "huggingface")
		}
	}
	switch {
	case os.Getenv("HF_HUB_CACHE") != "":
		h.HFCache = os.Getenv("HF_HUB_CACHE")
	case hfHome != "":
		h.HFCache = filepath.Join(hfHome, "hub")
	}
	if v := os.Getenv("ORCHMIND_OLLAMA_REGISTRY"); v != "" {
		h.OllamaRegistry = strings.TrimRight(v, "/")
	}
	if v := os.Getenv("HF_ENDPOINT"); v != "" {
		h.HFEndpoint = strings.TrimRight(v, "/")
	}
	h.HFToken = os.Getenv("HF_TOKEN")
	if h.HFToken == "" {
		h.HFToken = os.Getenv("HUGGING_FACE_HUB_TOKEN")
	}
	if h.HFToken == "" && hfHome != "" {
		if b, err := os.ReadFile(filepath.Join(hfHome, "token")); err == nil {
			h.HFToken = strings.TrimSpace(string(b))
		}
	}
	return h
}

// Resolved is a base found on disk.
type Resolved struct {
	// Path is the file or folder to load: for Ollama, the blob itself.
	Path string
	// Name is a display name (gemma3:1b, org/repo).
	Name string
	// Source says whose store it is in: "orchmind", "ollama" or "hf-cache".
	Source string
	// Here is set by Pull when the base was on this computer already.
	Here bool
}

// ErrNotFound is wrapped by Resolve's error when the name is valid but no
// store on this machine holds it.
var ErrNotFound = errors.New("model not found on this machine")

// IsSpec reports whether spec names a model by ollama: or hf: rather than
// by path.
func IsSpec(spec string) bool { s, _ := Scheme(spec); return s != "" }

// Resolve finds the base named spec on disk: ollama:NAME in orchmind's
// folder then in Ollama's store; hf:ORG/REPO[:QUANT] in orchmind's folder
// then in the Hugging Face cache; anything else is a path and is returned
// as it is. Nothing is copied: the path returned is the file in the store.
func (h *Hub) Resolve(spec string) (Resolved, error) {
	scheme, rest := Scheme(spec)
	switch scheme {
	case "ollama":
		n, err := ParseOllamaName(rest)
		if err != nil {
			return Resolved{}, err
		}
		for _, st := range h.ollamaStores() {
			blob, _, err := resolveOllama(st.dir, n)
			if err == nil {
				return Resolved{Path: blob, Name: n.String(), Source: st.source}, nil
			}
			if !errors.Is(err, ErrNotFound) {
				return Resolved{}, err
			}
		}
		return Resolved{}, fmt.Errorf("ollama model %s: %w (looked in %s): run `orchmind model pull %s` or `ollama pull %s`",
			n, ErrNotFound, strings.Join(h.ollamaDirNames(), ", "), n, n)
	case "hf":
		n, err := ParseHFName(rest)
		if err != nil {
			return Resolved{}, err
		}
		for _, st := range h.hfStores() {
			p, err := resolveHF(st.dir, n)
			if err == nil {
				return Resolved{Path: p, Name: n.String(), Source: st.source}, nil
			}
			if !errors.Is(err, ErrNotFound) {
				return Resolved{}, err
			}
		}
		return Resolved{}, fmt.Errorf("hugging face model %s: %w (looked in %s): run `orchmind model pull hf:%s`",
			n, ErrNotFound, strings.Join(h.hfDirNames(), ", "), n)
	}
	return Resolved{Path: spec, Name: strings.TrimSuffix(filepath.Base(spec), filepath.Ext(spec)), Source: "path"}, nil
}

type storeDir struct{ dir, source string }

func (h *Hub) ollamaStores() []storeDir {
	var s []storeDir
	if h.ModelsDir != "" {
		s = append(s, storeDir{filepath.Join(h.ModelsDir, "ollama"), "orchmind"})
	}
	for _, d := range h.OllamaDirs {
		s = append(s, storeDir{d, "ollama"})
	}
	return s
}

func (h *Hub) hfStores() []storeDir {
	var s []storeDir
	if h.ModelsDir != "" {
		s = append(s, storeDir{filepath.Join(h.ModelsDir, "huggingface"), "orchmind"})
	}
	if h.HFCache != "" {
		s = append(s, storeDir{h.HFCache, "hf-cache"})
	}
	return s
}

func (h *Hub) ollamaDirNames() []string {
	var s []string
	for _, d := range h.ollamaStores() {
		s = append(s, d.dir)
	}
	return s
}

func (h *Hub) hfDirNames() []string {
	var s []string
	for _, d := range h.hfStores() {
		s = append(s, d.dir)
	}
	return s
}
