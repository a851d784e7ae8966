package node

import (
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/trainer/lora"
)

// startPeer starts a local-only node listening on loopback that dials boot.
func startPeer(t *testing.T, b *base.Base, boot []string) *Node {
	t.Helper()
	return startAt(t, b, t.TempDir(), boot)
}

// pair starts two connected nodes of base b.
func pair(t *testing.T, b *base.Base) (a, c *Node) {
	t.Helper()
	a = startPeer(t, b, nil)
	var addrs []string
	for _, m := range a.Swarm().Addrs() {
		addrs = append(addrs, m.String())
	}
	c = startPeer(t, b, addrs)
	eventually(t, "the nodes to connect", func() bool { return len(c.Swarm().Peers()) > 0 && len(a.Swarm().Peers()) > 0 })
	return a, c
}

// adapterDir writes an adapter folder named name for base b with random,
// non-zero B matrices (seed picks them).
func adapterDir(t *testing.T, b *base.Base, name string, seed uint64) string {
	t.Helper()
	ad, err := lora.New(b.Model, 4, 8, nil, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	for _, k := range ad.SortedKeys() { // map order would make the weights differ run to run
		p := ad.Pairs[k]
		for i := range p.B {
			p.B[i] = float32(rng.NormFloat64() * 0.1)
		}
	}
	dir := filepath.Join(t.TempDir(), name)
	man := adapters.Manifest{
		Announced: adapters.Announced{Name: name, Description: "a node test adapter about " + name, Tags: []string{"test"},
			BaseName: b.Name, BaseFingerprint: b.Fingerprint, Rank: ad.Rank, Alpha: ad.Alpha, TargetModules: []string{"q_proj"}},
		BaseShapeFingerprint: b.ShapeID, Created: time.Now()}
	if err := lora.WritePEFT(dir, ad, man, b.Model); err != nil {
		t.Fatal(err)
	}
	return dir
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// testLogger discards node logs unless ORCHMIND_TEST_LOG names a level.
func testLogger() *slog.Logger {
	var level slog.Level
	if v := os.Getenv("ORCHMIND_TEST_LOG"); v == "" || level.UnmarshalText([]byte(v)) != nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
