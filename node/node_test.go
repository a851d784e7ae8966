package node

import (
	"log/slog"
	"path/filepath"
	"testing"
)

// TestLocalOnlyStartsNoDiscovery starts a node the way tests, the demo and
// benchmarks do, with LocalOnly (and MDNS asked for, which the switch must
// override), and asks the swarm what it started: no NAT port mapping, no
// mDNS, no AutoNAT, relay or relay discovery, no hole punching.
func TestLocalOnlyStartsNoDiscovery(t *testing.T) {
	b := tinyBase(t)
	dir := t.TempDir()
	n, err := Start(t.Context(), Config{DataDir: filepath.Join(dir, "data"), AdapterDir: filepath.Join(dir, "adapters"),
		Base: b, APIAddr: "127.0.0.1:0", MDNS: true, LocalOnly: true, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	v := n.Swarm().Services()
	switch {
	case v.NATPortMap:
		t.Error("NAT port mapping (UPnP / NAT-PMP) was started")
	case v.MDNS:
		t.Error("mDNS was started")
	case v.AutoRelay || v.Relay:
		t.Error("relay discovery or the relay client was started")
	case v.AutoNATProbes || v.AutoNATService || v.HolePunching:
		t.Errorf("AutoNAT or hole punching was started: %s", v)
	}
	if v.Any() {
		t.Fatalf("a local-only node runs %s", v)
	}
}
