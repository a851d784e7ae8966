package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"orchmind/internal/atomicfile"
)

// Media types of an Ollama manifest.
const (
	ManifestMediaType = "application/vnd.docker.distribution.manifest.v2+json"
	ModelMediaType    = "application/vnd.ollama.image.model"
)

// Manifest is an Ollama (Docker v2) image manifest.
type Manifest struct {
	SchemaVersion int     `json:"schemaVersion"`
	MediaType     string  `json:"mediaType"`
	Config        Layer   `json:"config"`
	Layers        []Layer `json:"layers"`
}

// Layer is one blob of a manifest.
type Layer struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Model returns the manifest's model layer (the GGUF weights).
func (m *Manifest) Model() (Layer, error) {
	for _, l := range m.Layers {
		if l.MediaType == ModelMediaType {
			if !digestRE.MatchString(l.Digest) {
				return l, fmt.Errorf("model layer digest %q is not sha256:<64 hex>", l.Digest)
			}
			return l, nil
		}
	}
	return Layer{}, fmt.Errorf("the manifest has no layer of type %s (is it a model?)", ModelMediaType)
}

// blobPath is where Ollama keeps the blob of digest sha256:<hex>.
func blobPath(root, digest string) string {
	return filepath.Join(root, "blobs", strings.Replace(digest, ":", "-", 1))
}

func manifestPath(root string, n OllamaName) string {
	return filepath.Join(root, "manifests", n.Host, n.Namespace, n.Model, n.Tag)
}

func readManifest(p string) (*Manifest, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("ollama manifest %s: %w", p, err)
	}
	return &m, nil
}

// resolveOllama finds the model blob of n in the Ollama store at root.
func resolveOllama(root string, n OllamaName) (string, *Manifest, error) {
	mp := manifestPath(root, n)
	m, err := readManifest(mp)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, ErrNotFound
	}
	if err != nil {
		return "", nil, err
	}
	l, err := m.Model()
	if err != nil {
		return "", nil, fmt.Errorf("ollama manifest %s: %w", mp, err)
	}
	blob := blobPath(root, l.Digest)
	st, err := os.Stat(blob)
	if err != nil {
		return "", nil, fmt.Errorf("ollama model %s: its manifest names blob %s, which is missing (%v): pull it again", n, l.Digest, err)
	}
	if st.Size() != l.Size {
		return "", nil, fmt.Errorf("ollama model %s: blob %s has %d bytes, its manifest says %d: pull it again", n, blob, st.Size(), l.Size)
	}
	return blob, m, nil
}

// ollamaModels lists every model of the Ollama store at root.
func ollamaModels(root string) []struct {
	Name OllamaName
	Blob string
	Size int64
} {
	var out []struct {
		Name OllamaName
		Blob string
		Size int64
	}
	base := filepath.Join(root, "manifests")
	_ = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return nil
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 4 {
			return nil
		}
		n := OllamaName{Host: parts[0], Namespace: parts[1], Model: parts[2], Tag: parts[3]}
		blob, m, err := resolveOllama(root, n)
		if err != nil {
			return nil
		}
		l, _ := m.Model()
		out = append(out, struct {
			Name OllamaName
			Blob string
			Size int64
		}{n, blob, l.Size})
		return nil
	})
	return out
}

// PullOllama downloads the Ollama model name (gemma3:1b, user/model:tag)
// from the registry into ModelsDir/ollama, laid out as Ollama lays out its
// store: every layer's blob (the model, its template, parameters and
// licence) verified against its sha256 digest, then the manifest. It
// returns the model blob's path.
func (h *Hub) PullOllama(ctx context.Context, name string, progress Progress) (Resolved, error) {
	n, err := ParseOllamaName(name)
	if err != nil {
		return Resolved{}, err
	}
	if h.ModelsDir == "" {
		return Resolved{}, errors.New("no models folder to pull into")
	}
	root := filepath.Join(h.ModelsDir, "ollama")
	base := strings.TrimRight(h.OllamaRegistry, "/")
	if base == "" || (n.Host != DefaultOllamaHost && base == "https://"+DefaultOllamaHost) {
		// A name with its own registry host is pulled from that host.
		base = "https://" + n.Host
	}
	murl := fmt.Sprintf("%s/v2/%s/%s/manifests/%s", base, n.Namespace, n.Model, n.Tag)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, murl, nil)
	if err != nil {
		return Resolved{}, err
	}
	req.Header.Set("Accept", ManifestMediaType)
	resp, err := h.client().Do(req)
	if err != nil {
		return Resolved{}, fmt.Errorf("cannot reach the Ollama registry %s: %w (check the network connection; ORCHMIND_OLLAMA_REGISTRY names another registry)", base, err)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil {
		return Resolved{}, fmt.Errorf("ollama manifest of %s: %w", n, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return Resolved{}, fmt.Errorf("the Ollama registry %s has no model %s (see https://ollama.com/library for names)", base, n)
	case resp.StatusCode != http.StatusOK:
		return Resolved{}, fmt.Errorf("ollama manifest of %s: the registry answered %s", n, resp.Status)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return Resolved{}, fmt.Errorf("ollama manifest of %s is not valid JSON: %w", n, err)
	}
	ml, err := m.Model()
	if err != nil {
		return Resolved{}, fmt.Errorf("ollama %s: %w", n, err)
	}
	// The model layer first: it is the one worth resuming.
	layers := []Layer{ml}
	for _, l := range append([]Layer{m.Config}, m.Layers...) {
		if l.Digest != ml.Digest && l.Digest != "" {
			layers = append(layers, l)
		}
	}
	var total int64
	for _, l := range layers {
		if !digestRE.MatchString(l.Digest) || l.Size < 0 {
			return Resolved{}, fmt.Errorf("ollama manifest of %s: layer %q has an invalid digest or size", n, l.Digest)
		}
		total += l.Size
	}
	agg := newAggregate(progress, total)
	for _, l := range layers {
		if l.Digest == "" {
			continue
		}
		dst := blobPath(root, l.Digest)
		url := fmt.Sprintf("%s/v2/%s/%s/blobs/%s", base, n.Namespace, n.Model, l.Digest)
		err := h.download(ctx, file{url: url, dst: dst, size: l.Size, sha256: strings.TrimPrefix(l.Digest, "sha256:")}, agg.sub())
		if err != nil {
			return Resolved{}, fmt.Errorf("ollama %s: %w", n, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(manifestPath(root, n)), 0o755); err != nil {
		return Resolved{}, fmt.Errorf("ollama %s: %w", n, err)
	}
	if err := atomicfile.WriteFile(manifestPath(root, n), raw, 0o644); err != nil {
		return Resolved{}, fmt.Errorf("ollama %s: write manifest: %w", n, err)
	}
	return Resolved{Path: blobPath(root, ml.Digest), Name: n.String(), Source: "orchmind"}, nil
}
