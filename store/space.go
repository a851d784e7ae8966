package store

import (
	"errors"
	"fmt"
	"sync"

	"github.com/dustin/go-humanize"
)

// ErrDiskFull is wrapped by CheckSpace errors when the disk holding the
// store has too little free space.
var ErrDiskFull = errors.New("disk full")

// DiskMargin is the free disk space CheckSpace leaves untouched: badger
// needs room for its logs and compaction beyond the blocks themselves.
const DiskMargin = 64 << 20

// CheckSpace reports whether need more bytes of blocks fit: within the quota
// (an error wrapping ErrStoreFull) and on the disk, keeping DiskMargin free
// (an error wrapping ErrDiskFull). Call it before a large write, such as a
// fetch whose size is known from its root block, to fail at once with a clear
// message instead of part-way through.
func (s *Store) CheckSpace(need int64) error {
	s.mu.Lock()
	used := s.used
	s.mu.Unlock()
	if s.quota > 0 && used+need > s.quota {
		return fmt.Errorf("%w: %s more needed, %s of the %s quota used; unpin adapters or raise --quota", ErrStoreFull,
			humanize.IBytes(uint64(need)), humanize.IBytes(uint64(used)), humanize.IBytes(uint64(s.quota)))
	}
	free, err := diskFree(s.dir)
	if err != nil {
		return nil // unknown: let the writes tell
	}
	if free < uint64(need)+DiskMargin {
		return fmt.Errorf("%w: %s more needed (plus %s working space) but %s is free on the disk holding %s; free some space or move --data-dir to a larger disk",
			ErrDiskFull, humanize.IBytes(uint64(need)), humanize.IBytes(DiskMargin), humanize.IBytes(free), s.dir)
	}
	return nil
}

// putFailures counts failed block writes, so that a caller whose writes
// happen elsewhere (bitswap stores fetched blocks itself and only logs a
// failure) can notice them and stop.
type putFailures struct {
	mu   sync.Mutex
	n    uint64
	last error
}

func (p *putFailures) record(err error) {
	p.mu.Lock()
	p.n++
	p.last = err
	p.mu.Unlock()
}

// PutFailures returns how many block writes have failed since the store was
// opened, and the latest failure.
func (s *Store) PutFailures() (uint64, error) {
	s.failures.mu.Lock()
	defer s.failures.mu.Unlock()
	return s.failures.n, s.failures.last
}
