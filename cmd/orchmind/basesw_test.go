package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runUntil runs the CLI with args until stderr holds want (or 30 s pass),
// then stops it and returns stderr.
func runUntil(t *testing.T, want string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, strings.NewReader(""), &errOut, &errOut) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errOut.String(), want) {
		select {
		case code := <-done:
			t.Fatalf("%v exited %d before %q:\n%s", args, code, want, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("%v: no %q after 30 s:\n%s", args, want, errOut.String())
		}
		time.Sleep(25 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("%v exited %d:\n%s", args, code, errOut.String())
	}
	return errOut.String()
}

// TestServeReadsConfig: `orchmind serve` with no flags takes the model and
// the API address from the data folder's config.json, as `orchmind node`
// does (it used to demand --model).
func TestServeReadsConfig(t *testing.T) {
	home := hubEnv(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	mp := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := os.WriteFile(mp, tinyBase(t), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	for _, args := range [][]string{{"config", "set", "model", mp}, {"config", "set", "api", addr}} {
		if code, _, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	out := runUntil(t, "http://"+addr+"/", "serve")
	if !strings.Contains(out, "base tiny") {
		t.Fatalf("serve did not run the configured base:\n%s", out)
	}
	_ = home
}

// TestBareLocalOnly: `orchmind --local-only` (the bare node, as a
// double-click starts it) runs the node local-only: it listens on loopback
// only.
func TestBareLocalOnly(t *testing.T) {
	hubEnv(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	t.Setenv("ORCHMIND_NO_BROWSER", "1")
	mp := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := os.WriteFile(mp, tinyBase(t), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"config", "set", "model", mp}, {"config", "set", "api", "127.0.0.1:0"}} {
		if code, _, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: %s", args, errOut)
		}
	}
	out := runUntil(t, "API and web UI on", "--local-only")
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if a, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on "); ok {
			n++
			if !strings.HasPrefix(a, "/ip4/127.0.0.1/") && !strings.HasPrefix(a, "/ip6/::1/") {
				t.Errorf("the local-only bare node listens on %s", a)
			}
		}
	}
	if n == 0 {
		t.Fatalf("no listen addresses printed:\n%s", out)
	}
}

// TestModelPullFingerprintNeedsNode: `model pull fp:…` without a running
// node says to start one.
func TestModelPullFingerprintNeedsNode(t *testing.T) {
	hubEnv(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	t.Setenv("ORCHMIND_HOST", "")
	code, _, errOut := runCLI(t, "model", "pull", "fp:sha256:0123")
	if code == 0 || !strings.Contains(errOut, "needs a running node") {
		t.Fatalf("code %d: %s", code, errOut)
	}
	_ = http.StatusOK
}
