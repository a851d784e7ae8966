//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package gguf

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps the whole file at path into memory, private and
// copy-on-write: pages are read from the file on first touch and shared
// with the page cache, and a stray write by a caller changes only this
// process's copy, never the file. unmap releases the mapping (nil when the
// file was read instead: empty files cannot be mapped).
func mapFile(path string) (data []byte, unmap func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := st.Size()
	if size == 0 || !st.Mode().IsRegular() {
		data, err := os.ReadFile(path)
		return data, nil, err
	}
	if size != int64(int(size)) {
		return nil, nil, fmt.Errorf("%d bytes is too large to map on this platform", size)
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
	if err != nil {
		// Some file systems cannot be mapped: read the file instead.
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return nil, nil, fmt.Errorf("map: %v; read: %w", err, rerr)
		}
		return data, nil, nil
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
