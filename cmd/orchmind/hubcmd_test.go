package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	nodebase "orchmind/engine/base"
	"orchmind/engine/hub/hubtest"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tokenizer"
	"orchmind/node"
	"orchmind/node/config"

	"github.com/spf13/pflag"
)

// TestMain lets the tests run this package's main() as a subprocess (the
// orchmind binary's code, which a test can kill -9): with
// ORCHMIND_TEST_MAIN=1 the test binary is orchmind. No node a test here
// starts joins the public IPFS DHT, even when `go test` runs outside the
// Makefile (which exports the same setting) and its loopback-only
// namespace: --public-dht defaults to off for them and for the
// subprocesses they start.
func TestMain(m *testing.M) {
	if os.Getenv("ORCHMIND_TEST_MAIN") == "1" {
		main()
		return
	}
	if err := os.Setenv(PublicDHTEnv, "off"); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// tinyBase writes a small real GGUF with a byte-level BPE tokenizer inside,
// so every verb (node included) can load it.
func tinyBase(t *testing.T) []byte {
	t.Helper()
	var tokens []string
	var types []int32
	for b := range 256 {
		tokens = append(tokens, tokenizer.ByteLevel(string([]byte{byte(b)})))
		types = append(types, tokenizer.TokenNormal)
	}
	tokens = append(tokens, "<|endoftext|>")
	types = append(types, tokenizer.TokenControl)
	eot := len(tokens) - 1
	ref, err := tokenizer.NewBPE(tokens, nil, types, eot, eot, "qwen2")
	if err != nil {
		t.Fatal(err)
	}
	c := model.Config{Dim: 32, HiddenDim: 64, Layers: 1, Heads: 4, KVHeads: 2, Vocab: len(tokens), SeqLen: 64, NormEps: 1e-5, RopeTheta: 10000}
	m, err := model.Random(c, quant.F32, 11)
	if err != nil {
		t.Fatal(err)
	}
	v, err := nodebase.VocabOf(nodebase.NewBPETokenizer(ref), c.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := model.WriteGGUF(p, m, "tiny", model.AsStored, v, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hubEnv points orchmind at a fresh data folder, empty Ollama and Hugging
// Face stores and the given local registries.
func hubEnv(t *testing.T, ollamaURL, hfURL string) (home string) {
	home = t.TempDir()
	t.Setenv("ORCHMIND_HOME", home)
	t.Setenv("OLLAMA_MODELS", t.TempDir())
	t.Setenv("HF_HOME", t.TempDir())
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HUGGING_FACE_HUB_TOKEN", "")
	t.Setenv("ORCHMIND_OLLAMA_REGISTRY", ollamaURL)
	t.Setenv("HF_ENDPOINT", hfURL)
	return home
}

func TestModelPullListInfoCLI(t *testing.T) {
	reg := hubtest.NewOllama()
	defer reg.Close()
	data := tinyBase(t)
	_, digest := reg.Add("library", "tiny", "1b", data)
	home := hubEnv(t, reg.URL, "http://127.0.0.1:1")
	code, out, errOut := runCLI(t, "model", "pull", "tiny:1b")
	if code != 0 {
		t.Fatalf("pull: %d %s", code, errOut)
	}
	blob := filepath.Join(home, "models", "ollama", "blobs", "sha256-"+strings.TrimPrefix(digest, "sha256:"))
	if strings.TrimSpace(out) != blob || !strings.Contains(errOut, "100%") {
		t.Fatalf("pull printed %q, stderr %q", out, errOut)
	}
	if got, _ := os.ReadFile(blob); !bytes.Equal(got, data) {
		t.Fatal("pulled blob differs")
	}
	// The first pull becomes the node's base.
	if _, v, _ := runCLI(t, "config", "get", "model"); strings.TrimSpace(v) != "ollama:tiny:1b" {
		t.Errorf("config model after the first pull: %q", v)
	}
	code, out, errOut = runCLI(t, "model", "list")
	if code != 0 || !strings.Contains(out, "ollama:tiny:1b") || !strings.Contains(out, "llama") || !strings.Contains(out, "F32") || !strings.Contains(out, blob) {
		t.Fatalf("list: %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "model", "info", "ollama:tiny:1b")
	if code != 0 || !strings.Contains(out, "path          "+blob) && !strings.Contains(out, blob) || !strings.Contains(out, "fingerprint") {
		t.Fatalf("info: %d %q %q", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "model", "info", "ollama:other:1b")
	if code != 1 || !strings.Contains(errOut, "orchmind model pull other:1b") {
		t.Fatalf("info of a missing model: %d %q", code, errOut)
	}
}

func TestModelPullRefusesCorruptCLI(t *testing.T) {
	reg := hubtest.NewOllama()
	defer reg.Close()
	_, digest := reg.Add("library", "bad", "1b", tinyBase(t))
	reg.Corrupt.Store(true)
	home := hubEnv(t, reg.URL, "http://127.0.0.1:1")
	code, _, errOut := runCLI(t, "model", "pull", "bad:1b")
	if code != 1 || !strings.Contains(errOut, strings.TrimPrefix(digest, "sha256:")) || !strings.Contains(errOut, "corrupt") {
		t.Fatalf("corrupt pull: %d %q", code, errOut)
	}
	if m, _ := filepath.Glob(filepath.Join(home, "models", "ollama", "blobs", "sha256-"+strings.TrimPrefix(digest, "sha256:")+"*")); len(m) != 0 {
		t.Fatalf("left behind: %v", m)
	}
}

func TestModelPullGatedCLI(t *testing.T) {
	hf := hubtest.NewHF()
	defer hf.Close()
	hf.Add("meta-llama/Llama-3.2-1B", &hubtest.HFRepo{Token: "hf_ok",
		Files: map[string][]byte{"config.json": []byte(`{"model_type":"llama"}`), "model.safetensors": []byte("weights")},
		LFS:   map[string]bool{"model.safetensors": true}})
	hubEnv(t, "http://127.0.0.1:1", hf.URL)
	code, _, errOut := runCLI(t, "model", "pull", "hf:meta-llama/Llama-3.2-1B")
	if code != 1 || !strings.Contains(errOut, "HTTP 401") || !strings.Contains(errOut, hf.URL+"/meta-llama/Llama-3.2-1B") || !strings.Contains(errOut, "HF_TOKEN") {
		t.Fatalf("gated: %d %q", code, errOut)
	}
	t.Setenv("HF_TOKEN", "hf_ok")
	if code, _, errOut := runCLI(t, "model", "pull", "hf:meta-llama/Llama-3.2-1B"); code != 0 {
		t.Fatalf("with HF_TOKEN: %d %q", code, errOut)
	}
}

// TestModelPullResumesAfterKill9 runs `orchmind model pull` as its own
// process, kills it with SIGKILL half-way, and checks that the next pull
// fetches only what was missing.
func TestModelPullResumesAfterKill9(t *testing.T) {
	reg := hubtest.NewOllama()
	defer reg.Close()
	data := tinyBase(t)
	data = append(data, make([]byte, 6<<20)...) // trailing bytes: the loader ignores them, the download does not
	_, digest := reg.Add("user", "big", "q4", data)
	home := hubEnv(t, reg.URL, "http://127.0.0.1:1")
	reg.Delay.Store(int64(10 * time.Millisecond)) // ~1.6 MB/s: about 4 s for the whole blob

	cmd := exec.Command(os.Args[0], "model", "pull", "user/big:q4")
	cmd.Env = append(os.Environ(), "ORCHMIND_TEST_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(home, "models", "ollama", "blobs", "sha256-"+strings.TrimPrefix(digest, "sha256:"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := os.ReadFile(blob + ".partial.json")
		if err == nil && bytes.Contains(st, []byte(`"done":`)) && !bytes.Contains(st, []byte(`"done":0`)) {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no progress recorded after 30 s; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := os.Stat(blob); err == nil {
		t.Fatal("the blob was in place before the pull finished")
	}
	first := reg.BlobBytes.Load()
	if first >= int64(len(data)) {
		t.Fatalf("the killed pull had already fetched everything (%d bytes)", first)
	}
	reg.Delay.Store(0)
	code, out, errOut := runCLI(t, "model", "pull", "user/big:q4")
	if code != 0 || strings.TrimSpace(out) != blob {
		t.Fatalf("resumed pull: %d %q %q", code, out, errOut)
	}
	if got, _ := os.ReadFile(blob); !bytes.Equal(got, data) {
		t.Fatal("resumed blob differs")
	}
	second := reg.BlobBytes.Load() - first
	t.Logf("killed after %d of %d bytes; the resumed pull fetched %d more", first, len(data), second)
	if second >= int64(len(data)) || reg.RangeRequests.Load() == 0 {
		t.Fatalf("not resumed: the second pull fetched %d bytes of %d", second, len(data))
	}
}

func TestConfigCLI(t *testing.T) {
	home := hubEnv(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	for _, args := range [][]string{
		{"config", "set", "model", "ollama:gemma3:1b"},
		{"config", "set", "port", "4101"},
		{"config", "set", "bootstrap", "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"},
		{"config", "set", "api", "127.0.0.1:11500"},
	} {
		if code, _, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: %d %s", args, code, errOut)
		}
	}
	if _, out, _ := runCLI(t, "config", "get", "port"); strings.TrimSpace(out) != "4101" {
		t.Errorf("port: %q", out)
	}
	_, out, _ := runCLI(t, "config", "list")
	for _, want := range []string{"ollama:gemma3:1b", "127.0.0.1:11500", "/p2p/12D3KooW"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	for _, bad := range [][]string{{"config", "set", "colour", "blue"}, {"config", "set", "port", "99999"}, {"config", "set", "bootstrap", "/ip4/1.2.3.4/tcp/1"}, {"config", "set", "model", "ollama:a/b/c/d"}, {"config", "set", "model", "/no/such.gguf"}} {
		if code, _, errOut := runCLI(t, bad...); code != 2 || errOut == "" {
			t.Errorf("%v: %d %q", bad, code, errOut)
		}
	}
	if code, _, _ := runCLI(t, "config", "unset", "port"); code != 0 {
		t.Fatal("unset")
	}
	raw, err := os.ReadFile(filepath.Join(home, "config.json"))
	if err != nil || strings.Contains(string(raw), "4101") || !strings.Contains(string(raw), "gemma3") {
		t.Fatalf("config.json: %s %v", raw, err)
	}
}

// TestNodeStartsFromConfig: in a fresh data folder, one `config set model`
// (and settings that keep the node on loopback: no mDNS, no public DHT,
// local listen and API addresses) is enough for `orchmind node` with no flags.
func TestNodeStartsFromConfig(t *testing.T) {
	home := hubEnv(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	gguf := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := os.WriteFile(gguf, tinyBase(t), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "node")
	if code != 2 || !strings.Contains(errOut, "orchmind config set model") {
		t.Fatalf("node without a model: %d %q", code, errOut)
	}
	for _, args := range [][]string{
		{"config", "set", "model", gguf},
		{"config", "set", "listen", "/ip4/127.0.0.1/tcp/0"},
		{"config", "set", "api", "127.0.0.1:0"},
		{"config", "set", "mdns", "false"},
		{"config", "set", "public-dht", "off"},
	} {
		if code, _, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: %d %s", args, code, errOut)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var o, e syncBuffer // a node logs from its own goroutines too
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"node"}, strings.NewReader(""), &o, &e) }()
	var url string
	deadline := time.Now().Add(60 * time.Second)
	for url == "" {
		if b, err := os.ReadFile(filepath.Join(home, node.APIFile)); err == nil {
			url = strings.TrimSpace(string(b))
		}
		select {
		case c := <-done:
			t.Fatalf("node exited with %d: %s", c, e.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("node did not start in 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get(url + "/api/info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Base struct {
			Name string `json:"name"`
		} `json:"base"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.Base.Name != "tiny" || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("node at %s serves base %q", url, info.Base.Name)
	}
	cancel()
	if c := <-done; c != 0 {
		t.Fatalf("node exit %d: %s", c, e.String())
	}
}

// TestAdaptersDirDefault: adapters live in the data folder unless the
// working folder has an earlier orchmind's lora_adapters; flags and the
// config file win.
func TestAdaptersDirDefault(t *testing.T) {
	home := hubEnv(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	t.Chdir(t.TempDir())
	adaptersAfter := func(args ...string) string {
		e := &env{stderr: &bytes.Buffer{}, getenv: os.Getenv}
		fs := pflag.NewFlagSet("node", pflag.ContinueOnError)
		fs.String("data-dir", home, "")
		fs.String("model", "", "")
		fs.String("adapters-dir", "lora_adapters", "")
		if err := fs.Parse(append([]string{"--model", "ollama:x:1b"}, args...)); err != nil {
			t.Fatal(err)
		}
		if err := nodeConfig(e, fs); err != nil {
			t.Fatal(err)
		}
		return fs.Lookup("adapters-dir").Value.String()
	}
	if got := adaptersAfter(); got != filepath.Join(home, "adapters") {
		t.Errorf("fresh: %s", got)
	}
	if got := adaptersAfter("--adapters-dir", "mine"); got != "mine" {
		t.Errorf("flag: %s", got)
	}
	if err := os.Mkdir("lora_adapters", 0o755); err != nil {
		t.Fatal(err)
	}
	if got := adaptersAfter(); got != "lora_adapters" {
		t.Errorf("with ./lora_adapters: %s", got)
	}
}

// TestFirstRunSavesConfig: `node --model M` in a fresh data folder saves
// its flags, so the next start needs none.
func TestFirstRunSavesConfig(t *testing.T) {
	home := hubEnv(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	gguf := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := os.WriteFile(gguf, tinyBase(t), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()            // the node starts and stops at once
	var o, e syncBuffer // a node logs from its own goroutines too
	code := run(ctx, []string{"node", "--model", gguf, "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--public-dht=off"}, strings.NewReader(""), &o, &e)
	if !strings.Contains(e.String(), "first run: saved") {
		t.Fatalf("first run (exit %d) did not save its settings: %s", code, e.String())
	}
	raw, err := os.ReadFile(filepath.Join(home, "config.json"))
	if err != nil || !strings.Contains(string(raw), gguf) || !strings.Contains(string(raw), "127.0.0.1/tcp/0") {
		t.Fatalf("config.json: %s %v", raw, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBareFirstRun: `orchmind` alone in a fresh data folder serves the
// first-run page; choosing a base found in Ollama's store saves it and
// starts the node on the same address.
func TestBareFirstRun(t *testing.T) {
	home := hubEnv(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	t.Setenv("ORCHMIND_NO_BROWSER", "1")
	store := os.Getenv("OLLAMA_MODELS")
	reg := hubtest.NewOllama()
	defer reg.Close()
	blobData := tinyBase(t)
	manifest, digest := reg.Add("library", "tiny", "1b", blobData)
	for p, b := range map[string][]byte{
		filepath.Join(store, "blobs", "sha256-"+strings.TrimPrefix(digest, "sha256:")):   blobData,
		filepath.Join(store, "manifests", "registry.ollama.ai", "library", "tiny", "1b"): manifest,
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"config", "set", "api", "127.0.0.1:0"}, {"config", "set", "listen", "/ip4/127.0.0.1/tcp/0"}, {"config", "set", "mdns", "false"}} {
		if code, _, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, strings.NewReader(""), io.Discard, &errOut) }()
	var url string
	for i := 0; url == "" && i < 400; i++ {
		if _, rest, ok := strings.Cut(errOut.String(), "choose one on "); ok {
			url = strings.Fields(rest)[0]
		}
		time.Sleep(25 * time.Millisecond)
	}
	if url == "" {
		t.Fatalf("no setup page announced: %s", errOut.String())
	}
	resp, err := http.Get(url + "api/setup/models")
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Local []struct{ Spec string } }
	_ = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if len(m.Local) != 1 || m.Local[0].Spec != "ollama:tiny:1b" {
		t.Fatalf("local models: %+v", m)
	}
	resp, err = http.Post(url+"api/setup/use", "application/json", strings.NewReader(`{"name":"ollama:tiny:1b"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("use: %v %v", resp, err)
	}
	resp.Body.Close()
	var base string
	for i := 0; base == "" && i < 600; i++ {
		if r, err := http.Get(url + "api/info"); err == nil {
			var info struct {
				Base *struct{ Name string } `json:"base"`
			}
			_ = json.NewDecoder(r.Body).Decode(&info)
			r.Body.Close()
			if info.Base != nil {
				base = info.Base.Name
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if base != "tiny:1b" {
		t.Fatalf("node base %q after choosing; stderr: %s", base, errOut.String())
	}
	cancel()
	if c := <-done; c != 0 {
		t.Fatalf("exit %d: %s", c, errOut.String())
	}
	if c, _, _ := config.Load(home); c.Model != "ollama:tiny:1b" {
		t.Errorf("config model %q", c.Model)
	}
}
