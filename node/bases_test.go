package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCleanBasePartials(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, ".base-123.partial")
	fresh := filepath.Join(dir, ".base-456.partial")
	keep := filepath.Join(dir, "model.gguf")
	for _, p := range []string{old, fresh, keep} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	_ = os.Chtimes(old, past, past)
	_ = os.Chtimes(keep, past, past)
	cleanBasePartials(dir, time.Now(), slog.New(slog.DiscardHandler))
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("an interrupted pull's file older than an hour was kept")
	}
	for _, p := range []string{fresh, keep} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed", filepath.Base(p))
		}
	}
}

func TestPlaceBase(t *testing.T) {
	dir := t.TempDir()
	p, err := placeBase(dir, "../evil name", "sha256:0123456789abcdef")
	if err != nil || filepath.Dir(p) != dir || filepath.Base(p) != "evil_name.gguf" {
		t.Fatalf("placeBase: %s %v", p, err)
	}
	_ = os.WriteFile(p, nil, 0o644)
	p2, err := placeBase(dir, "../evil name", "sha256:0123456789abcdef")
	if err != nil || filepath.Base(p2) != "evil_name-0123456789ab.gguf" {
		t.Fatalf("placeBase when taken: %s %v", p2, err)
	}
	_ = os.WriteFile(p2, nil, 0o644)
	if _, err := placeBase(dir, "../evil name", "sha256:0123456789abcdef"); err == nil {
		t.Fatal("placeBase overwrote a file")
	}
}
