package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"orchmind/node"
)

// defaultAPIPort is the port of a node's API when an address names none.
const defaultAPIPort = "11435"

// clientFlags are the flags of the verbs that talk to a running node
// (publish, search, pull, peers): where its API is and its token.
type clientFlags struct {
	e                   *env
	c                   *cobra.Command
	dataDir, api, token *string
}

func addClientFlags(c *cobra.Command, e *env) clientFlags {
	fs := c.Flags()
	cf := clientFlags{e: e, c: c,
		dataDir: fs.String("data-dir", defaultDataDir(e.getenv), "the node's data folder (to find its API address)"),
		api:     fs.String("api", "", "the node's API, a URL or host:port (default: $ORCHMIND_HOST, else read from the data folder)"),
		token:   fs.String("token", "", "API token (default: the running node's local token, read from its data folder)"),
	}
	completeDirs(c, "data-dir")
	return cf
}

// connect finds the node: --api, else the API file of an explicit
// --data-dir, else $ORCHMIND_HOST, else the API file of the default data
// folder. When the address came from a data folder and no --token was
// given, the node's local token from the same folder goes with the
// requests: it lets the CLI name folders anywhere on this computer (publish
// DIR), and only that node ever gets it.
func (cf clientFlags) connect() (*client, error) {
	u, fromDir, err := cf.nodeURL()
	if err != nil {
		return nil, err
	}
	token := *cf.token
	if token == "" && fromDir {
		if b, err := os.ReadFile(filepath.Join(*cf.dataDir, node.TokenFile)); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	return &client{url: u, token: token, hc: &http.Client{Timeout: 10 * time.Minute}}, nil
}

// nodeURL returns the node's API URL and whether it was read from the data
// folder.
func (cf clientFlags) nodeURL() (string, bool, error) {
	if *cf.api != "" {
		u, err := hostURL(*cf.api)
		if err != nil {
			return "", false, fmt.Errorf("%w: --api: %v", errUsage, err)
		}
		return u, false, nil
	}
	if h := cf.e.getenv("ORCHMIND_HOST"); h != "" && !cf.c.Flags().Changed("data-dir") {
		u, err := hostURL(h)
		if err != nil {
			return "", false, fmt.Errorf("%w: ORCHMIND_HOST: %v", errUsage, err)
		}
		return u, false, nil
	}
	b, err := os.ReadFile(filepath.Join(*cf.dataDir, node.APIFile))
	if err != nil {
		return "", false, fmt.Errorf("no running node found in %s: start one with `orchmind node --model M` (or pass --api URL, or set ORCHMIND_HOST)", *cf.dataDir)
	}
	return strings.TrimRight(strings.TrimSpace(string(b)), "/"), true, nil
}

// hostURL turns an address as OLLAMA_HOST takes it — host, host:port,
// :port or a http(s) URL — into the base URL of a node's API. A missing
// host is this computer, a missing port 11435 (80 or 443 when the scheme
// is given), and an unspecified address (0.0.0.0, ::), which a node may
// listen on, is dialled on loopback.
func hostURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	scheme, rest, ok := strings.Cut(s, "://")
	port := defaultAPIPort
	switch {
	case !ok:
		scheme, rest = "http", s
	case scheme == "http":
		port = "80"
	case scheme == "https":
		port = "443"
	default:
		return "", fmt.Errorf("%q: the scheme must be http or https", s)
	}
	hostport, path, _ := strings.Cut(rest, "/")
	host := hostport
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	}
	host = strings.Trim(host, "[]")
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("%q: the port must be a number from 1 to 65535", s)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	u := scheme + "://" + net.JoinHostPort(host, port)
	if path = strings.Trim(path, "/"); path != "" {
		u += "/" + path
	}
	return u, nil
}

// runningNodeURL returns the API URL of a running node, if one answers:
// the one $ORCHMIND_HOST names (unless the data folder was given
// explicitly), else the one dataDir names.
func runningNodeURL(e *env, dataDir string, explicitDir bool) string {
	var u string
	if h := e.getenv("ORCHMIND_HOST"); h != "" && !explicitDir {
		var err error
		if u, err = hostURL(h); err != nil {
			return ""
		}
	} else {
		b, err := os.ReadFile(filepath.Join(dataDir, node.APIFile))
		if err != nil {
			return ""
		}
		u = strings.TrimRight(strings.TrimSpace(string(b)), "/")
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u + "/api/info")
	if err != nil {
		return ""
	}
	resp.Body.Close()
	return u
}

// client talks to a running node's API.
type client struct {
	url, token string
	hc         *http.Client
}

func (c *client) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the node at %s: %w (is `orchmind node` running?)", c.url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("node answered %s", resp.Status)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
