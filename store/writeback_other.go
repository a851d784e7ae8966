//go:build !linux

package store

import "os"

// startWriteback does nothing here (sync_file_range is Linux's); the fsync
// that follows writes everything.
func startWriteback(f *os.File, off, n int64) {}
