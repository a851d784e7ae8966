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

	"orchmind/node/api"
	"orchmind/node/ui"
)

// runServe runs the local API and web UI on one base model, without the swarm.
func runServe(ctx context.Context, e *env) error {
	return serve(ctx, e, "serve", false)
}

// runUI opens the web UI in the browser: when a node already runs (its data
// folder names its API), it opens that; otherwise it starts the full node
// (swarm included) and opens it.
func runUI(ctx context.Context, e *env) error {
	if u := runningNodeURL(e.args); u != "" {
		fmt.Fprintf(e.stderr, "a node is already running: opening %s\n", u)
		openBrowser(e, u+"/")
		return nil
	}
	return startNode(ctx, e, "ui", true)
}

func serve(ctx context.Context, e *env, verb string, open bool) error {
	fs := newFlags(e, verb, "--model M [--tokenizer T] [--quant Q] [--addr 127.0.0.1:11435] [--adapters-dir DIR] [--token T]")
	bf := addBaseFlags(fs)
	addr := fs.String("addr", "127.0.0.1:11435", "address to listen on (other computers are refused unless --token is set)")
	dir := fs.String("adapters-dir", "lora_adapters", "folder of adapters: trained ones are written here, local ones listed from here")
	token := fs.String("token", "", "let other computers in with \"Authorization: Bearer TOKEN\"")
	// serve starts no swarm, so it is always local-only; the flag is taken
	// so that scripts can pass the same switch to serve and node.
	fs.Bool("local-only", false, "accepted for scripts: serve never starts the swarm and sends nothing beyond its own HTTP listener")
	if err := parseFlags(fs, e); err != nil {
		return err
	}
	b, err := bf.load()
	if err != nil {
		return err
	}
	s, err := api.New(api.Config{Base: b, AdapterDir: *dir, Token: *token, UI: ui.Handler(), Version: version, Log: e.log})
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w (is another node running? choose another --addr)", *addr, err)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !net.ParseIP(host).IsLoopback() && *token == "" {
		e.log.Warn("listening beyond this computer without --token: other computers will be refused", "addr", ln.Addr())
	}
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(e.stderr, "orchmind %s: base %s (%s, %s) — open %s (Ctrl-C to stop)\n", version, b.Name, b.Type, b.Fingerprint, url)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if open {
		openBrowser(e, url)
	}
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
