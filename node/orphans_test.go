package node

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/trainer/lora"
)

func tinyBase(t *testing.T) *base.Base {
	t.Helper()
	b, err := base.Random(model.Config{Dim: 64, HiddenDim: 128, Layers: 2, Heads: 4, KVHeads: 2, SeqLen: 64}, quant.Q8_0, 1)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func startLocal(t *testing.T, b *base.Base, dataDir, adapterDir string) *Node {
	t.Helper()
	n, err := Start(t.Context(), Config{DataDir: dataDir, AdapterDir: adapterDir, Base: b, APIAddr: "127.0.0.1:0",
		LocalOnly: true, FindTimeout: time.Second, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func mkfile(t *testing.T, path string, age time.Duration) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if age > 0 {
		old := time.Now().Add(-age)
		for p := path; p != filepath.Dir(filepath.Dir(path)); p = filepath.Dir(p) {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// TestStartCleansOrphans: what a node or a training run killed with -9
// left behind — a pull's working folder with a half-exported adapter,
// export and write temporaries in the adapters folder — is gone after the
// next start; fresh temporaries (a training run may be writing one) and
// everything else stay.
func TestStartCleansOrphans(t *testing.T) {
	dir := t.TempDir()
	data, ads := filepath.Join(dir, "data"), filepath.Join(dir, "adapters")
	gone := []string{
		filepath.Join(data, ".pull-4242", "adapter", ".orchmind-export-17", "adapter_model.safetensors"),
		filepath.Join(ads, ".orchmind-export-99", "adapter_config.json"),
		filepath.Join(ads, ".facts.tmp-123", "orchmind.json"),
		filepath.Join(ads, ".facts.tmp-123.old", "orchmind.json"),
		filepath.Join(ads, ".registry.json.tmp-5"),
	}
	kept := []string{
		filepath.Join(ads, ".facts.tmp-124", "orchmind.json"), // fresh: may be a training run's
		filepath.Join(ads, "facts", "orchmind.json"),
		filepath.Join(ads, ".git", "config"),
		filepath.Join(ads, ".pull-77", "mine"), // a pull folder only in the data folder
		filepath.Join(data, ".pull-notmine", "mine"),
		filepath.Join(data, "notes.txt"),
	}
	for _, p := range gone {
		mkfile(t, p, 2*orphanAge)
	}
	for i, p := range kept {
		age := 2 * orphanAge
		if i == 0 {
			age = 0
		}
		mkfile(t, p, age)
	}
	startLocal(t, tinyBase(t), data, ads)
	for _, p := range gone {
		top := p
		for filepath.Dir(top) != data && filepath.Dir(top) != ads {
			top = filepath.Dir(top)
		}
		if exists(top) {
			t.Errorf("the orphan %s is still there", top)
		}
	}
	for _, p := range kept {
		if !exists(p) {
			t.Errorf("%s was removed", p)
		}
	}
}

// adapterFolder writes a small adapter named "specialist" for b.
func adapterFolder(t *testing.T, b *base.Base) string {
	t.Helper()
	a, err := lora.New(b.Model, 2, 4, nil, 7)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range a.SortedKeys() { // map order would make the weights differ run to run
		p := a.Pairs[k]
		for i := range p.B {
			p.B[i] = float32(rng.NormFloat64() * 0.1)
		}
	}
	dir := filepath.Join(t.TempDir(), "specialist")
	man := adapters.Manifest{Announced: adapters.Announced{Name: "specialist", BaseName: b.Name, BaseFingerprint: b.Fingerprint, Rank: a.Rank, Alpha: a.Alpha, TargetModules: []string{"q_proj"}},
		BaseShapeFingerprint: b.ShapeID, Created: time.Now()}
	if err := lora.WritePEFT(dir, a, man, b.Model); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPullKeepsFoldersItDidNotCreate: folders already in the adapters
// folder under the names a pull would use are never replaced or removed;
// the pull takes the next free name, and a folder that already holds the
// same adapter is reused instead of copied again.
func TestPullKeepsFoldersItDidNotCreate(t *testing.T) {
	b := tinyBase(t)
	dir := t.TempDir()
	ads := filepath.Join(dir, "adapters")
	n := startLocal(t, b, filepath.Join(dir, "data"), ads)
	root, err := n.Store().ImportFolder(t.Context(), adapterFolder(t, b))
	if err != nil {
		t.Fatal(err)
	}
	tail := root.String()[len(root.String())-8:]
	mine := []string{filepath.Join(ads, "specialist", "mine.txt"), filepath.Join(ads, "specialist-"+tail, "mine.txt")}
	for _, p := range mine {
		mkfile(t, p, 0)
	}
	got, err := n.Pull(t.Context(), root.String())
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(ads, fmt.Sprintf("specialist-%s-2", tail)); got != want {
		t.Fatalf("pulled into %s, want %s", got, want)
	}
	for _, p := range mine {
		if !exists(p) {
			t.Fatalf("the pull removed %s", p)
		}
	}
	if _, err := adapters.CheckFolder(got, adapters.SafetensorsCodec{}); err != nil {
		t.Fatal(err)
	}
	again, err := n.Pull(t.Context(), root.String())
	if err != nil {
		t.Fatal(err)
	}
	if again != got {
		t.Fatalf("a second pull of the same adapter went to %s, not to %s which holds it", again, got)
	}
	if ents, _ := os.ReadDir(ads); len(ents) != 3 {
		t.Fatalf("adapters folder holds %d entries, want 3", len(ents))
	}
}
