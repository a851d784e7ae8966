package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Saved announcements live under one generation at a time:
// n/<generation: 8 bytes><index: 8 bytes> → entry, and m/announcements →
// the current generation. A save writes a new generation, then moves the
// pointer, then deletes the old one, so a crash at any point leaves either
// the old list or the new one, never a mix.
const (
	prefixAnnouncement = "n/"
	keyAnnouncementGen = "m/announcements"
)

// Bounds on the saved announcements.
const (
	// MaxSavedAnnouncements bounds how many announcements are saved; a
	// longer list keeps its last (most recently arrived) entries.
	MaxSavedAnnouncements = 1 << 16
	// MaxSavedAnnouncementSize bounds one saved entry's bytes.
	MaxSavedAnnouncementSize = 64 << 10
)

// SavedAnnouncement is a signed announcement the node keeps across
// restarts: the bytes exactly as received and the peer that delivered them
// (the author, a gossip forwarder, or the peer whose catalogue held it).
// The store does not read the bytes: the node verifies them again when it
// loads them.
type SavedAnnouncement struct {
	From peer.ID
	Data []byte
}

func encodeSaved(a SavedAnnouncement) []byte {
	from := []byte(a.From)
	b := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(from)+len(a.Data)), uint64(len(from)))
	b = append(b, from...)
	return append(b, a.Data...)
}

func decodeSaved(v []byte) (SavedAnnouncement, error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)-k) {
		return SavedAnnouncement{}, errors.New("bad length")
	}
	from := peer.ID(v[k : k+int(n)])
	if from != "" {
		if err := from.Validate(); err != nil {
			return SavedAnnouncement{}, fmt.Errorf("bad peer ID: %w", err)
		}
	}
	return SavedAnnouncement{From: from, Data: bytes.Clone(v[k+int(n):])}, nil
}

func announcementKey(gen, i uint64) []byte {
	k := binary.BigEndian.AppendUint64([]byte(prefixAnnouncement), gen)
	return binary.BigEndian.AppendUint64(k, i)
}

func (s *Store) announcementGen() (uint64, error) {
	var gen uint64
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keyAnnouncementGen))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("announcement generation of %d bytes", len(v))
			}
			gen = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return gen, err
}

// SaveAnnouncements replaces the saved announcements with list, in its
// order (at most MaxSavedAnnouncements: the last ones). Empty entries and
// entries over MaxSavedAnnouncementSize are left out. The replacement is
// atomic: after a crash Announcements returns the old list or the new one.
func (s *Store) SaveAnnouncements(ctx context.Context, list []SavedAnnouncement) error {
	if len(list) > MaxSavedAnnouncements {
		list = list[len(list)-MaxSavedAnnouncements:]
	}
	gen, err := s.announcementGen()
	if err != nil {
		return fmt.Errorf("store: saving announcements: %w", err)
	}
	// What a crashed save half-wrote goes first: the new generation is
	// written into an empty range.
	if err := s.deleteAnnouncementsExcept(gen); err != nil {
		return fmt.Errorf("store: saving announcements: %w", err)
	}
	next := gen + 1
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	i := uint64(0)
	for _, a := range list {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: saving announcements: %w", err)
		}
		v := encodeSaved(a)
		if len(a.Data) == 0 || len(v) > MaxSavedAnnouncementSize {
			continue
		}
		if err := wb.Set(announcementKey(next, i), v); err != nil {
			return fmt.Errorf("store: saving announcements: %w", err)
		}
		i++
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("store: saving announcements: %w", err)
	}
	if err := s.update(func(txn *badger.Txn) error {
		return txn.Set([]byte(keyAnnouncementGen), binary.BigEndian.AppendUint64(nil, next))
	}); err != nil {
		return fmt.Errorf("store: saving announcements: %w", err)
	}
	// The replaced generation goes.
	if err := s.deleteAnnouncementsExcept(next); err != nil {
		s.log.Warn("old saved announcements not removed; the next save tries again", "err", err)
	}
	return nil
}

func (s *Store) deleteAnnouncementsExcept(keep uint64) error {
	var stale [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixAnnouncement)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != len(prefixAnnouncement)+16 || binary.BigEndian.Uint64(k[len(prefixAnnouncement):]) != keep {
				stale = append(stale, it.Item().KeyCopy(nil))
			}
		}
		return nil
	})
	if err != nil || len(stale) == 0 {
		return err
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range stale {
		if err := wb.Delete(k); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// Announcements returns the saved announcements in the order they were
// saved. An entry that does not decode is skipped (and logged).
func (s *Store) Announcements(ctx context.Context) ([]SavedAnnouncement, error) {
	gen, err := s.announcementGen()
	if err != nil || gen == 0 {
		if err != nil {
			err = fmt.Errorf("store: reading saved announcements: %w", err)
		}
		return nil, err
	}
	prefix := binary.BigEndian.AppendUint64([]byte(prefixAnnouncement), gen)
	var out []SavedAnnouncement
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if len(out) == MaxSavedAnnouncements {
				break
			}
			err := it.Item().Value(func(v []byte) error {
				if len(v) > MaxSavedAnnouncementSize {
					return fmt.Errorf("entry of %d bytes", len(v))
				}
				a, err := decodeSaved(v)
				if err != nil {
					return err
				}
				out = append(out, a)
				return nil
			})
			if err != nil {
				s.log.Warn("skipped a saved announcement that does not decode", "key", fmt.Sprintf("%x", it.Item().Key()), "err", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: reading saved announcements: %w", err)
	}
	return out, nil
}

// update runs fn in a read-write transaction, retrying on conflicts.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	for {
		err := s.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
}
