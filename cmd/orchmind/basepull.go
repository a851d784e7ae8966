package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"orchmind/node"
)

// modelPullSwarm is `orchmind model pull fp:FINGERPRINT`: the running node
// fetches the base from the peers that hold it (several at once), checks
// every block and the fingerprint of the whole file, and writes it into
// its models folder.
func modelPullSwarm(ctx context.Context, e *env, dataDir string, explicitDir bool, spec string) error {
	u := runningNodeURL(e, dataDir, explicitDir)
	if u == "" {
		return fmt.Errorf("fetching a base from peers (%s) needs a running node: start one with `orchmind node` (its own base can be any), then run this again", spec)
	}
	token := ""
	if b, err := os.ReadFile(filepath.Join(dataDir, node.TokenFile)); err == nil {
		token = strings.TrimSpace(string(b))
	}
	cl := &client{url: u, token: token, hc: &http.Client{Timeout: 6 * time.Hour}}
	fmt.Fprintf(e.stderr, "asking the peers of the node at %s for base %s\n", u, strings.TrimPrefix(spec, "fp:"))
	var out struct {
		Path string `json:"path"`
	}
	if err := cl.call(ctx, "POST", "/api/swarm/pull-base", map[string]any{"fingerprint": spec}, &out); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, out.Path)
	fmt.Fprintf(e.stderr, "fingerprint checked; use it with --model %s (the node shares it with peers from now on)\n", out.Path)
	return nil
}
