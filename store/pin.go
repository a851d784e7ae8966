package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// ErrNotPinned is wrapped by Unpin errors for a root that is not pinned.
var ErrNotPinned = errors.New("not pinned")

type pinRecord struct {
	Pinned time.Time `json:"pinned"`
}

type unlocker func()

func (u unlocker) Unlock(context.Context) { u() }

// PinLock holds off garbage collection while blocks are being put that are
// meant to be pinned (an import or a fetch followed by Pin). Several may be
// held at once; GC waits for all of them.
func (s *Store) PinLock(ctx context.Context) blockstore.Unlocker {
	s.gcLock.RLock()
	return unlocker(s.gcLock.RUnlock)
}

// GCLock takes the exclusive garbage-collection lock.
func (s *Store) GCLock(ctx context.Context) blockstore.Unlocker {
	s.gcWaiting.Add(1)
	s.gcLock.Lock()
	s.gcWaiting.Add(-1)
	return unlocker(s.gcLock.Unlock)
}

// GCRequested reports whether a GC is waiting for the lock.
func (s *Store) GCRequested(ctx context.Context) bool { return s.gcWaiting.Load() > 0 }

func pinKey(c cid.Cid) []byte { return append([]byte(prefixPin), c.Bytes()...) }

// Walk visits every block of the DAG under root once (root first, CIDv1
// form), reading each through Get (so each is integrity-checked; a raw
// leaf Get would not hash again, see doc.go, and a leaf imported by
// reference, see filestore.go, are not read at all) and
// following dag-pb links.
// Raw blocks have no links; other codecs are refused. It fails on the first
// missing or corrupted block.
func (s *Store) Walk(ctx context.Context, root cid.Cid, visit func(c cid.Cid, size int) error) error {
	seen := cid.NewSet()
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := normalize(stack[len(stack)-1])
		if err != nil {
			return err
		}
		stack = stack[:len(stack)-1]
		if !seen.Visit(c) {
			continue
		}
		if c.Type() == cid.Raw {
			// A leaf checked moments ago need not be read again, nor one
			// imported by reference: its file is read and hashed whenever
			// it is served (filestore.go), not at every GC.
			size, ok := s.recentlyVerified(c)
			if !ok {
				size, ok = s.refSize(c)
			}
			if ok {
				if visit != nil {
					if err := visit(c, size); err != nil {
						return err
					}
				}
				continue
			}
		}
		b, err := s.Get(ctx, c)
		if err != nil {
			if ipld.IsNotFound(err) {
				return fmt.Errorf("store: block %s of %s is missing: %w", c, root, err)
			}
			return err
		}
		if visit != nil {
			if err := visit(c, len(b.RawData())); err != nil {
				return err
			}
		}
		switch c.Type() {
		case cid.Raw:
		case cid.DagProtobuf:
			nd, err := merkledag.DecodeProtobufBlock(b)
			if err != nil {
				return fmt.Errorf("store: block %s of %s is not valid dag-pb: %w", c, root, err)
			}
			for _, l := range nd.Links() {
				stack = append(stack, l.Cid)
			}
		default:
			return fmt.Errorf("store: block %s of %s has codec 0x%x; only dag-pb and raw DAGs can be pinned", c, root, c.Type())
		}
	}
	return nil
}

// Pin pins the DAG under root recursively: GC keeps every block reachable
// from it. The whole DAG must be present and intact (it is walked and
// checked), so fetch or import it first. Pinning a pinned root is a no-op.
func (s *Store) Pin(ctx context.Context, root cid.Cid) error {
	n, err := normalize(root)
	if err != nil {
		return err
	}
	unlock := s.PinLock(ctx)
	defer unlock.Unlock(ctx)
	return s.pinLocked(ctx, n)
}

// PinHeld is Pin for a caller that already holds PinLock, taken before
// the blocks were put (a fetch followed by its pin), so that no GC can run
// between the two. Pin itself must not be called with PinLock held: a GC
// waiting in between would deadlock the second lock.
func (s *Store) PinHeld(ctx context.Context, root cid.Cid) error {
	n, err := normalize(root)
	if err != nil {
		return err
	}
	return s.pinLocked(ctx, n)
}

// pinLocked pins n (normalized); the caller holds PinLock.
func (s *Store) pinLocked(ctx context.Context, n cid.Cid) error {
	root := n
	if err := s.Walk(ctx, n, nil); err != nil {
		return fmt.Errorf("store: cannot pin %s: %w", root, err)
	}
	rec, _ := json.Marshal(pinRecord{Pinned: time.Now().UTC()})
	err := s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(pinKey(n)); err == nil {
			return nil
		}
		return txn.Set(pinKey(n), rec)
	})
	if err != nil {
		return fmt.Errorf("store: recording the pin of %s: %w", root, err)
	}
	s.log.Debug("pinned", "root", n)
	return nil
}

// Unpin removes the pin of root; its blocks go at the next GC unless another
// pin reaches them.
func (s *Store) Unpin(ctx context.Context, root cid.Cid) error {
	n, err := normalize(root)
	if err != nil {
		return err
	}
	err = s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(pinKey(n)); err != nil {
			return err
		}
		return txn.Delete(pinKey(n))
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return fmt.Errorf("store: %s is %w", root, ErrNotPinned)
	}
	if err != nil {
		return fmt.Errorf("store: unpinning %s: %w", root, err)
	}
	return nil
}

// IsPinned reports whether root is pinned.
func (s *Store) IsPinned(ctx context.Context, root cid.Cid) (bool, error) {
	n, err := normalize(root)
	if err != nil {
		return false, err
	}
	err = s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(pinKey(n))
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: reading the pin of %s: %w", root, err)
	}
	return true, nil
}

// Pins lists the pinned roots.
func (s *Store) Pins(ctx context.Context) ([]cid.Cid, error) {
	var out []cid.Cid
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixPin)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			c, err := cid.Cast(it.Item().KeyCopy(nil)[len(prefixPin):])
			if err != nil {
				return fmt.Errorf("bad pin key: %w", err)
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: listing pins: %w", err)
	}
	return out, nil
}

// GCResult reports what a garbage collection removed.
type GCResult struct {
	Removed int
	Freed   int64
}

// GC removes every block not reachable from a pin. It waits for running
// put→pin sequences (PinLock) and blocks new ones while it runs. If a pinned
// DAG is incomplete or corrupted, GC stops without deleting anything (it
// cannot tell which blocks that DAG still needs below the damage).
func (s *Store) GC(ctx context.Context) (GCResult, error) {
	unlock := s.GCLock(ctx)
	defer unlock.Unlock(ctx)
	var res GCResult
	pins, err := s.Pins(ctx)
	if err != nil {
		return res, err
	}
	keep := make(map[string]struct{})
	for _, p := range pins {
		err := s.Walk(ctx, p, func(c cid.Cid, _ int) error {
			keep[string(c.Bytes())] = struct{}{}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("store: garbage collection stopped, nothing removed: pinned adapter %s is damaged (%w); fetch it again or unpin it", p, err)
		}
	}
	var doomed [][]byte
	var sizes []int64
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte(prefixBlock)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if _, ok := keep[string(k[len(prefixBlock):])]; !ok {
				n, err := recordSize(it.Item())
				if err != nil {
					return fmt.Errorf("block record %x: %w", k, err)
				}
				doomed = append(doomed, k)
				sizes = append(sizes, n)
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("store: garbage collection: listing blocks: %w", err)
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for i, k := range doomed {
		if err := wb.Delete(k); err != nil {
			return res, fmt.Errorf("store: garbage collection: %w", err)
		}
		res.Removed++
		res.Freed += sizes[i]
	}
	if err := wb.Flush(); err != nil {
		return GCResult{}, fmt.Errorf("store: garbage collection: %w", err)
	}
	s.release(res.Freed)
	// Give the disk space back: delete or rewrite pack files and value-log
	// files that are now mostly garbage (ErrNoRewrite ends the loop).
	if err := s.compactPacks(ctx); err != nil {
		return res, fmt.Errorf("store: garbage collection removed %d blocks but could not compact the pack files: %w", res.Removed, err)
	}
	for i := 0; i < 16 && ctx.Err() == nil; i++ {
		if err := s.db.RunValueLogGC(0.5); err != nil {
			break
		}
	}
	s.log.Info("garbage collection done", "removed", res.Removed, "freed", res.Freed, "pins", len(pins))
	return res, nil
}

// compactPacks deletes the pack files no record refers to and rewrites
// those less than half of whose bytes are referred to (copying those bytes
// to the current pack, then repointing their records), so the space of
// deleted blocks goes back to the disk. Packs still being written to are
// left alone.
func (s *Store) compactPacks(ctx context.Context) error {
	sizes, err := s.packs.settled()
	if err != nil || len(sizes) == 0 {
		return err
	}
	// Records pointing into those packs (the snapshot is taken after
	// settled: every record into them is committed by now).
	type liveRef struct {
		key []byte
		ref packRef
	}
	live := map[uint32][]liveRef{}
	used := map[uint32]int64{}
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte(prefixBlock)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if item.UserMeta() != metaPacked {
				continue
			}
			var ref packRef
			if err := item.Value(func(v []byte) error { ref, err = decodePackRef(v); return err }); err != nil {
				return err
			}
			if _, ok := sizes[ref.pack]; ok {
				live[ref.pack] = append(live[ref.pack], liveRef{item.KeyCopy(nil), ref})
				used[ref.pack] += int64(ref.n)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var gone []uint32
	for id, size := range sizes {
		if err := ctx.Err(); err != nil {
			break
		}
		if used[id] == 0 {
			gone = append(gone, id)
			continue
		}
		if used[id]*2 >= size {
			continue
		}
		// Rewrite: copy the live bytes to the current pack, sync, repoint.
		var moved []liveRef
		held := map[uint32]int{}
		for _, l := range live[id] {
			s.packs.mu.RLock()
			data, err := s.packs.read(l.ref)
			s.packs.mu.RUnlock()
			if err != nil {
				s.packs.done(held)
				return err
			}
			ref, err := s.packs.write(data)
			if err != nil {
				s.packs.done(held)
				return err
			}
			held[ref.pack]++
			moved = append(moved, liveRef{l.key, ref})
		}
		ids := map[uint32]bool{}
		for p := range held {
			ids[p] = true
		}
		if err := s.packs.sync(ids); err != nil {
			s.packs.done(held)
			return err
		}
		err := s.update(func(txn *badger.Txn) error {
			for i, m := range moved {
				item, err := txn.Get(m.key)
				if errors.Is(err, badger.ErrKeyNotFound) {
					continue // deleted meanwhile
				}
				if err != nil {
					return err
				}
				var cur packRef
				if item.UserMeta() == metaPacked {
					if err := item.Value(func(v []byte) error { cur, err = decodePackRef(v); return err }); err != nil {
						return err
					}
				}
				if item.UserMeta() != metaPacked || cur != live[id][i].ref {
					continue // rewritten meanwhile
				}
				if err := txn.SetEntry(badger.NewEntry(m.key, m.ref.encode()).WithMeta(metaPacked)); err != nil {
					return err
				}
			}
			return nil
		})
		s.packs.done(held)
		if err != nil {
			return err
		}
		gone = append(gone, id)
	}
	if len(gone) > 0 {
		s.log.Debug("compacted pack files", "removed", len(gone))
	}
	return s.packs.remove(gone)
}
