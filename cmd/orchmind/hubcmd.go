package main

// The verbs that find, pull and configure base models: model list, model
// pull, config, and what `orchmind` alone does.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"orchmind/engine/hub"
	"orchmind/internal/appdir"
	"orchmind/internal/sysmem"
	"orchmind/node/config"
	"orchmind/node/setup"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newHub is the hub the CLI uses: orchmind's models folder, Ollama's store,
// the Hugging Face cache and the registries, as the environment says.
func newHub(e *env) *hub.Hub {
	h := hub.FromEnv(appdir.Models())
	h.Log = e.log
	return h
}

func modelListCmd(e *env) *cobra.Command {
	c := verb("list", "the base models on this computer (Ollama's store, the Hugging Face cache, orchmind's): size, architecture, quantization, whether they fit for training", noArgs)
	c.RunE = func(*cobra.Command, []string) error { return modelList(e) }
	return c
}

func modelList(e *env) error {
	h := newHub(e)
	list := h.List()
	avail, _ := sysmem.Available()
	if len(list) == 0 {
		fmt.Fprintf(e.stderr, "no base models found (looked in %s, %s and %s)\n", h.ModelsDir, strings.Join(h.OllamaDirs, ", "), h.HFCache)
		fmt.Fprintln(e.stderr, "get one with: orchmind model pull gemma3:1b   (or hf:ORG/REPO, hf:ORG/REPO:Q4_K_M)")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFROM\tSIZE\tARCH\tQUANT\tFITS FOR TRAINING\tPATH")
	for _, m := range list {
		fits := m.Fits(avail)
		if m.Need > 0 {
			fits += " (needs ~" + humanBytes(m.Need) + ")"
		}
		arch := m.Arch
		if m.Problem != "" {
			arch = "? (" + m.Problem + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Spec, m.Source, humanBytes(m.Size), dash(arch), dash(m.Quant), fits, m.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if avail > 0 {
		fmt.Fprintf(e.stderr, "%s of memory free for training now; use one with --model NAME or `orchmind config set model NAME`\n", humanBytes(avail))
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func modelPullCmd(e *env) *cobra.Command {
	c := verb("pull NAME", "download a base model with a progress bar (gemma3:1b, user/model:tag, hf:ORG/REPO, hf:ORG/REPO:Q4_K_M); resumes, checks every digest; fp:FINGERPRINT fetches it from the peers of a running node", cobra.ArbitraryArgs)
	dataDir := c.Flags().String("data-dir", defaultDataDir(e.getenv), "the node's data folder (its config gets the model when none is set)")
	completeDirs(c, "data-dir")
	c.ValidArgsFunction = cobra.NoFileCompletions
	c.RunE = func(c *cobra.Command, pos []string) error {
		if len(pos) == 1 && strings.HasPrefix(pos[0], "fp:") {
			return modelPullSwarm(c.Context(), e, *dataDir, c.Flags().Changed("data-dir"), pos[0])
		}
		return modelPull(c.Context(), e, *dataDir, pos)
	}
	return c
}

func modelPull(ctx context.Context, e *env, dataDir string, pos []string) error {
	if len(pos) != 1 {
		return fmt.Errorf("%w: give one model name: gemma3:1b (Ollama), hf:ORG/REPO (safetensors) or hf:ORG/REPO:Q4_K_M (one GGUF)", errUsage)
	}
	name := pos[0]
	h := newHub(e)
	fmt.Fprintf(e.stderr, "pulling %s into %s\n", name, h.ModelsDir)
	bar := newProgressBar(e.stderr)
	r, err := h.Pull(ctx, name, bar.update)
	bar.finish()
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("pull interrupted: run `orchmind model pull %s` again to resume where it stopped", name)
	}
	if err != nil {
		return err
	}
	if r.Here {
		fmt.Fprintf(e.stderr, "%s is already on this computer (%s): nothing to download\n", r.Name, r.Source)
	}
	spec := "ollama:" + strings.TrimPrefix(r.Name, "ollama:")
	if s, _ := hub.Scheme(name); s == "hf" {
		spec = "hf:" + r.Name
	}
	fmt.Fprintln(e.stdout, r.Path)
	c, _, err := config.Load(dataDir)
	if err == nil && c.Model == "" {
		c.Model = spec
		if err := c.Save(dataDir); err == nil {
			fmt.Fprintf(e.stderr, "%s is now this node's base (%s): `orchmind node` alone starts with it\n", spec, config.Path(dataDir))
			return nil
		}
	}
	fmt.Fprintf(e.stderr, "use it with --model %s, or make it the default: orchmind config set model %s\n", spec, spec)
	return nil
}

// progressBar draws a pull's progress on a terminal (or a line every 10%
// elsewhere).
type progressBar struct {
	mu          sync.Mutex
	w           io.Writer
	tty         bool
	start, last time.Time
	first       int64
	lastPct     int
	drawn       bool
}

func newProgressBar(w io.Writer) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progressBar{w: w, tty: tty, start: time.Now(), first: -1, lastPct: -1}
}

func (p *progressBar) update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first < 0 {
		p.first = done
	}
	now := time.Now()
	pct := 100
	if total > 0 {
		pct = int(done * 100 / total)
	}
	if p.tty && now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	}
	if !p.tty && pct/10 == p.lastPct/10 && done != total {
		return
	}
	if !p.tty && done == total && p.lastPct == 100 {
		return
	}
	p.last, p.lastPct = now, pct
	const width = 30
	fill := width * pct / 100
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	rate := ""
	if el := now.Sub(p.start).Seconds(); el > 0.5 && done > p.first {
		bps := float64(done-p.first) / el
		rate = humanBytes(int64(bps)) + "/s"
		if bps > 0 && total > done {
			rate += fmt.Sprintf("  %s left", (time.Duration(float64(total-done)/bps) * time.Second).Round(time.Second))
		}
	}
	line := fmt.Sprintf("%3d%% [%s] %s / %s  %s", pct, bar, humanBytes(done), humanBytes(total), rate)
	if p.tty {
		fmt.Fprintf(p.w, "\r%-90s", line)
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, strings.TrimRight(line, " "))
	}
}

func (p *progressBar) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

func configCmd(e *env) *cobra.Command {
	c := verb("config [list | get KEY | set KEY VALUE… | unset KEY | path]", "the node's settings (keys: "+strings.Join(config.Names(), ", ")+")", cobra.ArbitraryArgs)
	dataDir := c.Flags().String("data-dir", defaultDataDir(e.getenv), "the node's data folder (holds config.json)")
	completeDirs(c, "data-dir")
	c.RunE = func(_ *cobra.Command, pos []string) error { return runConfig(e, *dataDir, pos) }
	return c
}

func runConfig(e *env, dataDir string, pos []string) error {
	if len(pos) == 0 {
		pos = []string{"list"}
	}
	c, _, err := config.Load(dataDir)
	if err != nil {
		return err
	}
	switch pos[0] {
	case "path":
		fmt.Fprintln(e.stdout, config.Path(dataDir))
		return nil
	case "list":
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		for _, k := range config.Keys {
			v, _ := c.Get(k.Name)
			fmt.Fprintf(tw, "%s\t%s\t# %s\n", k.Name, dash(strings.Join(v, " ")), k.Help)
		}
		return tw.Flush()
	case "get":
		if len(pos) != 2 {
			return fmt.Errorf("%w: orchmind config get KEY", errUsage)
		}
		v, err := c.Get(pos[1])
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		for _, s := range v {
			fmt.Fprintln(e.stdout, s)
		}
		return nil
	case "set", "unset":
		if len(pos) < 2 || (pos[0] == "set" && len(pos) < 3) || (pos[0] == "unset" && len(pos) != 2) {
			return fmt.Errorf("%w: orchmind config set KEY VALUE… or orchmind config unset KEY", errUsage)
		}
		if err := c.Set(pos[1], pos[2:]...); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if err := c.Save(dataDir); err != nil {
			return err
		}
		if strings.EqualFold(pos[1], "model") && len(pos) == 3 && hub.IsSpec(pos[2]) {
			if _, err := newHub(e).Resolve(pos[2]); errors.Is(err, hub.ErrNotFound) {
				fmt.Fprintf(e.stderr, "note: %s is not on this machine yet: orchmind model pull %s\n", pos[2], strings.TrimPrefix(pos[2], "ollama:"))
			}
		}
		fmt.Fprintf(e.stderr, "saved %s\n", config.Path(dataDir))
		return nil
	}
	return fmt.Errorf("%w: unknown config command %q (list, get, set, unset, path)", errUsage, pos[0])
}

// nodeConfig fills the flags of `orchmind node`/`ui` that were not given
// from the data folder's config.json, and on the first run (no config yet)
// saves the flags that were given, so the next start needs none.
func nodeConfig(e *env, fs *pflag.FlagSet) error {
	dataDir := fs.Lookup("data-dir").Value.String()
	given := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { given[f.Name] = true })
	c, exists, err := config.Load(dataDir)
	if err != nil {
		return err
	}
	set := func(name string, vals ...string) error {
		if given[name] || fs.Lookup(name) == nil {
			return nil
		}
		for _, v := range vals {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("config %s: %s: %w", config.Path(dataDir), name, err)
			}
		}
		return nil
	}
	one := func(s string) []string {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	for name, vals := range map[string][]string{
		"model": one(c.Model), "tokenizer": one(c.Tokenizer), "quant": one(c.Quant), "api": one(c.API),
		"listen": c.Listen, "bootstrap": c.Bootstrap, "room": c.Rooms, "adapters-dir": one(c.AdaptersDir),
		"public-bootstrap": c.PublicBootstrap,
	} {
		if err := set(name, vals...); err != nil {
			return err
		}
	}
	if c.MDNS != nil && !*c.MDNS {
		if err := set("no-mdns", "true"); err != nil {
			return err
		}
	}
	if c.Port != 0 {
		if err := set("port", strconv.Itoa(c.Port)); err != nil {
			return err
		}
	}
	if c.PublicDHT != nil && !*c.PublicDHT {
		if err := set("public-dht", "off"); err != nil {
			return err
		}
	}
	if c.PublicHelper {
		if err := set("public-helper", "true"); err != nil {
			return err
		}
	}
	if f := fs.Lookup("adapters-dir"); f != nil && !given["adapters-dir"] && c.AdaptersDir == "" {
		// Adapters live in the data folder unless this folder already
		// has the lora_adapters of an earlier orchmind.
		if st, err := os.Stat(f.DefValue); err != nil || !st.IsDir() {
			_ = fs.Set("adapters-dir", filepath.Join(dataDir, "adapters"))
		}
	}
	if fs.Lookup("model").Value.String() == "" {
		return fmt.Errorf("%w: no base model: pass --model NAME once, or set it: orchmind config set model ollama:gemma3:1b (see orchmind model list; orchmind model pull NAME)", errUsage)
	}
	if !exists && given["model"] {
		if err := saveFirstRun(fs, given, dataDir); err != nil {
			fmt.Fprintf(e.stderr, "note: the settings of this first run were not saved (%v); set them with orchmind config set KEY VALUE\n", err)
		} else {
			fmt.Fprintf(e.stderr, "first run: saved these settings to %s; next time `orchmind node` alone is enough (orchmind config set KEY VALUE changes them)\n", config.Path(dataDir))
		}
	}
	return nil
}

// saveFirstRun writes the flags given to the first run as the data
// folder's config.
func saveFirstRun(fs *pflag.FlagSet, given map[string]bool, dataDir string) error {
	nc := &config.Config{}
	for flagName, key := range map[string]string{"model": "model", "tokenizer": "tokenizer", "quant": "quant", "api": "api", "adapters-dir": "adapters-dir"} {
		if given[flagName] {
			if err := nc.Set(key, fs.Lookup(flagName).Value.String()); err != nil {
				return fmt.Errorf("--%s: %w", flagName, err)
			}
		}
	}
	for flagName, key := range map[string]string{"listen": "listen", "bootstrap": "bootstrap", "room": "rooms", "public-bootstrap": "public-bootstrap"} {
		if given[flagName] {
			vals, err := fs.GetStringArray(flagName)
			if err != nil {
				return err
			}
			if err := nc.Set(key, vals...); err != nil {
				return fmt.Errorf("--%s: %w", flagName, err)
			}
		}
	}
	if given["no-mdns"] && fs.Lookup("no-mdns").Value.String() == "true" {
		if err := nc.Set("mdns", "false"); err != nil {
			return err
		}
	}
	return nc.Save(dataDir)
}

// runBare is `orchmind` with no arguments (a double-click on Windows): it
// starts the node and opens the web UI when a base is configured;
// otherwise it serves the first-run page (pick a local base or pull one),
// then starts the node on the same address once one is chosen. With
// localOnly (`orchmind --local-only`) the node it starts is local-only.
func runBare(ctx context.Context, e *env, localOnly bool) int {
	var extra []string
	if localOnly {
		extra = []string{"--local-only"}
	}
	dataDir := defaultDataDir(e.getenv)
	c, _, err := config.Load(dataDir)
	if err != nil {
		fmt.Fprintf(e.stderr, "orchmind: %v\n", err)
		pause(e)
		return 1
	}
	if c.Model != "" {
		return run(ctx, append([]string{"ui"}, extra...), e.stdin, e.stdout, e.stderr)
	}
	addr, err := runSetup(ctx, e, dataDir, c)
	if err != nil {
		fmt.Fprintf(e.stderr, "orchmind: %v\n", err)
		pause(e)
		return 1
	}
	if addr == "" {
		return 0
	}
	return run(ctx, append([]string{"node", "--api", addr}, extra...), e.stdin, e.stdout, e.stderr)
}

// pause keeps a console window opened by a double-click on Windows until
// its text is read.
func pause(e *env) {
	if runtime.GOOS == "windows" && e.getenv("PROMPT") == "" {
		fmt.Fprint(e.stderr, "\nPress Enter to close.")
		_, _ = fmt.Fscanln(e.stdin)
	}
}

// runSetup serves the first-run page until a base is chosen (it returns
// the address the page was on, where the node is to start) or ctx ends
// (it returns "").
func runSetup(ctx context.Context, e *env, dataDir string, c *config.Config) (string, error) {
	addr := c.API
	if addr == "" {
		addr = "127.0.0.1:11435"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("cannot listen on %s for the setup page: %w (is a node running? set another address with orchmind config set api 127.0.0.1:PORT)", addr, err)
	}
	chosen := make(chan string, 1)
	h := setup.New(setup.Config{Hub: newHub(e), DataDir: dataDir, Log: e.log,
		Free: func() int64 { n, _ := sysmem.Available(); return n },
		Chosen: func(s string) {
			select {
			case chosen <- s:
			default:
			}
		}})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() { _ = srv.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(e.stderr, "No base model is set yet: choose one on %s (Ctrl-C to stop)\n"+
		"Or from the command line:\n"+
		"  orchmind model list                         the models already on this computer (Ollama's, Hugging Face's, orchmind's)\n"+
		"  orchmind model pull gemma3:1b               pull one (also hf:ORG/REPO, hf:ORG/REPO:Q4_K_M)\n"+
		"  orchmind config set model ollama:gemma3:1b  make it the base; then `orchmind` starts the node\n", url)
	if e.getenv("ORCHMIND_NO_BROWSER") == "" {
		openBrowser(e, url)
	}
	var spec string
	select {
	case <-ctx.Done():
	case spec = <-chosen:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if spec == "" {
		return "", nil
	}
	fmt.Fprintf(e.stderr, "base %s chosen: starting the node\n", spec)
	return ln.Addr().String(), nil
}
