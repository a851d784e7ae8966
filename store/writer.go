package store

import (
	"context"
	"fmt"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// BlockWriter stores blocks the caller has hash-checked (as a fetch does
// on arrival) in two steps, so that the disk works while more blocks
// arrive: Add appends a large block's bytes to a pack file at once and
// starts writing them to disk, without waiting; Commit then syncs the
// packs and commits the records of everything added in one synced badger
// transaction (more if it is too big), as PutManyVerified does. Until
// Commit returns nothing added is in the store (Has and Get do not see
// it), and a crash before then leaves only unreferenced bytes at the end
// of a pack, which GC reclaims: a block is acknowledged, and survives a
// crash, once the Commit that took it has returned.
//
// Add reserves the block's quota, so a full store is reported by Add.
// A BlockWriter is not safe for concurrent use; Close it when done.
type BlockWriter struct {
	s        *Store
	todo     []entry
	blks     []blocks.Block
	bytes    int64
	appended map[uint32]int // pack appends not yet committed or given up
	// layout places the leaves of the files planned into file packs
	// (filepack.go), by block key; filePacks are those packs, held
	// pending until Close.
	layout    map[string]placement
	filePacks []uint32
}

// NewBlockWriter returns a BlockWriter on s.
func (s *Store) NewBlockWriter() *BlockWriter {
	return &BlockWriter{s: s, appended: map[uint32]int{}, layout: map[string]placement{}}
}

// StagedWriter is the BlockWriter as an interface (the same method set as
// the one swarm's Fetch looks for, so it need not import this package).
type StagedWriter = interface {
	Add(ctx context.Context, b blocks.Block) error
	Commit(ctx context.Context) ([]blocks.Block, error)
	Pending() int64
	Close()
}

// NewStagedWriter is NewBlockWriter as a StagedWriter: a fetch stores
// what it receives with it.
func (s *Store) NewStagedWriter() StagedWriter { return s.NewBlockWriter() }

// Pending returns the bytes added and not yet committed.
func (w *BlockWriter) Pending() int64 { return w.bytes }

// Add takes a block whose bytes the caller has checked against its CID.
// A block already in the store is skipped.
func (w *BlockWriter) Add(ctx context.Context, b blocks.Block) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, data, err := checkBlock(b)
	if err != nil {
		return err
	}
	if has, err := w.s.Has(ctx, n); err != nil {
		return err
	} else if has {
		w.blks = append(w.blks, b) // stored already: Commit reports it too
		return nil
	}
	if err := w.s.reserve(int64(len(data))); err != nil {
		w.s.failures.record(err)
		return err
	}
	e := entry{key: blockKey(n), data: data, reserved: true}
	place, planned := w.layout[string(e.key)]
	switch {
	case n.Type() == cid.DagProtobuf:
		// A file node comes before its leaves: they may go to a file
		// pack of their own (planned leaves go there whatever their
		// size, so that the pack holds the whole file).
		w.planFile(ctx, b)
	case planned:
		ref, err := w.s.packs.writeAt(place.pack, place.off, data)
		if err := w.packed(&e, ref, err); err != nil {
			return err
		}
	}
	if len(data) >= packThreshold && e.ref == nil {
		ref, err := w.s.packs.write(data)
		if err := w.packed(&e, ref, err); err != nil {
			return err
		}
	}
	w.todo = append(w.todo, e)
	w.blks = append(w.blks, b)
	w.bytes += int64(len(data))
	return nil
}

// packed records where a pack write put e's bytes, or, when it failed,
// gives back e's reservation and returns the error (recorded).
func (w *BlockWriter) packed(e *entry, ref packRef, err error) error {
	if err != nil {
		w.s.release(int64(len(e.data)))
		err = fmt.Errorf("store: writing blocks: %w", err)
		w.s.failures.record(err)
		return err
	}
	e.ref = &ref
	w.appended[ref.pack]++
	return nil
}

// Commit makes every block added since the last Commit durable and
// present in the store, and returns them all, those that were in the
// store already included (the caller may keep the slice). On an error the
// blocks not committed stay pending: Commit again, or Close to give them
// up.
func (w *BlockWriter) Commit(ctx context.Context) ([]blocks.Block, error) {
	if len(w.todo) == 0 {
		out := w.blks
		w.blks = nil
		return out, nil
	}
	done := map[uint32]int{}
	for _, e := range w.todo {
		if e.ref != nil {
			done[e.ref.pack]++
		}
	}
	if err := w.s.commit(ctx, w.todo, w.appended); err != nil {
		return nil, err
	}
	w.s.packs.done(done)
	for id, n := range done {
		if w.appended[id] -= n; w.appended[id] <= 0 {
			delete(w.appended, id)
		}
	}
	out := w.blks
	w.todo, w.blks, w.bytes = nil, nil, 0
	return out, nil
}

// Close gives up the blocks added and not committed: their quota is
// released and their bytes in the packs are left to GC.
func (w *BlockWriter) Close() {
	for _, e := range w.todo {
		if e.reserved {
			w.s.release(int64(len(e.data)))
		}
	}
	w.s.packs.done(w.appended)
	fps := map[uint32]int{}
	for _, id := range w.filePacks {
		fps[id]++
	}
	w.s.packs.done(fps)
	w.todo, w.blks, w.bytes, w.appended = nil, nil, 0, map[uint32]int{}
	w.layout, w.filePacks = map[string]placement{}, nil
}
