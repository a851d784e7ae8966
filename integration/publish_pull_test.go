// Package integration runs several real orchmind nodes (libp2p hosts on
// 127.0.0.1, badger stores, HTTP APIs) in one process.
package integration

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/node"
	"orchmind/node/api"
	"orchmind/trainer/lora"
)

func startNode(t *testing.T, b *base.Base, boot []string) *node.Node {
	t.Helper()
	dir := t.TempDir()
	n, err := node.Start(t.Context(), node.Config{DataDir: filepath.Join(dir, "data"), AdapterDir: filepath.Join(dir, "adapters"),
		Base: b, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot, APIAddr: "127.0.0.1:0", DHTServer: true, LocalOnly: true, FindTimeout: 3 * time.Second,
		Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func addr(n *node.Node) []string { return addrB(n) }

// testLog discards node logs unless ORCHMIND_TEST_LOG names a level
// (debug, info, warn, error): then lines from that level up go to stderr.
func testLog() *slog.Logger {
	var level slog.Level
	if v := os.Getenv("ORCHMIND_TEST_LOG"); v == "" || level.UnmarshalText([]byte(v)) != nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func addrB(n *node.Node) []string {
	var out []string
	for _, a := range n.Swarm().Addrs() {
		out = append(out, a.String())
	}
	return out
}

// adapterFolder writes a trained-looking adapter (random non-zero B) of
// about size bytes for base b.
func adapterFolder(t *testing.T, b *base.Base, rank int) string {
	return adapterFolderB(t, b, rank, 0)
}

// adapterFolderB writes adapter number i (name "specialist", tag "s<i>").
func adapterFolderB(t testing.TB, b *base.Base, rank int, i uint64) string {
	t.Helper()
	a, err := lora.New(b.Model, rank, float32(2*rank), nil, 7+i)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2+i))
	for _, k := range a.SortedKeys() { // map order would make the weights differ run to run
		p := a.Pairs[k]
		for i := range p.B {
			p.B[i] = float32(rng.NormFloat64() * 0.1)
		}
	}
	dir := filepath.Join(t.TempDir(), "specialist")
	man := adapters.Manifest{Announced: adapters.Announced{Name: "specialist", Description: "integration test adapter", Tags: []string{"test", fmt.Sprint("s", i)}, BaseName: b.Name, BaseFingerprint: b.Fingerprint, Rank: a.Rank, Alpha: a.Alpha, TargetModules: []string{"q_proj"}},
		BaseShapeFingerprint: b.ShapeID, Created: time.Now()}
	if err := lora.WritePEFT(dir, a, man, b.Model); err != nil {
		t.Fatal(err)
	}
	return dir
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPublishSearchPull: a publishes, every other node finds the adapter by
// search, pulls it from the swarm and gets the same bytes; a node that joins
// after the announcement finds it through the catalogue and the DHT.
func TestPublishSearchPull(t *testing.T) {
	cfg := model.Config{Dim: 64, HiddenDim: 128, Layers: 2, Heads: 4, KVHeads: 2, SeqLen: 64}
	b, err := base.Random(cfg, quant.Q8_0, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	a := startNode(t, b, nil)
	nodes := []*node.Node{a}
	for range 3 {
		nodes = append(nodes, startNode(t, b, addr(nodes[len(nodes)-1])))
	}
	for _, n := range nodes[1:] {
		waitFor(t, "connections", func() bool { return len(n.Swarm().Peers()) > 0 })
	}
	src := adapterFolder(t, b, 8)
	c, err := a.Publish(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(src, adapters.SafetensorsFile))
	check := func(name string, n *node.Node) {
		t.Helper()
		waitFor(t, name+" to see the announcement", func() bool {
			res, _ := n.Search(ctx, api.SearchQuery{Text: "specialist", BaseFingerprint: b.Fingerprint})
			return len(res) == 1 && res[0].CID == c
		})
		dir, err := n.Pull(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, adapters.SafetensorsFile))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("pulled adapter differs from the published one (%v)", err)
		}
		if _, _, err := lora.ReadPEFT(dir, b.Model); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range nodes[1:] {
		check(fmt.Sprint("node ", i+1), n)
	}
	late := startNode(t, b, addr(nodes[2]))
	check("the node that joined late", late)

	// Bad CIDs: one that does not parse, one nobody provides (a clear
	// message after the search timeout, not a hang).
	if _, err := late.Pull(ctx, "not-a-cid"); err == nil || !strings.Contains(err.Error(), "not a CID") {
		t.Fatalf("bad CID: %v", err)
	}
	start := time.Now()
	_, err = late.Pull(ctx, "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy")
	if err == nil || !strings.Contains(err.Error(), "no peer provides it") || time.Since(start) > 10*time.Second {
		t.Fatalf("unprovided CID: %v after %s", err, time.Since(start))
	}

	// A node with another base model (another shape: a same-shaped copy
	// is accepted with a warning, see model.ShapeID) refuses the adapter, naming both bases.
	cfg.Layers = 3
	other, err := base.Random(cfg, quant.Q8_0, 2)
	if err != nil {
		t.Fatal(err)
	}
	o := startNode(t, other, addr(a))
	waitFor(t, "connection", func() bool { return len(o.Swarm().Peers()) > 0 })
	_, err = o.Pull(ctx, c)
	if err == nil || !strings.Contains(err.Error(), b.Fingerprint) || !strings.Contains(err.Error(), other.Fingerprint) {
		t.Fatalf("pull onto another base: got %v, want a refusal naming both fingerprints", err)
	}
}

// folderBytes is the size of the files in dir (adapters.FolderSize).
func folderBytes(dir string) int64 { return adapters.FolderSize(dir) }

// TestPullAuthorOffline: a node that saw an announcement whose author has
// since gone offline (the swarm is still there, but nobody else holds the
// adapter) gets a clear error within FindTimeout, not a hang.
func TestPullAuthorOffline(t *testing.T) {
	b, err := base.Random(model.Config{Dim: 64, HiddenDim: 128, Layers: 2, Heads: 4, KVHeads: 2, SeqLen: 64}, quant.Q8_0, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	a := startNode(t, b, nil)
	m := startNode(t, b, addr(a))
	n := startNode(t, b, append(addr(a), addr(m)...))
	waitFor(t, "the DHT to know the third node", func() bool { return len(n.Swarm().Peers()) >= 2 })
	c, err := a.Publish(ctx, adapterFolder(t, b, 4), nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the announcement", func() bool {
		res, _ := n.Search(ctx, api.SearchQuery{Text: "specialist"})
		return len(res) == 1 && res[0].CID == c
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = n.Pull(ctx, c)
	if err == nil || !strings.Contains(err.Error(), "no peer provides it") || time.Since(start) > 10*time.Second {
		t.Fatalf("pull from an offline author: %v after %s; want a clear error within the 3 s FindTimeout", err, time.Since(start))
	}
	t.Logf("refused after %s: %v", time.Since(start).Round(time.Millisecond), err)
}
