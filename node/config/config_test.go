package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"orchmind/protocol/room"
)

func TestSetGetSave(t *testing.T) {
	dir := t.TempDir()
	c, exists, err := Load(dir)
	if err != nil || exists || c.Model != "" {
		t.Fatalf("fresh folder: %+v %v %v", c, exists, err)
	}
	code, err := room.NewCode()
	if err != nil {
		t.Fatal(err)
	}
	gguf := filepath.Join(dir, "m.gguf")
	if err := os.WriteFile(gguf, []byte("GGUF"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for k, v := range map[string][]string{
		"model": {"m.gguf"}, "port": {"4001"}, "room": {code}, "api": {"127.0.0.1:11435"}, "mdns": {"false"},
		"bootstrap": {"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"},
	} {
		if err := c.Set(k, v...); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	if c.Model != gguf {
		t.Errorf("a relative model path is stored absolute: %q", c.Model)
	}
	if got := c.ListenAddrs(); !reflect.DeepEqual(got, []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}) {
		t.Errorf("ListenAddrs from port: %v", got)
	}
	if err := c.Save(dir); err != nil {
		t.Fatal(err)
	}
	c2, exists, err := Load(dir)
	if err != nil || !exists || !reflect.DeepEqual(c, c2) {
		t.Fatalf("reloaded %+v, %v, %v; saved %+v", c2, exists, err, c)
	}
	if v, _ := c2.Get("rooms"); len(v) != 1 || v[0] != code {
		t.Errorf("rooms: %v", v)
	}
	if v, _ := c2.Get("mdns"); len(v) != 1 || v[0] != "false" {
		t.Errorf("mdns: %v", v)
	}
	if err := c2.Set("port"); err != nil || c2.Port != 0 {
		t.Errorf("unset port: %v %d", err, c2.Port)
	}
	for k, v := range map[string]string{
		"colour": "blue", "port": "70000", "api": "localhost", "listen": "not-a-multiaddr",
		"bootstrap": "/ip4/1.2.3.4/tcp/1", "room": "nonsense", "quant": "q3_z", "mdns": "maybe", "model": "ollama:a/b/c/d",
	} {
		if err := c2.Set(k, v); err == nil {
			t.Errorf("set %s %q accepted", k, v)
		}
	}
	if err := os.WriteFile(Path(dir), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "fix or delete it") {
		t.Errorf("broken file: %v", err)
	}
}
