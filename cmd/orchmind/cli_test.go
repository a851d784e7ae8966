package main

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"orchmind/adapters"
	"orchmind/internal/testshared"
	"orchmind/trainer/hparams"
)

// isolate runs the test in an empty folder with HOME, the config folders
// and ORCHMIND_HOME inside it and no ORCHMIND_HOST, and returns the folder.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	for _, k := range []string{"HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "APPDATA", "LOCALAPPDATA", "USERPROFILE"} {
		t.Setenv(k, dir)
	}
	t.Setenv("ORCHMIND_HOME", filepath.Join(dir, "orchmind-home"))
	t.Setenv("ORCHMIND_HOST", "")
	return dir
}

// allCommands is every command a user can call: the root, the verbs, their
// sub-verbs, help and completion; the tree is walked so that new verbs are
// covered without editing the tests.
func allCommands() []*cobra.Command {
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv, version: "test"}
	var out []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		out = append(out, c)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRoot(e))
	return out
}

// path is the command's words after "orchmind".
func path(c *cobra.Command) []string {
	return strings.Fields(strings.TrimPrefix(c.CommandPath(), "orchmind"))
}

// TestHelpEveryVerb: every verb and sub-verb answers --help, -h and
// "help VERB…" with its usage on stderr and exit status 0, and does
// nothing else: nothing on stdout, nothing written in the working folder
// or the (temporary) home folder. On the flag-based CLI, model --help,
// export --help and room --help exited 2 and room create --help made a
// room.
func TestHelpEveryVerb(t *testing.T) {
	dir := isolate(t)
	cmds := allCommands()
	if len(cmds) < 20 {
		t.Fatalf("the walk found only %d commands", len(cmds))
	}
	for _, c := range cmds {
		p := path(c)
		for _, args := range [][]string{append(p, "--help"), append(p, "-h"), append([]string{"help"}, p...)} {
			code, stdout, stderr := runCLI(t, args...)
			name := "orchmind " + strings.Join(args, " ")
			if code != 0 || stdout != "" {
				t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 0 and help on stderr only", name, code, stdout, stderr)
				continue
			}
			if !strings.Contains(stderr, "Usage: "+c.CommandPath()) || strings.Contains(stderr, "orchmind: help:") {
				t.Errorf("%s: stderr lacks %q:\n%s", name, "Usage: "+c.CommandPath(), stderr)
			}
			if c.HasAvailableLocalFlags() && !strings.Contains(stderr, "Flags:") {
				t.Errorf("%s: flags not listed:\n%s", name, stderr)
			}
		}
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if p != dir {
			t.Errorf("--help left %s behind", p)
		}
		return err
	})
}

// fakeNode is a node's API that records what the client verbs ask.
type fakeNode struct {
	*httptest.Server
	mu   sync.Mutex
	got  map[string]map[string]any // path → last JSON body
	hits int
}

func newFakeNode(t *testing.T) *fakeNode {
	f := &fakeNode{got: map[string]map[string]any{}}
	answers := map[string]any{
		"/api/adapters/load":  map[string]any{"name": "facts"},
		"/api/swarm/publish":  map[string]any{"cid": "bafyfake"},
		"/api/swarm/search":   map[string]any{"results": []map[string]any{{"cid": "bafyfake", "name": "facts", "base_name": "stories", "size": 2048, "publisher": "12D3KooWfake"}}},
		"/api/swarm/pull":     map[string]any{"dir": "/adapters/facts"},
		"/api/swarm/peers":    map[string]any{"peers": []map[string]any{{"id": "12D3KooWpeer", "addrs": []string{"/ip4/127.0.0.1/tcp/1"}}}},
		"/api/info":           map[string]any{},
		"/api/swarm/unknown/": nil,
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.got[r.URL.Path] = body
		f.hits++
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(a)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNode) body(p string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[p]
}

// writeAdapter writes a small valid adapter folder (one rank-2 pair).
func writeAdapter(t *testing.T, dir string, seed float32) {
	t.Helper()
	p := &adapters.Pair{In: 8, Out: 8, A: make([]float32, 16), B: make([]float32, 16)}
	for i := range p.A {
		p.A[i], p.B[i] = seed*float32(i+1)/16, seed*float32(16-i)/16
	}
	a := &adapters.Adapter{Rank: 2, Alpha: 4, TargetModules: []adapters.Module{adapters.Q}, BaseName: "tiny", BaseFingerprint: "sha256:tiny",
		Pairs: map[adapters.Key]*adapters.Pair{{Layer: 0, Module: adapters.Q}: p}}
	if err := adapters.WriteFolder(dir, a, adapters.Manifest{Announced: adapters.Announced{Name: filepath.Base(dir), BaseName: "tiny", Rank: 2, Alpha: 4}}, adapters.SafetensorsCodec{}); err != nil {
		t.Fatal(err)
	}
}

// TestFlagsAfterArguments: every verb that takes both positional arguments
// and flags reads a flag written after its arguments as a flag. On the
// flag-based CLI, search stories --base X searched for "stories --base X"
// and publish, pull and merge dropped or misread what came after.
func TestFlagsAfterArguments(t *testing.T) {
	// Paths in the repository and shared/ are found from the package
	// folder, before isolate moves into an empty one.
	tiny, err := filepath.Abs(filepath.Join("..", "..", "testdata", "hf", "tiny-qwen2-torch"))
	if err != nil {
		t.Fatal(err)
	}
	shared := testshared.Dir()
	dir := isolate(t)
	node := newFakeNode(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeAdapter(t, a, 1)
	writeAdapter(t, b, 2)
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(t *testing.T){
		"search": func(t *testing.T) {
			code, out, errOut := runCLI(t, "search", "stories", "--base", "sha256:abc", "--api", node.URL)
			q := node.body("/api/swarm/search")
			if code != 0 || q["query"] != "stories" || q["base_fingerprint"] != "sha256:abc" || !strings.Contains(out, "bafyfake") {
				t.Errorf("exit %d, request %v, stdout %q, stderr %q", code, q, out, errOut)
			}
		},
		"publish": func(t *testing.T) {
			code, out, errOut := runCLI(t, "publish", a, "--room", "ROOM-CODE", "--api", node.URL)
			// The folder is published from disk, not loaded first.
			load, pub := node.body("/api/adapters/load"), node.body("/api/swarm/publish")
			if code != 0 || load != nil || pub["path"] != a || pub["room"] != "ROOM-CODE" || out != "bafyfake\n" {
				t.Errorf("exit %d, load %v, publish %v, stdout %q, stderr %q", code, load, pub, out, errOut)
			}
		},
		"pull": func(t *testing.T) {
			code, out, errOut := runCLI(t, "pull", "bafyfake", "--api", node.URL)
			if q := node.body("/api/swarm/pull"); code != 0 || q["cid"] != "bafyfake" || out != "/adapters/facts\n" {
				t.Errorf("exit %d, request %v, stdout %q, stderr %q", code, q, out, errOut)
			}
		},
		"config": func(t *testing.T) {
			home := t.TempDir()
			if code, _, errOut := runCLI(t, "config", "set", "api", "127.0.0.1:12345", "--data-dir", home); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if code, out, errOut := runCLI(t, "config", "get", "api", "--data-dir", home); code != 0 || strings.TrimSpace(out) != "127.0.0.1:12345" {
				t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		},
		"model pull": func(t *testing.T) {
			// A name that cannot be pulled, with the flag after it: the
			// flag is read (the error names no flag problem) and the
			// name is refused as a name.
			code, _, errOut := runCLI(t, "model", "pull", "hf:", "--data-dir", t.TempDir())
			if code == 0 || strings.Contains(errOut, "unknown flag") || strings.Contains(errOut, "give one model name") {
				t.Errorf("exit %d, stderr %q", code, errOut)
			}
		},
		"model info": func(t *testing.T) {
			code, out, errOut := runCLI(t, "model", "info", tiny, "--quant", "q8_0")
			if code != 0 || !strings.Contains(out, "Q8_0 ×") {
				t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		},
		"model convert": func(t *testing.T) {
			if shared == "" {
				t.Skip("skipping: the shared/ folder (beside the repository, or $ORCHMIND_SHARED) is absent; it holds models/stories260K")
			}
			m := filepath.Join(shared, "models", "stories260K", "stories260K.bin")
			out := filepath.Join(dir, "s.gguf")
			if code, _, errOut := runCLI(t, "model", "convert", m, "--out", out, "--quant", "q8_0"); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if _, info, _ := runCLI(t, "model", "info", out); !strings.Contains(info, "Q8_0 ×") {
				t.Errorf("converted model is not Q8_0:\n%s", info)
			}
		},
		"export ollama": func(t *testing.T) {
			// --base read as a flag: the folder is checked (and has no
			// GGUF LoRA), not refused for want of --base.
			code, _, errOut := runCLI(t, "export", "ollama", empty, "--base", filepath.Join(dir, "base.gguf"))
			if code != 1 || !strings.Contains(errOut, "has no adapter.gguf") {
				t.Errorf("exit %d, stderr %q", code, errOut)
			}
		},
		"export gguf": func(t *testing.T) {
			code, _, errOut := runCLI(t, "export", "gguf", a, "--model", filepath.Join(dir, "none.gguf"), "--out", filepath.Join(dir, "m.gguf"))
			if code != 1 || !strings.Contains(errOut, "none.gguf") {
				t.Errorf("exit %d, stderr %q", code, errOut)
			}
		},
		"adapters merge": func(t *testing.T) {
			out := filepath.Join(dir, "merged")
			code, _, errOut := runCLI(t, "adapters", "merge", a, b, "--out", out, "--weights", "0.25,0.75")
			got, man, err := adapters.ReadFolder(out, adapters.SafetensorsCodec{})
			if code != 0 || err != nil || got.Rank != 4 || len(man.Parents) != 2 {
				t.Fatalf("exit %d, stderr %q, merged %v %v", code, errOut, got, err)
			}
		},
	}
	covered := map[string]bool{}
	for _, c := range allCommands() {
		hasFlags := false
		c.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) { hasFlags = hasFlags || f.Name != "help" })
		if c.HasSubCommands() || c.Args == nil || c.Args(c, []string{"x"}) != nil || !hasFlags || c.Name() == "completion" {
			continue
		}
		name := strings.Join(path(c), " ")
		covered[name] = true
		f, ok := cases[name]
		if !ok {
			t.Errorf("%s takes arguments and flags: add it to TestFlagsAfterArguments", name)
			continue
		}
		t.Run(name, f)
	}
	for name := range cases {
		if !covered[name] {
			t.Errorf("case %q matches no verb that takes arguments and flags", name)
		}
	}
}

// TestUsageErrors: wrong command lines exit 2 with one line saying what
// is wrong; verbs that take no arguments refuse them rather than drop them.
func TestUsageErrors(t *testing.T) {
	isolate(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"model"}, "orchmind model: usage: use orchmind model list"},
		{[]string{"export"}, "orchmind export: usage: orchmind export ollama"},
		{[]string{"export", "zip"}, `unknown export target "zip"`},
		{[]string{"room"}, "orchmind room: usage: orchmind room create prints"},
		{[]string{"room", "join"}, "orchmind room join: usage: orchmind room join CODE"},
		{[]string{"room", "create", "extra"}, `unexpected argument "extra"`},
		{[]string{"adapters", "lisst"}, `unknown adapters command "lisst"`},
		{[]string{"generate", "--model", "m.gguf", "stray"}, `orchmind generate: usage: unexpected argument "stray"`},
		{[]string{"train", "--epochs", "3.5"}, `not a whole number: "3.5"`},
		{[]string{"train", "--frob"}, "orchmind train: usage: unknown flag: --frob"},
		{[]string{"generate", "-n", "-2", "--model", "m"}, "must not be negative"},
		{[]string{"modle"}, `did you mean model`},
		{[]string{"search", "x", "--api", "ftp://h"}, "scheme must be http or https"},
	} {
		code, stdout, stderr := runCLI(t, c.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("orchmind %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(c.args, " "), code, stdout, stderr, c.want)
		}
	}
	if code, _, stderr := runCLI(t, "room", "join", "not a code"); code != 1 || !strings.HasPrefix(stderr, "orchmind room join: ") {
		t.Errorf("room join with a bad code: exit %d, %q", code, stderr)
	}
}

// TestSingleDashLongFlags: -name and -name=value, which the flag package
// took, still work; one-letter flags keep their short form.
func TestSingleDashLongFlags(t *testing.T) {
	isolate(t)
	node := newFakeNode(t)
	code, _, errOut := runCLI(t, "search", "-base=this", "stories", "-api", node.URL, "-token", "-n")
	q := node.body("/api/swarm/search")
	if code != 0 || q["query"] != "stories" || q["base_fingerprint"] != "this" {
		t.Errorf("exit %d, request %v, stderr %q", code, q, errOut)
	}
	if got := singleDashLong(newRoot(&env{getenv: os.Getenv}), []string{"generate", "-n", "-model", "-prompt", "-model", "--", "-seed"}); strings.Join(got, " ") != "generate -n -model --prompt -model -- -seed" {
		t.Errorf("rewritten: %q", got)
	}
}

// TestORCHMINDHOST: client verbs find the node through ORCHMIND_HOST, as
// Ollama's clients do through OLLAMA_HOST; --api and an explicit
// --data-dir come first.
func TestORCHMINDHOST(t *testing.T) {
	dir := isolate(t)
	node := newFakeNode(t)
	t.Setenv("ORCHMIND_HOST", strings.TrimPrefix(node.URL, "http://"))
	if code, out, errOut := runCLI(t, "peers"); code != 0 || !strings.HasPrefix(out, "12D3KooWpeer\t") {
		t.Fatalf("peers through ORCHMIND_HOST: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// An explicit --data-dir wins over the environment.
	code, _, errOut := runCLI(t, "peers", "--data-dir", filepath.Join(dir, "nowhere"))
	if code != 1 || !strings.Contains(errOut, "no running node found in "+filepath.Join(dir, "nowhere")) {
		t.Errorf("explicit --data-dir: exit %d, %q", code, errOut)
	}
	// --api wins over both.
	t.Setenv("ORCHMIND_HOST", "127.0.0.1:1")
	if code, _, errOut := runCLI(t, "pull", "bafyx", "--api", node.URL, "--data-dir", filepath.Join(dir, "nowhere")); code != 0 {
		t.Errorf("--api: exit %d, %q", code, errOut)
	}
	t.Setenv("ORCHMIND_HOST", "127.0.0.1:notaport")
	if code, _, errOut := runCLI(t, "peers"); code != 2 || !strings.Contains(errOut, "ORCHMIND_HOST") {
		t.Errorf("bad ORCHMIND_HOST: exit %d, %q", code, errOut)
	}
}

func TestHostURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "http://127.0.0.1:11435",
		"example.com":               "http://example.com:11435",
		"example.com:8080":          "http://example.com:8080",
		":9000":                     "http://127.0.0.1:9000",
		"0.0.0.0":                   "http://127.0.0.1:11435",
		"0.0.0.0:1234":              "http://127.0.0.1:1234",
		"[::]:1234":                 "http://[::1]:1234",
		"::1":                       "http://[::1]:11435",
		"[fe80::1]:5":               "http://[fe80::1]:5",
		"http://example.com":        "http://example.com:80",
		"https://example.com":       "https://example.com:443",
		"https://example.com:8443/": "https://example.com:8443",
		"http://h:1/orchmind/":      "http://h:1/orchmind",
		"  10.0.0.2:7  ":            "http://10.0.0.2:7",
	} {
		got, err := hostURL(in)
		if err != nil || got != want {
			t.Errorf("hostURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://h", "h:0", "h:70000", "h:port", "unix:///tmp/s"} {
		if got, err := hostURL(bad); err == nil {
			t.Errorf("hostURL(%q) = %q, want an error", bad, got)
		}
	}
}

func TestVersionOf(t *testing.T) {
	set := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, c := range []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{nil, "devel"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"}, Settings: set("vcs.revision", "0123456789abcdef0123")}, "v0.3.0"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261203072000-253b70c1a2b3+dirty"}}, "v0.0.0-20261203072000-253b70c1a2b3+dirty"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: set("vcs", "git", "vcs.revision", "253b70c1a2b3c4d5e6f7", "vcs.time", "2026-12-03T07:20:00Z", "vcs.modified", "true")},
			"devel (253b70c1a2b3, 2026-12-03T07:20:00Z, modified)"},
		{&debug.BuildInfo{Main: debug.Module{Version: ""}, Settings: set("vcs.revision", "abc", "vcs.modified", "false")}, "devel (abc)"},
	} {
		if got := versionOf(c.bi); got != c.want {
			t.Errorf("versionOf(%+v) = %q, want %q", c.bi, got, c.want)
		}
	}
	// --version and the version verb say the same.
	_, a, _ := runCLI(t, "--version")
	_, b, _ := runCLI(t, "version")
	if a != b || !strings.HasPrefix(a, "orchmind ") {
		t.Errorf("--version %q, version %q", a, b)
	}
}

// TestCompletion: the completion scripts are printed on stdout, and the
// shell is offered flag values.
func TestCompletion(t *testing.T) {
	isolate(t)
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := runCLI(t, "completion", sh)
		if code != 0 || !strings.Contains(out, "orchmind") || len(out) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", sh, code, len(out), errOut)
		}
	}
	code, out, _ := runCLI(t, "__complete", "model", "info", "x", "--quant", "")
	if code != 0 || !strings.Contains(out, "q8_0\n") || !strings.Contains(out, "bf16\n") {
		t.Errorf("--quant completion: exit %d, %q", code, out)
	}
	code, out, _ = runCLI(t, "__complete", "mo")
	if code != 0 || !strings.Contains(out, "model\t") {
		t.Errorf("verb completion: exit %d, %q", code, out)
	}
}

// TestHyperparameterFlagNames checks that train's hyperparameter flags are
// the JSON names of hparams.Overrides (dashed), and that the short names of
// earlier versions reach the same flags.
func TestHyperparameterFlagNames(t *testing.T) {
	for _, f := range hparams.Fields {
		c := trainCmd(&env{getenv: os.Getenv})
		if c.Flags().Lookup(flagName(f)) == nil {
			t.Errorf("train has no --%s flag for hyperparameter %s", flagName(f), f)
		}
	}
	for old, long := range oldHyperparameterFlags {
		c := trainCmd(&env{getenv: os.Getenv})
		val := "0.5"
		if long == "batch-size" || long == "warmup-steps" {
			val = "3"
		} else if long == "target-modules" {
			val = "q_proj"
		}
		if err := c.ParseFlags([]string{"--" + old, val}); err != nil {
			t.Fatalf("--%s: %v", old, err)
		}
		if f := c.Flags().Lookup(long); f == nil || !f.Changed {
			t.Errorf("--%s did not set --%s", old, long)
		}
	}
}
