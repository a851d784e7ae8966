package config

import (
	"slices"
	"testing"
)

// TestPublicSettings: public-dht, public-bootstrap and public-helper are
// checked, stored and read back; port 0 means any free port, unset the
// default one.
func TestPublicSettings(t *testing.T) {
	dir := t.TempDir()
	c := &Config{}
	boot := []string{"/dnsaddr/bootstrap.example.org", "/ip4/11.0.0.1/tcp/4747/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"}
	for _, kv := range [][]string{{"public-dht", "off"}, {"public-helper", "on"}, append([]string{"public-bootstrap"}, boot...), {"port", "0"}} {
		if err := c.Set(kv[0], kv[1:]...); err != nil {
			t.Fatalf("set %v: %v", kv, err)
		}
	}
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	c2, _, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string][]string{"public-dht": {"off"}, "public-helper": {"on"}, "public-bootstrap": boot, "port": {"0"}} {
		if got, _ := c2.Get(key); !slices.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", key, got, want)
		}
	}
	if c2.Port != -1 || c2.PublicDHT == nil || *c2.PublicDHT || !c2.PublicHelper {
		t.Fatalf("stored %+v", c2)
	}
	if got := c2.ListenAddrs(); got != nil {
		t.Fatalf("port 0 (any free) gives listen addresses %v; want none (the swarm picks)", got)
	}
	for _, bad := range [][]string{{"public-dht", "maybe"}, {"public-bootstrap", "/ip4/1.2.3.4/tcp/1"}, {"public-bootstrap", "nonsense"}} {
		if err := c2.Set(bad[0], bad[1:]...); err == nil {
			t.Fatalf("set %v accepted", bad)
		}
	}
	if err := c2.Set("public-bootstrap"); err != nil || c2.PublicBootstrap != nil {
		t.Fatalf("clearing public-bootstrap: %v %v", err, c2.PublicBootstrap)
	}
}
