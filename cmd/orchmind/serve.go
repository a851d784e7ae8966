package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	nodebase "orchmind/engine/base"
	"orchmind/node/api"
	"orchmind/node/config"
	"orchmind/node/ui"
)

// serveCmd runs the local API and web UI on one base model, without the swarm.
func serveCmd(e *env) *cobra.Command {
	c := verb("serve [--model M] [--tokenizer T] [--quant Q] [--addr 127.0.0.1:11435] [--adapters-dir DIR] [--token T] [--data-dir DIR]",
		"run the local API and web UI on a base model (no swarm)", noArgs)
	bf := addBaseFlags(c)
	fs := c.Flags()
	addr := fs.String("addr", "127.0.0.1:11435", "address to listen on (other computers are refused unless --token is set)")
	dir := fs.String("adapters-dir", "lora_adapters", "folder of adapters: trained ones are written here, local ones listed from here")
	token := fs.String("token", "", "let other computers in with \"Authorization: Bearer TOKEN\"")
	// serve starts no swarm, so it is always local-only; the flag is taken
	// so that scripts can pass the same switch to serve and node.
	fs.Bool("local-only", false, "accepted for scripts: serve never starts the swarm and sends nothing beyond its own HTTP listener")
	// The same settings as `orchmind node`: the data folder's config.json
	// fills in what no flag gives (model, tokenizer, quant, adapters
	// folder, API address).
	dataDir := fs.String("data-dir", defaultDataDir(e.getenv), "folder whose config.json gives the settings no flag gives ($ORCHMIND_HOME)")
	completeDirs(c, "data-dir")
	completeDirs(c, "adapters-dir")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if err := nodeConfig(e, c.Flags()); err != nil {
			return err
		}
		if cfg, _, err := config.Load(*dataDir); err == nil && cfg.API != "" && !c.Flags().Changed("addr") {
			*addr = cfg.API
		}
		b, err := bf.load()
		if err != nil {
			return err
		}
		return serve(c.Context(), e, b, serveConfig{addr: *addr, adapterDir: *dir, token: *token})
	}
	return c
}

type serveConfig struct {
	addr, adapterDir, token string
}

func serve(ctx context.Context, e *env, b *nodebase.Base, cfg serveConfig) error {
	s, err := api.New(api.Config{Base: b, AdapterDir: cfg.adapterDir, Token: cfg.token, UI: ui.Handler(), Version: e.version, Log: e.log})
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w (is another node running? choose another --addr)", cfg.addr, err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() && cfg.token == "" {
		e.log.Warn("listening beyond this computer without --token: other computers will be refused", "addr", ln.Addr())
	}
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(e.stderr, "orchmind %s: base %s (%s, %s) — open %s (Ctrl-C to stop)\n", e.version, b.Name, b.Type, b.Fingerprint, url)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("HTTP server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// openBrowser opens url in the desktop's browser, or says how to.
func openBrowser(e *env, url string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(e.stderr, "could not open a browser (%v): open %s yourself\n", err, url)
		return
	}
	go func() { _ = cmd.Wait() }()
}
