package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestPublicDHTFlag: --public-dht takes on/off (a wrong value is a usage
// error before anything starts); its default comes from
// ORCHMIND_PUBLIC_DHT, which the Makefile sets off for every test and demo.
func TestPublicDHTFlag(t *testing.T) {
	hubEnv(t, "http://127.0.0.1:1", "http://127.0.0.1:1")
	model := filepath.Join(t.TempDir(), "none.gguf")
	code, _, errOut := runCLI(t, "node", "--model", model, "--public-dht", "maybe")
	if code != 2 || !strings.Contains(errOut, "use on or off") {
		t.Fatalf("--public-dht maybe: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "node", "--model", model, "--public-bootstrap", "/ip4/1.2.3.4/tcp/1")
	if code != 2 || !strings.Contains(errOut, "names no peer") {
		t.Fatalf("--public-bootstrap without a peer: %d %q", code, errOut)
	}
	t.Setenv(PublicDHTEnv, "off")
	c := nodeCmd(&env{getenv: func(k string) string {
		if k == PublicDHTEnv {
			return "off"
		}
		return ""
	}})
	if f := c.Flags().Lookup("public-dht"); f == nil || f.DefValue != "off" {
		t.Fatalf("--public-dht default with %s=off: %v", PublicDHTEnv, f)
	}
	c = nodeCmd(&env{getenv: func(string) string { return "" }})
	if f := c.Flags().Lookup("public-dht"); f.DefValue != "on" {
		t.Fatalf("--public-dht default for users: %q, want on", f.DefValue)
	}
}

// TestPeersSaysReachability: orchmind peers prints how the node is
// reachable and how it found its peers, then one line per peer.
func TestPeersSaysReachability(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"peers":[{"id":"12D3KooWa","addrs":["/ip4/11.0.0.11/udp/4747/quic-v1"],"orchmind":true,"source":"public-dht","conn":"hole-punched"}],
"network":{"reachability":"nat-relay","public_dht":true,"public_dht_peers":4,"rendezvous":["orchmind/v1/all"],"orchmind_peers":1,"by_source":{"public-dht":1},"hole_punches":1}}`))
	}))
	defer srv.Close()
	code, out, errOut := runCLI(t, "peers", "--api", srv.URL)
	if code != 0 {
		t.Fatalf("peers: %d %s", code, errOut)
	}
	for _, want := range []string{"reachable: behind NAT, reachable through relays", "public DHT: on, 4 servers known; advertised under orchmind/v1/all",
		"orchmind peers: 1 (public-dht 1)", "hole punches: 1 succeeded, 0 failed", "12D3KooWa\torchmind\tpublic-dht\thole-punched\t/ip4/11.0.0.11/udp/4747/quic-v1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("peers output lacks %q:\n%s", want, out)
		}
	}
}
