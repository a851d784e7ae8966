package appdir

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestDir(t *testing.T) {
	t.Setenv("ORCHMIND_HOME", "/x/y")
	if Dir() != "/x/y" || Models() != filepath.Join("/x/y", "models") {
		t.Fatalf("ORCHMIND_HOME: %s %s", Dir(), Models())
	}
	if runtime.GOOS != "linux" {
		t.Skip("the rest checks the XDG layout")
	}
	home := t.TempDir()
	t.Setenv("ORCHMIND_HOME", "")
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("XDG_CONFIG_HOME", "")
	if got := Dir(); got != filepath.Join(home, ".local", "share", "orchmind") {
		t.Errorf("default: %s", got)
	}
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, "data"))
	if got := Dir(); got != filepath.Join(home, "data", "orchmind") {
		t.Errorf("XDG_DATA_HOME: %s", got)
	}
	// An earlier orchmind's folder under ~/.config is kept.
	old := filepath.Join(home, ".config", "orchmind")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := Dir(); got != old {
		t.Errorf("with the old folder: %s", got)
	}
	if err := os.MkdirAll(filepath.Join(home, "data", "orchmind"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got := Dir(); got != filepath.Join(home, "data", "orchmind") {
		t.Errorf("with both: %s", got)
	}
}
