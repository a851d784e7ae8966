package store

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"orchmind/internal/atomicfile"
)

// File packs: a fetched file is stored once and exported by reference.
//
// When a BlockWriter takes a UnixFS file node whose data all lies in raw
// leaves (as every file ImportFolder makes of 1 MiB and more does), none
// of them stored yet, it starts a file pack for it: a pack file of its
// own, never appended to, in which each leaf, when it is added, is written
// at its offset in the file. Once every leaf is committed the pack holds
// exactly the file's bytes, and an export links the pack into the
// exported folder (a hard link; where links are not possible, or the
// pack is not complete, it copies as before). The file's bytes are then
// written and synced once instead of twice, and take their disk space once.
//
// Everything else about a pack holds: each leaf has a record (pack,
// offset, length, CRC-32C), written only after the pack is synced, so a
// crash leaves at most a pack with holes, whose leaves a later fetch
// stores in an ordinary pack. A file pack shares its inode with the files
// exported from it: editing such a file in place (orchmind never does:
// it writes files anew and renames them) changes the store's bytes, which
// the CRC-32C on every read catches, so the store drops those blocks and
// fetches them again when they are wanted, never serving them.
const (
	// filePackTag marks a file pack's name: 00000012.file.pack.
	filePackTag = ".file"
	// filePackMin is the smallest file that gets a file pack.
	filePackMin = 1 << 20
)

func filePackName(id uint32) string { return fmt.Sprintf("%08d%s.pack", id, filePackTag) }

// placement is where a planned leaf goes: its file pack and its offset.
type placement struct {
	pack uint32
	off  int64
}

// newFilePack creates an empty file pack, synced into the pack folder,
// and marks it pending (GC leaves it alone) until done is called for it.
func (p *packs) newFilePack() (uint32, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	id := p.maxID + 1
	f, err := os.OpenFile(filepath.Join(p.dir, filePackName(id)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("starting file pack %d: %w", id, err)
	}
	if err := atomicfile.SyncDir(p.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return 0, fmt.Errorf("starting file pack %d: %w", id, err)
	}
	p.maxID = id
	p.files[id] = f
	p.filePacks[id] = true
	p.pending[id]++
	return id, nil
}

// writeAt writes data at off in file pack id without syncing it, and
// marks the write pending until done is called for its pack.
func (p *packs) writeAt(id uint32, off int64, data []byte) (packRef, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	f := p.files[id]
	if f == nil || !p.filePacks[id] {
		return packRef{}, fmt.Errorf("file pack %d is not open", id)
	}
	ref := packRef{pack: id, off: off, n: uint32(len(data)), crc: crc32.Checksum(data, castagnoli)}
	if _, err := f.WriteAt(data, off); err != nil {
		return packRef{}, err
	}
	startWriteback(f, off, int64(len(data)))
	p.pending[id]++
	return ref, nil
}

// isFilePack reports whether id is a file pack, and its path.
func (p *packs) isFilePack(id uint32) (string, bool) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if !p.filePacks[id] {
		return "", false
	}
	return filepath.Join(p.dir, filePackName(id)), true
}

// rawLeaves returns the leaves of a UnixFS file node whose data lies all
// in raw leaves, with their sizes and the file's size; ok is false for any
// other node (a folder, inline data, a deeper tree, sizes that do not add
// up, or a leaf listed twice).
func rawLeaves(nd ipld.Node) (leaves []cid.Cid, sizes []uint64, size uint64, ok bool) {
	pn, isPB := nd.(*merkledag.ProtoNode)
	if !isPB {
		return nil, nil, 0, false
	}
	fsn, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil || fsn.Type() != ft.TFile || len(fsn.Data()) != 0 {
		return nil, nil, 0, false
	}
	links := pn.Links()
	sizes = fsn.BlockSizes()
	if len(links) == 0 || len(links) != len(sizes) {
		return nil, nil, 0, false
	}
	seen := make(map[string]bool, len(links))
	for i, l := range links {
		if l.Cid.Type() != cid.Raw || seen[l.Cid.KeyString()] || sizes[i] == 0 || sizes[i] > MaxBlockSize {
			return nil, nil, 0, false
		}
		seen[l.Cid.KeyString()] = true
		size += sizes[i]
		leaves = append(leaves, l.Cid)
	}
	if size != fsn.FileSize() {
		return nil, nil, 0, false
	}
	return leaves, sizes, size, true
}

// planFile starts a file pack for the file node b if it is one whose
// leaves can all go there (see rawLeaves; at least filePackMin bytes, at
// most a pack's size; none of its leaves stored or planned yet). It is
// best effort: any obstacle leaves the leaves to the ordinary packs.
func (w *BlockWriter) planFile(ctx context.Context, b blocks.Block) {
	if b.Cid().Type() != cid.DagProtobuf || len(b.RawData()) > MaxBlockSize {
		return
	}
	nd, err := merkledag.DecodeProtobufBlock(b)
	if err != nil {
		return
	}
	leaves, sizes, size, ok := rawLeaves(nd)
	if !ok || size < filePackMin || size > uint64(w.s.packs.maxSize) {
		return
	}
	keys := make([]string, len(leaves))
	for i, c := range leaves {
		n, err := normalize(c)
		if err != nil {
			return
		}
		keys[i] = string(blockKey(n))
		if _, planned := w.layout[keys[i]]; planned {
			return
		}
		if has, err := w.s.Has(ctx, n); err != nil || has {
			return
		}
	}
	id, err := w.s.packs.newFilePack()
	if err != nil {
		w.s.log.Debug("could not start a file pack; storing the file's blocks in the ordinary packs", "err", err)
		return
	}
	w.filePacks = append(w.filePacks, id)
	var off int64
	for i, k := range keys {
		w.layout[k] = placement{pack: id, off: off}
		off += int64(sizes[i])
	}
}

// linkFile exports the file node nd to path as a hard link to its file
// pack, when the store holds all of nd's leaves there, each at its offset
// in the file and checked against its CID within verifiedTTL (so, as an
// export by Get, the file is made of checked bytes), the pack holding
// nothing else. It returns false when that is not the case or linking
// fails; the caller then writes the file.
func (s *Store) linkFile(nd ipld.Node, path string) (bool, error) {
	leaves, sizes, size, ok := rawLeaves(nd)
	if !ok || size < filePackMin {
		return false, nil
	}
	var pack uint32
	var off int64
	for i, c := range leaves {
		n, err := normalize(c)
		if err != nil {
			return false, nil
		}
		ref, fresh, err := s.packedRef(n)
		if err != nil || !fresh || ref.off != off || uint64(ref.n) != sizes[i] || i > 0 && ref.pack != pack {
			return false, nil
		}
		pack = ref.pack
		off += int64(ref.n)
	}
	src, ok := s.packs.isFilePack(pack)
	if !ok {
		return false, nil
	}
	// GC deletes packs holding packs.mu for writing: not while linking.
	s.packs.mu.RLock()
	defer s.packs.mu.RUnlock()
	if st, err := os.Stat(src); err != nil || st.Size() != int64(size) {
		return false, nil
	}
	if err := os.Link(src, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, err
		}
		s.log.Debug("could not link a file pack; copying the file instead", "err", err)
		return false, nil
	}
	if err := os.Chmod(path, 0o644); err != nil {
		_ = os.Remove(path)
		return false, nil
	}
	return true, nil
}

// packedRef returns the pack reference of the stored block n (normalized)
// and whether its bytes were checked against n within verifiedTTL.
func (s *Store) packedRef(n cid.Cid) (ref packRef, fresh bool, err error) {
	key := blockKey(n)
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		if item.UserMeta() != metaPacked {
			return errNotPacked
		}
		if err := item.Value(func(v []byte) error { ref, err = decodePackRef(v); return err }); err != nil {
			return err
		}
		v, hit := s.verified.Get(string(key))
		fresh = hit && v == item.Version()
		return nil
	})
	return ref, fresh, err
}

var errNotPacked = errors.New("block is not in a pack")
