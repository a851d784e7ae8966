package appdir

import (
	"os"
	"path/filepath"
	"runtime"
)

// Dir returns orchmind's data folder: $ORCHMIND_HOME when set, else the
// platform's data folder ($XDG_DATA_HOME/orchmind or
// ~/.local/share/orchmind on Linux and the BSDs, %LOCALAPPDATA%\orchmind on
// Windows, ~/Library/Application Support/orchmind on macOS). A folder left
// by an older orchmind in the user's config folder (~/.config/orchmind) is
// kept when the new one does not exist yet, so an existing node keeps its
// key and store.
func Dir() string {
	if d := os.Getenv("ORCHMIND_HOME"); d != "" {
		return d
	}
	d := platformDir()
	if d == "" {
		return ".orchmind"
	}
	if _, err := os.Stat(d); err != nil {
		if c, err := os.UserConfigDir(); err == nil {
			old := filepath.Join(c, "orchmind")
			if old != d && isDir(old) {
				return old
			}
		}
	}
	return d
}

// Models returns the folder pulled base models go to: Dir()/models.
func Models() string { return filepath.Join(Dir(), "models") }

func platformDir() string {
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LOCALAPPDATA"); d != "" {
			return filepath.Join(d, "orchmind")
		}
	case "darwin", "ios":
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, "Library", "Application Support", "orchmind")
		}
	default:
		if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
			return filepath.Join(d, "orchmind")
		}
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, ".local", "share", "orchmind")
		}
	}
	if c, err := os.UserConfigDir(); err == nil {
		return filepath.Join(c, "orchmind")
	}
	return ""
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
