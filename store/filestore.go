package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Files imported by reference (ImportFileRef): a base model of gigabytes is
// not copied into the store. Each raw leaf block of the file's UnixFS DAG
// gets a badger record marked metaFileRef whose value is a fileRef: the
// file's path, the leaf's offset and length, and the file's size and
// modification time at import. Get reads the bytes from the file and
// hashes them every time (they can change under the store): a file that
// was changed, moved or truncated makes Get fail with an error wrapping
// ErrFileChanged, and nothing is served. The dag-pb nodes above the leaves
// are small and stored as usual. A reference counts only its record's few
// bytes against the quota.
const metaFileRef byte = 2

// ErrFileChanged is wrapped by Get errors for a block imported by
// reference whose file changed, moved or was truncated since.
var ErrFileChanged = errors.New("file imported by reference has changed")

// fileRef locates one leaf block inside a file imported by reference.
type fileRef struct {
	off   int64
	n     uint32
	size  int64 // the file's size at import
	mtime int64 // the file's modification time at import (Unix ns)
	path  string
}

func (r fileRef) encode() []byte {
	b := make([]byte, 28, 28+len(r.path))
	binary.BigEndian.PutUint64(b[0:], uint64(r.off))
	binary.BigEndian.PutUint32(b[8:], r.n)
	binary.BigEndian.PutUint64(b[12:], uint64(r.size))
	binary.BigEndian.PutUint64(b[20:], uint64(r.mtime))
	return append(b, r.path...)
}

func decodeFileRef(b []byte) (fileRef, error) {
	if len(b) < 29 {
		return fileRef{}, fmt.Errorf("file reference of %d bytes is too short", len(b))
	}
	return fileRef{off: int64(binary.BigEndian.Uint64(b[0:])), n: binary.BigEndian.Uint32(b[8:]),
		size: int64(binary.BigEndian.Uint64(b[12:])), mtime: int64(binary.BigEndian.Uint64(b[20:])), path: string(b[28:])}, nil
}

// refStats counts reads of blocks imported by reference.
type refStats struct{ reads, bytes atomic.Int64 }

// read returns the leaf's bytes, or an error wrapping ErrFileChanged.
func (r fileRef) read() ([]byte, error) {
	f, err := os.Open(r.path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFileChanged, r.path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFileChanged, r.path, err)
	}
	if st.Size() != r.size || st.ModTime().UnixNano() != r.mtime {
		return nil, fmt.Errorf("%w: %s is now %d bytes modified %s, was %d bytes modified %s at import",
			ErrFileChanged, r.path, st.Size(), st.ModTime().UTC().Format(time.RFC3339), r.size, time.Unix(0, r.mtime).UTC().Format(time.RFC3339))
	}
	data := make([]byte, r.n)
	if _, err := f.ReadAt(data, r.off); err != nil {
		return nil, fmt.Errorf("%w: reading %s at %d: %v", ErrFileChanged, r.path, r.off, err)
	}
	return data, nil
}

// getRef finishes a Get of a record imported by reference: the bytes are
// hashed every time, and bytes that do not match (the file was rewritten
// in place with the same size and time) are refused like a changed file.
func (s *Store) getRef(c cid.Cid, data []byte, err error) (blocks.Block, error) {
	if err != nil {
		return nil, fmt.Errorf("store: block %s: %w; it is not served: if the file was replaced on purpose, restart the node with it as its base (it is imported again), else pull the base again", c, err)
	}
	if verr := verify(c, data); verr != nil {
		return nil, fmt.Errorf("store: block %s: %w (%v); not served: import the file again", c, ErrFileChanged, verr)
	}
	s.refs.reads.Add(1)
	s.refs.bytes.Add(int64(len(data)))
	return blocks.NewBlockWithCid(data, c)
}

// RefReads returns how many blocks imported by reference Get has read
// from their files, and their bytes, since the store was opened (serving
// them to peers counts here).
func (s *Store) RefReads() (blocks, bytes int64) { return s.refs.reads.Load(), s.refs.bytes.Load() }

// refDAG is the DAG service of ImportFileRef: raw leaves become file
// references at the running offset (the balanced importer adds the leaves
// in file order), every other node is stored.
type refDAG struct {
	s     *Store
	ctx   context.Context
	path  string
	size  int64
	mtime int64
	off   int64
	refs  []entry
}

func (d *refDAG) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	return d.s.importDAG.Get(ctx, c)
}

func (d *refDAG) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	return d.s.importDAG.GetMany(ctx, cs)
}

func (d *refDAG) Add(ctx context.Context, nd ipld.Node) error {
	if nd.Cid().Type() != cid.Raw {
		return d.s.importDAG.Add(ctx, nd)
	}
	n, err := normalize(nd.Cid())
	if err != nil {
		return err
	}
	raw := nd.RawData()
	ref := fileRef{off: d.off, n: uint32(len(raw)), size: d.size, mtime: d.mtime, path: d.path}
	d.off += int64(len(raw))
	d.refs = append(d.refs, entry{key: blockKey(n), data: ref.encode()})
	if len(d.refs) >= 1024 {
		return d.flush()
	}
	return nil
}

func (d *refDAG) AddMany(ctx context.Context, nds []ipld.Node) error {
	for _, nd := range nds {
		if err := d.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

func (d *refDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (d *refDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }

// flush writes the pending references: each replaces whatever record the
// block had (a copy fetched earlier is freed; its pack bytes go at the
// next GC).
func (d *refDAG) flush() error {
	refs := d.refs
	d.refs = nil
	for len(refs) > 0 {
		done := 0
		var freed, added int64
		err := d.s.db.Update(func(txn *badger.Txn) error {
			freed, added, done = 0, 0, 0
			for _, e := range refs {
				if item, err := txn.Get(e.key); err == nil {
					sz, err := recordSize(item)
					if err != nil {
						return err
					}
					freed += sz
				} else if !errors.Is(err, badger.ErrKeyNotFound) {
					return err
				}
				err := txn.SetEntry(badger.NewEntry(e.key, e.data).WithMeta(metaFileRef))
				if errors.Is(err, badger.ErrTxnTooBig) && done > 0 {
					return nil
				}
				if err != nil {
					return err
				}
				added += int64(len(e.data))
				done++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: recording file references: %w", err)
		}
		for _, e := range refs[:done] {
			d.s.verified.Remove(string(e.key))
		}
		d.s.release(freed - added)
		refs = refs[done:]
	}
	return nil
}

// ImportFileRef imports the file at path as a UnixFS file DAG (the same
// chunking, layout and CIDs as a file of ImportFolder: 1 MiB raw leaves,
// balanced, CIDv1) by reference: its leaves stay in the file and the store
// records where (see metaFileRef); only the small dag-pb nodes are
// stored. It pins the root and returns it. Blocks of the file already in
// the store as copies (a pull) are replaced by references, which frees
// their space. The file must not change afterwards: if it does, its
// blocks are refused (ErrFileChanged) rather than served.
func (s *Store) ImportFileRef(ctx context.Context, path string) (cid.Cid, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return cid.Undef, fmt.Errorf("store: importing %s: %w", path, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		return cid.Undef, fmt.Errorf("store: importing %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return cid.Undef, fmt.Errorf("store: importing %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return cid.Undef, fmt.Errorf("store: %s is not a regular file", path)
	}
	unlock := s.PinLock(ctx)
	defer unlock.Unlock(ctx)
	d := &refDAG{s: s, ctx: ctx, path: abs, size: st.Size(), mtime: st.ModTime().UnixNano()}
	params := helpers.DagBuilderParams{Dagserv: d, Maxlinks: MaxLinks, RawLeaves: true, CidBuilder: cidBuilder}
	db, err := params.New(chunker.NewSizeSplitter(ctxReader{ctx, f}, ChunkSize))
	if err != nil {
		return cid.Undef, err
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		return cid.Undef, fmt.Errorf("store: importing %s: %w", path, err)
	}
	if err := d.flush(); err != nil {
		return cid.Undef, err
	}
	if d.off != st.Size() {
		return cid.Undef, fmt.Errorf("store: importing %s: read %d bytes of %d (did it change while being imported?)", path, d.off, st.Size())
	}
	if st2, err := os.Stat(abs); err != nil || st2.Size() != st.Size() || !st2.ModTime().Equal(st.ModTime()) {
		return cid.Undef, fmt.Errorf("store: %s changed while it was imported; import it again once nothing writes it", path)
	}
	// Every block was just written: record the pin without walking the
	// DAG (that would read the whole file again).
	root, err := normalize(nd.Cid())
	if err != nil {
		return cid.Undef, err
	}
	rec, _ := json.Marshal(pinRecord{Pinned: time.Now().UTC()})
	if err := s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(pinKey(root)); err == nil {
			return nil
		}
		return txn.Set(pinKey(root), rec)
	}); err != nil {
		return cid.Undef, fmt.Errorf("store: recording the pin of %s: %w", root, err)
	}
	s.log.Info("imported file by reference", "path", abs, "root", root, "bytes", st.Size())
	return root, nil
}

// ctxReader stops a read when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ExportFile writes the UnixFS file DAG under root to path (created; it
// must not exist) from the store, synced to disk. It is for a single file
// (a base model); folders go through ExportFolder.
func (s *Store) ExportFile(ctx context.Context, root cid.Cid, path string) error {
	nd, err := s.dag.Get(ctx, root)
	if err != nil {
		return fmt.Errorf("store: exporting %s: %w", root, err)
	}
	if isDir(nd) {
		return fmt.Errorf("store: %s is a folder, not a file", root)
	}
	if err := s.exportFile(ctx, s.dag, nd, path, nil); err != nil {
		return fmt.Errorf("store: exporting %s: %w", root, err)
	}
	return nil
}

// HashFile computes the root CID that ImportFileRef gives path, storing
// nothing.
func HashFile(path string) (cid.Cid, error) {
	nd, err := importFile(discardDAG{}, path)
	if err != nil {
		return cid.Undef, fmt.Errorf("store: hashing %s: %w", path, err)
	}
	return nd.Cid(), nil
}

// Reclaim gives back the disk space of pack files whose blocks were
// replaced by references (ImportFileRef after a pull) or deleted: packs
// no record refers to are deleted, mostly dead ones rewritten (as GC
// does, without removing any block). The pack being written to is left
// for a later GC.
func (s *Store) Reclaim(ctx context.Context) error {
	unlock := s.GCLock(ctx)
	defer unlock.Unlock(ctx)
	if err := s.compactPacks(ctx); err != nil {
		return fmt.Errorf("store: reclaiming pack space: %w", err)
	}
	return nil
}

// refSize reports whether the block n (normalized) is imported by
// reference, and its size, without reading its file.
func (s *Store) refSize(n cid.Cid) (int, bool) {
	var size int
	ok := false
	_ = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(blockKey(n))
		if err != nil || item.UserMeta() != metaFileRef {
			return err
		}
		return item.Value(func(v []byte) error {
			r, err := decodeFileRef(v)
			size, ok = int(r.n), err == nil
			return nil
		})
	})
	return size, ok
}
