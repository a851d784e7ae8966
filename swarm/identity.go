package swarm

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"orchmind/internal/atomicfile"
)

// IdentityFile is the name of the node key file inside Config.DataDir.
const IdentityFile = "identity.key"

// LoadOrCreateIdentity returns the ed25519 key stored in dir/identity.key,
// creating dir and the key on first use. The file is written atomically with
// mode 0600; a key of another type or a damaged file is an error, never
// silently replaced (replacing it would change the node's peer ID).
func LoadOrCreateIdentity(dir string, log *slog.Logger) (crypto.PrivKey, error) {
	if dir == "" {
		return nil, errors.New("swarm: no data directory given; set Config.DataDir to a folder where the node key can be kept")
	}
	path := filepath.Join(dir, IdentityFile)
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, err := crypto.UnmarshalPrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("swarm: node key %s is damaged (%v); restore it from a backup, or delete it to start with a new peer ID", path, err)
		}
		if key.Type() != crypto.Ed25519 {
			return nil, fmt.Errorf("swarm: node key %s is a %v key, expected ed25519; delete it to start with a new peer ID", path, key.Type())
		}
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 && log != nil {
			log.Warn("node key file is readable by other users; run chmod 600 on it", "path", path, "mode", st.Mode().Perm().String())
		}
		return key, nil
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("swarm: reading node key: %w", err)
	}

	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("swarm: generating node key: %w", err)
	}
	raw, err = crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("swarm: encoding node key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("swarm: creating data directory %s: %w", dir, err)
	}
	if err := atomicfile.WriteFile(path, raw, 0o600); err != nil {
		return nil, fmt.Errorf("swarm: saving node key: %w", err)
	}
	if log != nil {
		log.Info("created a new node key", "path", path)
	}
	return key, nil
}
