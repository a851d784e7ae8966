//go:build unix

package store

import "golang.org/x/sys/unix"

// diskFree returns the bytes available to this user on the file system
// holding dir.
func diskFree(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
