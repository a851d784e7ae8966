package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"orchmind/internal/appdir"
	"orchmind/node"
	"orchmind/protocol/room"
)

// defaultDataDir is where a node keeps its key, store, config and models:
// $ORCHMIND_HOME, else the platform's data folder (see appdir.Dir).
func defaultDataDir() string { return appdir.Dir() }

func runNode(ctx context.Context, e *env) error { return startNode(ctx, e, "node", false) }

// runningNodeURL returns the API URL of a node running with the data folder
// named in args (--data-dir) or the default one, if it answers.
func runningNodeURL(args []string) string {
	dir := defaultDataDir()
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--data-dir="); ok {
			dir = v
		} else if (a == "--data-dir" || a == "-data-dir") && i+1 < len(args) {
			dir = args[i+1]
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, node.APIFile))
	if err != nil {
		return ""
	}
	u := strings.TrimSpace(string(b))
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u + "/api/info")
	if err != nil {
		return ""
	}
	resp.Body.Close()
	return u
}

func startNode(ctx context.Context, e *env, verb string, open bool) error {
	fs := newFlags(e, verb, "[--model M] [--data-dir DIR] [--api 127.0.0.1:11435] [--listen MULTIADDR]… [--bootstrap MULTIADDR]…")
	bf := addBaseFlags(fs)
	dataDir := fs.String("data-dir", defaultDataDir(), "folder for the node key and the content store")
	adapterDir := fs.String("adapters-dir", "lora_adapters", "folder of local adapters (trained and pulled; default: <data-dir>/adapters unless ./lora_adapters exists)")
	apiAddr := fs.String("api", "127.0.0.1:11435", "address of the local HTTP API and web UI")
	token := fs.String("token", "", "let other computers use the API with \"Authorization: Bearer TOKEN\"")
	var listen, boot, rooms adapterFlag
	fs.Var(&rooms, "room", "join the private room of this code (repeatable; see orchmind room create)")
	fs.Var(&listen, "listen", "libp2p listen address (repeatable; default TCP and QUIC on all interfaces)")
	fs.Var(&boot, "bootstrap", "peer to dial on start, /ip4/…/tcp/…/p2p/ID (repeatable)")
	noMDNS := fs.Bool("no-mdns", false, "do not look for peers on the local network")
	dhtServer := fs.Bool("dht-server", false, "answer DHT queries at once (for always-on nodes)")
	if err := parseFlags(fs, e); err != nil {
		return err
	}
	if err := nodeConfig(e, fs); err != nil {
		return err
	}
	b, err := bf.load()
	if err != nil {
		return err
	}
	n, err := node.Start(ctx, node.Config{DataDir: *dataDir, AdapterDir: *adapterDir, Base: b, Listen: listen, Bootstrap: boot,
		MDNS: !*noMDNS, APIAddr: *apiAddr, Token: *token, DHTServer: *dhtServer, Rooms: rooms, Version: version, Log: e.log})
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Fprintf(e.stderr, "orchmind node %s: base %s (%s)\n  peer id %s\n", version, b.Name, b.Fingerprint, n.Swarm().ID())
	for _, a := range n.Swarm().Addrs() {
		fmt.Fprintf(e.stderr, "  listening on %s\n", a)
	}
	fmt.Fprintf(e.stderr, "  API and web UI on %s/ (Ctrl-C to stop)\n", n.URL())
	if open {
		openBrowser(e, n.URL()+"/")
	}
	<-ctx.Done()
	return nil
}

// client talks to a running node's API.
type client struct {
	url, token string
	hc         *http.Client
}

func nodeClient(e *env, name, synopsis string, extra func(*flag.FlagSet)) (*client, []string, error) {
	fs := newFlags(e, name, synopsis)
	dataDir := fs.String("data-dir", defaultDataDir(), "the node's data folder (to find its API address)")
	apiURL := fs.String("api", "", "the node's API URL (default: read from the data folder)")
	token := fs.String("token", "", "API token (default: the running node's local token, read from the data folder)")
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, e); err != nil {
		return nil, nil, err
	}
	u := *apiURL
	if u == "" {
		b, err := os.ReadFile(filepath.Join(*dataDir, node.APIFile))
		if err != nil {
			return nil, nil, fmt.Errorf("no running node found in %s: start one with `orchmind node --model M` (or pass --api URL)", *dataDir)
		}
		u = strings.TrimSpace(string(b))
		if *token == "" {
			// The node's local token lets the CLI name folders anywhere
			// on this computer (publish DIR); only this node gets it.
			if b, err := os.ReadFile(filepath.Join(*dataDir, node.TokenFile)); err == nil {
				*token = strings.TrimSpace(string(b))
			}
		}
	}
	return &client{url: strings.TrimRight(u, "/"), token: *token, hc: &http.Client{Timeout: 10 * time.Minute}}, fs.Args(), nil
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

func runPublish(ctx context.Context, e *env) error {
	var roomCode *string
	c, args, err := nodeClient(e, "publish", "DIR [--room CODE]", func(fs *flag.FlagSet) {
		roomCode = fs.String("room", "", "announce only inside the private room of this code")
	})
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return fmt.Errorf("%w: give the adapter folder to publish", errUsage)
	}
	dir, err := filepath.Abs(args[0])
	if err != nil {
		return err
	}
	var info struct {
		Name string `json:"name"`
	}
	if err := c.call(ctx, "POST", "/api/adapters/load", map[string]any{"path": dir}, &info); err != nil {
		return err
	}
	var out struct {
		CID string `json:"cid"`
	}
	if err := c.call(ctx, "POST", "/api/swarm/publish", map[string]any{"name": info.Name, "room": *roomCode}, &out); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, out.CID)
	return nil
}

func runSearch(ctx context.Context, e *env) error {
	var baseFP *string
	c, args, err := nodeClient(e, "search", "[words…] [--base FINGERPRINT|this]", func(fs *flag.FlagSet) {
		baseFP = fs.String("base", "", "only adapters for this base fingerprint (\"this\": the node's base)")
	})
	if err != nil {
		return err
	}
	var out struct {
		Results []struct {
			CID, Name, Description, Publisher string
			BaseName                          string `json:"base_name"`
			Size                              int64
		} `json:"results"`
	}
	if err := c.call(ctx, "POST", "/api/swarm/search", map[string]any{"query": strings.Join(args, " "), "base_fingerprint": *baseFP}, &out); err != nil {
		return err
	}
	if len(out.Results) == 0 {
		fmt.Fprintln(e.stderr, "no adapters announced yet that match")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tBASE\tSIZE\tAUTHOR\tCID")
	for _, r := range out.Results {
		author := r.Publisher
		if len(author) > 16 {
			author = "…" + author[len(author)-12:]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.BaseName, humanBytes(r.Size), author, r.CID)
	}
	return tw.Flush()
}

func runPull(ctx context.Context, e *env) error {
	c, args, err := nodeClient(e, "pull", "CID", nil)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return fmt.Errorf("%w: give the CID to pull (see orchmind search)", errUsage)
	}
	var out struct {
		Dir string `json:"dir"`
	}
	if err := c.call(ctx, "POST", "/api/swarm/pull", map[string]any{"cid": args[0]}, &out); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, out.Dir)
	return nil
}

func runPeers(ctx context.Context, e *env) error {
	c, _, err := nodeClient(e, "peers", "", nil)
	if err != nil {
		return err
	}
	var out struct {
		Peers []struct {
			ID    string   `json:"id"`
			Addrs []string `json:"addrs"`
		} `json:"peers"`
	}
	if err := c.call(ctx, "GET", "/api/swarm/peers", nil, &out); err != nil {
		return err
	}
	for _, p := range out.Peers {
		fmt.Fprintf(e.stdout, "%s\t%s\n", p.ID, strings.Join(p.Addrs, " "))
	}
	if len(out.Peers) == 0 {
		fmt.Fprintln(e.stderr, "no peers connected yet")
	}
	return nil
}

func runRoom(_ context.Context, e *env) error {
	if len(e.args) > 0 && e.args[0] == "join" {
		if len(e.args) < 2 {
			return fmt.Errorf("%w: orchmind room join CODE", errUsage)
		}
		r, err := room.Join(strings.Join(e.args[1:], " "))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "the code is valid (room topic %s): start your node with --room CODE to see and publish the room's adapters (orchmind publish --room CODE DIR)\n", r.Topic())
		return nil
	}
	if len(e.args) == 0 || e.args[0] != "create" {
		return fmt.Errorf("%w: orchmind room create prints a new room code; orchmind room join CODE checks one", errUsage)
	}
	code, err := room.NewCode()
	if err != nil {
		return err
	}
	r, err := room.Join(code)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, code)
	fmt.Fprintf(e.stderr, "room topic %s: share the code only with your group (anyone with it can read the room's announcements); members start their node with --room CODE and publish with orchmind publish --room CODE DIR\n", r.Topic())
	return nil
}
