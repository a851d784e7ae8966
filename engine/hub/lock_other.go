//go:build !unix

package hub

import (
	"errors"
	"os"
)

var errLocked = errors.New("locked by another process")

// lockFile does nothing where flock is missing (Windows keeps an open file
// from being replaced anyway).
func lockFile(*os.File) error { return nil }
