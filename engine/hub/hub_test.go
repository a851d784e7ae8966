package hub

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"orchmind/engine/hub/hubtest"
	"orchmind/engine/model"
	"orchmind/engine/quant"
)

// tinyGGUF writes a small real GGUF (random llama weights) and returns its bytes.
func tinyGGUF(t *testing.T, typ quant.Type) []byte {
	t.Helper()
	c := model.Config{Dim: 64, HiddenDim: 128, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 300, SeqLen: 64, NormEps: 1e-5, RopeTheta: 10000}
	m, err := model.Random(c, quant.F32, 7)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := model.WriteGGUF(p, m, "tiny", typ, nil, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testHub(t *testing.T) *Hub {
	t.Helper()
	return &Hub{ModelsDir: filepath.Join(t.TempDir(), "models"), Parallel: 3, minParallel: 64 << 10}
}

func TestParseNames(t *testing.T) {
	for in, want := range map[string]OllamaName{
		"gemma3:1b":                      {DefaultOllamaHost, "library", "gemma3", "1b"},
		"gemma3":                         {DefaultOllamaHost, "library", "gemma3", "latest"},
		"library/qwen3:0.6b":             {DefaultOllamaHost, "library", "qwen3", "0.6b"},
		"user/model:tag":                 {DefaultOllamaHost, "user", "model", "tag"},
		"example.com:5000/team/m:q4_k_m": {"example.com:5000", "team", "m", "q4_k_m"},
	} {
		got, err := ParseOllamaName(in)
		if err != nil || got != want {
			t.Errorf("ParseOllamaName(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a/b/c/d", "gemma3:", "../x", "a b"} {
		if _, err := ParseOllamaName(bad); err == nil {
			t.Errorf("ParseOllamaName(%q) accepted", bad)
		}
	}
	if n, err := ParseHFName("unsloth/gemma-3-1b-it-GGUF:Q4_K_M"); err != nil || n.Repo != "unsloth/gemma-3-1b-it-GGUF" || n.Quant != "Q4_K_M" || n.Revision != "main" {
		t.Errorf("ParseHFName: %+v %v", n, err)
	}
	for _, bad := range []string{"repo", "a/b/c", "../b", "a/b:"} {
		if _, err := ParseHFName(bad); err == nil {
			t.Errorf("ParseHFName(%q) accepted", bad)
		}
	}
	if q := quantOfName("gemma-3-1b-it-Q4_K_M.gguf"); q != "Q4_K_M" {
		t.Errorf("quantOfName: %q", q)
	}
}

// TestOllamaStoreFoundInPlace lays out a store exactly as Ollama does
// (manifests/registry.ollama.ai/library/<model>/<tag> + blobs/sha256-<hex>)
// and checks that ollama:NAME resolves to the blob itself and that List
// describes it from its header.
func TestOllamaStoreFoundInPlace(t *testing.T) {
	store := t.TempDir()
	data := tinyGGUF(t, quant.Q8_0)
	o := hubtest.NewOllama()
	defer o.Close()
	manifest, digest := o.Add("library", "tiny", "1b", data)
	blob := filepath.Join(store, "blobs", strings.Replace(digest, ":", "-", 1))
	mp := filepath.Join(store, "manifests", "registry.ollama.ai", "library", "tiny", "1b")
	for p, b := range map[string][]byte{blob: data, mp: manifest} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := &Hub{ModelsDir: filepath.Join(t.TempDir(), "models"), OllamaDirs: []string{store}}
	for _, spec := range []string{"ollama:tiny:1b", "ollama:library/tiny:1b", "ollama:registry.ollama.ai/library/tiny:1b"} {
		r, err := h.Resolve(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if r.Path != blob || r.Source != "ollama" || r.Name != "tiny:1b" {
			t.Fatalf("%s resolved to %+v, want the blob %s in place", spec, r, blob)
		}
	}
	_, err := h.Resolve("ollama:tiny")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "orchmind model pull tiny:latest") {
		t.Fatalf("missing tag: %v", err)
	}
	l := h.List()
	if len(l) != 1 || l[0].Spec != "ollama:tiny:1b" || l[0].Arch != "llama" || l[0].Quant != "Q8_0" || l[0].Size != int64(len(data)) || l[0].Path != blob {
		t.Fatalf("List: %+v", l)
	}
	if l[0].Fits(1<<40) != "yes" || l[0].Fits(1) != "no" || l[0].Fits(0) != "?" {
		t.Errorf("Fits: %s %s %s", l[0].Fits(1<<40), l[0].Fits(1), l[0].Fits(0))
	}
	// A blob shorter than its manifest says is reported, not loaded.
	if err := os.Truncate(blob, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Resolve("ollama:tiny:1b"); err == nil || !strings.Contains(err.Error(), "pull it again") {
		t.Fatalf("truncated blob: %v", err)
	}
}

func TestHFCacheFound(t *testing.T) {
	cache := t.TempDir()
	commit := strings.Repeat("ab", 20)
	snap := filepath.Join(cache, "models--org--tiny", "snapshots", commit)
	files := map[string]string{
		filepath.Join(cache, "models--org--tiny", "refs", "main"):                               commit,
		filepath.Join(snap, "config.json"):                                                      `{"model_type":"qwen3","torch_dtype":"bfloat16"}`,
		filepath.Join(snap, "model.safetensors"):                                                strings.Repeat("x", 2000),
		filepath.Join(cache, "models--org--tiny-GGUF", "refs", "main"):                          commit,
		filepath.Join(cache, "models--org--tiny-GGUF", "snapshots", commit, "tiny-Q4_K_M.gguf"): "GGUF",
		filepath.Join(cache, "models--org--tiny-GGUF", "snapshots", commit, "tiny-Q8_0.gguf"):   "GGUF",
	}
	for p, s := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := &Hub{HFCache: cache}
	r, err := h.Resolve("hf:org/tiny")
	if err != nil || r.Path != snap || r.Source != "hf-cache" {
		t.Fatalf("hf:org/tiny: %+v %v", r, err)
	}
	r, err = h.Resolve("hf:org/tiny-GGUF:q8_0")
	if err != nil || filepath.Base(r.Path) != "tiny-Q8_0.gguf" {
		t.Fatalf("hf:org/tiny-GGUF:q8_0: %+v %v", r, err)
	}
	if _, err := h.Resolve("hf:org/tiny-GGUF"); err == nil || !strings.Contains(err.Error(), "hf:org/tiny-GGUF:QUANT") {
		t.Fatalf("several GGUFs, no quant: %v", err)
	}
	if _, err := h.Resolve("hf:org/other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing repo: %v", err)
	}
	var specs []string
	for _, e := range h.List() {
		specs = append(specs, e.Spec+" "+e.Arch+" "+e.Quant)
	}
	if got := strings.Join(specs, ","); got != "hf:org/tiny qwen3 BF16,hf:org/tiny-GGUF:Q4_K_M  Q4_K_M,hf:org/tiny-GGUF:Q8_0  Q8_0" && got != "hf:org/tiny qwen3 BF16,hf:org/tiny-GGUF:Q4_K_M  ,hf:org/tiny-GGUF:Q8_0  " {
		t.Errorf("List: %q", got)
	}
}

func TestPullOllama(t *testing.T) {
	data := append(tinyGGUF(t, quant.F32), randomBytes(0, 0)...)
	o := hubtest.NewOllama()
	defer o.Close()
	_, digest := o.Add("library", "tiny", "1b", data)
	h := testHub(t)
	h.OllamaRegistry = o.URL
	var last, total int64
	r, err := h.Pull(t.Context(), "tiny:1b", func(d, tot int64) { last, total = d, tot })
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(h.ModelsDir, "ollama", "blobs", strings.Replace(digest, ":", "-", 1))
	if r.Path != want {
		t.Fatalf("pulled to %s, want %s", r.Path, want)
	}
	if got, _ := os.ReadFile(want); !bytes.Equal(got, data) {
		t.Fatal("blob differs from the registry's")
	}
	if last != total || total < int64(len(data)) {
		t.Errorf("progress ended at %d of %d", last, total)
	}
	if o.RangeRequests.Load() == 0 {
		t.Errorf("a %d-byte blob was not fetched in parallel ranges", len(data))
	}
	// The pulled model is found by name, in orchmind's folder.
	if r2, err := h.Resolve("ollama:tiny:1b"); err != nil || r2.Path != want || r2.Source != "orchmind" {
		t.Fatalf("resolve after pull: %+v %v", r2, err)
	}
	// Pulling again downloads nothing.
	sent := o.BlobBytes.Load()
	if _, err := h.Pull(t.Context(), "ollama:library/tiny:1b", nil); err != nil || o.BlobBytes.Load() != sent {
		t.Fatalf("second pull: %v, %d more bytes", err, o.BlobBytes.Load()-sent)
	}
	if _, err := h.Pull(t.Context(), "nosuch:1b", nil); err == nil || !strings.Contains(err.Error(), "has no model nosuch:1b") {
		t.Fatalf("missing model: %v", err)
	}
}

// TestPullResumesAfterDrop: the server closes the connection half-way
// through the body; the pull picks up from where the bytes stopped.
func TestPullResumesAfterDrop(t *testing.T) {
	data := randomBytes(600<<10, 3)
	o := hubtest.NewOllama()
	defer o.Close()
	o.Add("user", "big", "q4", data)
	h := testHub(t)
	h.Parallel = 1
	h.OllamaRegistry = o.URL
	o.DropAfter.Store(300 << 10)
	r, err := h.Pull(t.Context(), "user/big:q4", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(r.Path); !bytes.Equal(got, data) {
		t.Fatal("resumed blob differs")
	}
	sent := o.BlobBytes.Load()
	if o.RangeRequests.Load() == 0 || sent > int64(len(data))+8<<10 {
		t.Fatalf("not resumed: %d range requests, %d bytes sent for %d", o.RangeRequests.Load(), sent, len(data))
	}
}

// TestPullResumesAfterCancel: a pull stopped mid-way leaves a .partial and
// its state; the next pull fetches only the rest.
func TestPullResumesAfterCancel(t *testing.T) {
	data := randomBytes(512<<10, 4)
	o := hubtest.NewOllama()
	defer o.Close()
	o.Add("library", "slow", "latest", data)
	h := testHub(t)
	h.OllamaRegistry = o.URL
	o.Delay.Store(int64(20 * time.Millisecond))
	ctx, cancel := context.WithCancel(t.Context())
	_, err := h.Pull(ctx, "slow", func(d, _ int64) {
		if d > 200<<10 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: %v", err)
	}
	blob := filepath.Join(h.ModelsDir, "ollama", "blobs", strings.Replace(hubtest.Digest(data), ":", "-", 1))
	if _, err := os.Stat(blob + ".partial"); err != nil {
		t.Fatalf("no .partial left: %v", err)
	}
	if _, err := os.Stat(blob); err == nil {
		t.Fatal("an unfinished blob was renamed into place")
	}
	first := o.BlobBytes.Load()
	o.Delay.Store(0)
	if _, err := h.Pull(t.Context(), "slow", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(blob); !bytes.Equal(got, data) {
		t.Fatal("resumed blob differs")
	}
	second := o.BlobBytes.Load() - first
	t.Logf("first run sent %d bytes, the resumed run %d, of %d", first, second, len(data))
	if second >= int64(len(data)) {
		t.Fatalf("the second pull downloaded %d bytes of %d: not resumed", second, len(data))
	}
	if _, err := os.Stat(blob + ".partial.json"); err == nil {
		t.Error("state file left behind")
	}
}

func TestPullCorruptRefused(t *testing.T) {
	data := randomBytes(100<<10, 5)
	o := hubtest.NewOllama()
	defer o.Close()
	_, digest := o.Add("library", "bad", "1b", data)
	o.Corrupt.Store(true)
	h := testHub(t)
	h.OllamaRegistry = o.URL
	_, err := h.Pull(t.Context(), "bad:1b", nil)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), strings.TrimPrefix(digest, "sha256:")) {
		t.Fatalf("corrupt blob: %v", err)
	}
	blobs, _ := filepath.Glob(filepath.Join(h.ModelsDir, "ollama", "blobs", "*"))
	for _, b := range blobs {
		if strings.Contains(b, strings.TrimPrefix(digest, "sha256:")) {
			t.Errorf("left %s behind", b)
		}
	}
	if _, err := os.Stat(filepath.Join(h.ModelsDir, "ollama", "manifests")); err == nil {
		t.Error("a manifest was written for a corrupt pull")
	}
}

func hfRepo(t *testing.T) (*hubtest.HFRepo, []byte) {
	weights := randomBytes(300<<10, 6)
	return &hubtest.HFRepo{
		Files: map[string][]byte{
			"config.json":       []byte(`{"model_type":"llama","torch_dtype":"float32"}`),
			"tokenizer.json":    []byte(`{"model":{"type":"BPE"}}`),
			"model.safetensors": weights,
			"README.md":         []byte("# tiny"),
			"onnx/model.onnx":   randomBytes(1000, 9),
		},
		LFS: map[string]bool{"model.safetensors": true, "tokenizer.json": true, "onnx/model.onnx": true},
	}, weights
}

func TestPullHF(t *testing.T) {
	srv := hubtest.NewHF()
	defer srv.Close()
	repo, weights := hfRepo(t)
	srv.Add("org/tiny", repo)
	srv.Add("org/tiny-GGUF", &hubtest.HFRepo{
		Files: map[string][]byte{"tiny-Q4_K_M.gguf": randomBytes(70<<10, 1), "tiny-Q8_0.gguf": randomBytes(90<<10, 2), "README.md": []byte("x")},
		LFS:   map[string]bool{"tiny-Q4_K_M.gguf": true, "tiny-Q8_0.gguf": true},
	})
	h := testHub(t)
	h.HFEndpoint = srv.URL
	srv.DropAfter.Store(100 << 10)
	r, err := h.Pull(t.Context(), "hf:org/tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(h.ModelsDir, "huggingface", "models--org--tiny", "snapshots", repo.Commit)
	if r.Path != snap {
		t.Fatalf("pulled to %s, want %s", r.Path, snap)
	}
	if got, _ := os.ReadFile(filepath.Join(snap, "model.safetensors")); !bytes.Equal(got, weights) {
		t.Fatal("weights differ")
	}
	for _, f := range []string{"config.json", "tokenizer.json"} {
		if _, err := os.Stat(filepath.Join(snap, f)); err != nil {
			t.Error(err)
		}
	}
	for _, f := range []string{"README.md", "onnx"} {
		if _, err := os.Stat(filepath.Join(snap, f)); err == nil {
			t.Errorf("%s was pulled", f)
		}
	}
	if srv.RangeRequests.Load() == 0 {
		t.Error("the dropped connection was not resumed with a range")
	}
	if r2, err := h.Resolve("hf:org/tiny"); err != nil || r2.Path != snap {
		t.Fatalf("resolve after pull: %+v %v", r2, err)
	}
	if _, err := h.Pull(t.Context(), "hf:org/tiny-GGUF", nil); err == nil || !strings.Contains(err.Error(), "hf:org/tiny-GGUF:QUANT") {
		t.Errorf("GGUF repo without quant: %v", err)
	}
	r, err = h.Pull(t.Context(), "hf:org/tiny-GGUF:Q8_0", nil)
	if err != nil || filepath.Base(r.Path) != "tiny-Q8_0.gguf" {
		t.Fatalf("GGUF by quant: %+v %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(r.Path), "tiny-Q4_K_M.gguf")); err == nil {
		t.Error("the other quant was pulled too")
	}
	if _, err := h.Pull(t.Context(), "hf:org/tiny-GGUF:Q2_K", nil); err == nil || !strings.Contains(err.Error(), "tiny-Q4_K_M.gguf") {
		t.Errorf("missing quant: %v", err)
	}
	// A corrupt LFS file is refused and nothing is renamed into place.
	srv.Corrupt.Store(true)
	h2 := testHub(t)
	h2.HFEndpoint = srv.URL
	_, err = h2.Pull(t.Context(), "hf:org/tiny", nil)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h2.ModelsDir, "huggingface", "models--org--tiny", "snapshots", repo.Commit, "model.safetensors")); err == nil {
		t.Error("a corrupt file was renamed into place")
	}
}

func TestPullHFGated(t *testing.T) {
	srv := hubtest.NewHF()
	defer srv.Close()
	repo, _ := hfRepo(t)
	repo.Token = "hf_secret"
	srv.Add("meta-llama/Llama-3.2-1B", repo)
	h := testHub(t)
	h.HFEndpoint = srv.URL
	_, err := h.Pull(t.Context(), "hf:meta-llama/Llama-3.2-1B", nil)
	var ae *AccessError
	if !errors.As(err, &ae) || ae.Status != 401 || !strings.Contains(err.Error(), srv.URL+"/meta-llama/Llama-3.2-1B") || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("gated, no token: %v", err)
	}
	t.Logf("401: %v", err)
	h.HFToken = "hf_other"
	_, err = h.Pull(t.Context(), "hf:meta-llama/Llama-3.2-1B", nil)
	if !errors.As(err, &ae) || ae.Status != 403 || !strings.Contains(err.Error(), "accept the licence") {
		t.Fatalf("gated, wrong token: %v", err)
	}
	t.Logf("403: %v", err)
	h.HFToken = "hf_secret"
	if _, err := h.Pull(t.Context(), "hf:meta-llama/Llama-3.2-1B", nil); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	// As on Hugging Face itself: the API answers, the files are refused.
	repo2, _ := hfRepo(t)
	repo2.Token, repo2.FilesOnly = "hf_secret", true
	srv.Add("google/gemma-3-1b-it", repo2)
	h2 := testHub(t)
	h2.HFEndpoint = srv.URL
	_, err = h2.Pull(t.Context(), "hf:google/gemma-3-1b-it", nil)
	if !errors.As(err, &ae) || ae.Status != 401 || !strings.Contains(err.Error(), srv.URL+"/google/gemma-3-1b-it") || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("gated files: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(h2.ModelsDir, "huggingface", "models--google--gemma-3-1b-it", "snapshots", "*", "*")); len(m) != 0 {
		t.Errorf("files kept from a refused pull: %v", m)
	}
}

// TestPullLocked: a second pull of a file being downloaded is refused
// rather than writing the same .partial at once.
func TestPullLocked(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
	data := randomBytes(256<<10, 8)
	o := hubtest.NewOllama()
	defer o.Close()
	o.Add("library", "slow", "1b", data)
	o.Delay.Store(int64(20 * time.Millisecond))
	h := testHub(t)
	h.OllamaRegistry = o.URL
	started := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		_, err := h.Pull(t.Context(), "slow:1b", func(int64, int64) { once.Do(func() { close(started) }) })
		errc <- err
	}()
	<-started
	h2 := *h
	h2.Client = nil
	_, err := h2.Pull(t.Context(), "slow:1b", nil)
	if err == nil || !strings.Contains(err.Error(), "another orchmind process") {
		t.Errorf("second pull at once: %v", err)
	}
	o.Delay.Store(0)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestPullFindsOllamaCopy: a model Ollama already has is not downloaded
// again.
func TestPullFindsOllamaCopy(t *testing.T) {
	data := tinyGGUF(t, quant.F32)
	o := hubtest.NewOllama()
	defer o.Close()
	manifest, digest := o.Add("library", "tiny", "1b", data)
	store := t.TempDir()
	blob := filepath.Join(store, "blobs", strings.Replace(digest, ":", "-", 1))
	mp := filepath.Join(store, "manifests", "registry.ollama.ai", "library", "tiny", "1b")
	for p, b := range map[string][]byte{blob: data, mp: manifest} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := testHub(t)
	h.OllamaDirs, h.OllamaRegistry = []string{store}, o.URL
	r, err := h.Pull(t.Context(), "tiny:1b", nil)
	if err != nil || !r.Here || r.Path != blob || o.BlobBytes.Load() != 0 {
		t.Fatalf("pull of a model Ollama has: %+v %v, %d bytes fetched", r, err, o.BlobBytes.Load())
	}
}
