//go:build unix

package hub

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// checkSpace refuses a download of need bytes into dir when the disk has
// less free.
func checkSpace(dir string, need int64) error {
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		return nil // unknown: let the writes tell
	}
	free := int64(s.Bavail) * int64(s.Bsize)
	if free >= 0 && need > free {
		return fmt.Errorf("not enough disk space in %s: the download needs %d MB, %d MB are free", dir, need>>20, free>>20)
	}
	return nil
}
