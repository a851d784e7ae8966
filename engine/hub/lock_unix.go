//go:build unix

package hub

import (
	"errors"
	"os"
	"syscall"
)

// errLocked is returned by lockFile when another process holds the lock.
var errLocked = errors.New("locked by another process")

// lockFile takes an exclusive advisory lock on f without waiting; the OS
// drops it when the process ends, even on kill -9.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
