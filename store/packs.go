package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"orchmind/internal/atomicfile"
)

// Large blocks live in pack files, not in badger: badger writes values
// through a memory map, and the page faults and msync of that path cost
// several times the CPU of write(2) and fdatasync (1 MiB: about 1.5 ms of
// kernel time against 0.3 ms, measured). A pack file is only ever appended
// to; a block's badger record then holds a reference (pack, offset,
// length) instead of its bytes, marked with the metaPacked user-meta
// byte. Records without it hold the bytes themselves, as every record did
// before packs existed.
//
// Crash safety: a block's bytes are appended and fdatasync'ed before the
// badger transaction that refers to them commits (synced), so a record
// never refers to bytes that are not on disk. A crash in between leaves
// unreferenced bytes at the end of a pack, which only cost space until GC
// rewrites that pack.
const (
	// packThreshold is the size from which a block goes to a pack file.
	packThreshold = 64 << 10
	// packMaxSize is the size past which the current pack file is left
	// and a new one started.
	packMaxSize = 256 << 20
	// packDirName is the folder of the pack files inside the store.
	packDirName = "packs"
	// metaPacked marks a block record whose value is a packRef.
	metaPacked byte = 1
	// packRefSize is the encoded size of a packRef.
	packRefSize = 4 + 8 + 4 + 4
)

// castagnoli is the CRC-32C table; CRC-32C runs at many GB/s per core.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errPackCRC is wrapped by read errors when a block's bytes in its pack
// no longer match the CRC-32C recorded when they were written.
var errPackCRC = errors.New("bytes in the pack file do not match their checksum")

// packRef locates a block's bytes in a pack file, with their CRC-32C: a
// read checks it, so bytes that rot on disk are caught even when Get does
// not hash a block it verified moments ago.
type packRef struct {
	pack uint32
	off  int64
	n    uint32
	crc  uint32
}

func (r packRef) encode() []byte {
	b := make([]byte, packRefSize)
	binary.BigEndian.PutUint32(b[0:], r.pack)
	binary.BigEndian.PutUint64(b[4:], uint64(r.off))
	binary.BigEndian.PutUint32(b[12:], r.n)
	binary.BigEndian.PutUint32(b[16:], r.crc)
	return b
}

func decodePackRef(b []byte) (packRef, error) {
	if len(b) != packRefSize {
		return packRef{}, fmt.Errorf("pack reference of %d bytes, want %d", len(b), packRefSize)
	}
	return packRef{
		pack: binary.BigEndian.Uint32(b[0:]),
		off:  int64(binary.BigEndian.Uint64(b[4:])),
		n:    binary.BigEndian.Uint32(b[12:]),
		crc:  binary.BigEndian.Uint32(b[16:]),
	}, nil
}

// recordSize returns the block size a record stands for.
func recordSize(item *badger.Item) (int64, error) {
	if item.UserMeta() != metaPacked {
		return item.ValueSize(), nil
	}
	var ref packRef
	err := item.Value(func(v []byte) error {
		var err error
		ref, err = decodePackRef(v)
		return err
	})
	return int64(ref.n), err
}

// packs is the set of pack files of a store.
type packs struct {
	dir     string
	maxSize int64 // packMaxSize (tests lower it)

	// mu is held for reading while a block is read from a pack, and for
	// writing while GC deletes pack files.
	mu    sync.RWMutex
	files map[uint32]*os.File // opened for reading (and the current one for writing)

	wmu     sync.Mutex // appends
	cur     uint32     // the pack appended to
	curSize int64
	pending map[uint32]int // appends whose records are not committed yet, per pack
	// filePacks are the file packs (see filepack.go): never appended to,
	// written only at the offsets of their file's blocks.
	filePacks map[uint32]bool
	maxID     uint32 // the highest pack id of either kind
}

func packName(id uint32) string { return fmt.Sprintf("%08d.pack", id) }

// name returns the file name of pack id, of its kind.
func (p *packs) name(id uint32) string {
	p.wmu.Lock()
	file := p.filePacks[id]
	p.wmu.Unlock()
	if file {
		return filePackName(id)
	}
	return packName(id)
}

// openPacks opens the pack folder of a store, creating it if needed.
func openPacks(storeDir string) (*packs, error) {
	dir := filepath.Join(storeDir, packDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &packs{dir: dir, maxSize: packMaxSize, files: map[uint32]*os.File{}, pending: map[uint32]int{}, filePacks: map[uint32]bool{}}
	ids, fileIDs, err := p.list()
	if err != nil {
		return nil, err
	}
	p.filePacks = fileIDs
	// Appends go to the last ordinary pack, never to a file pack (its
	// bytes may be an exported file's too); after a file pack, a new one.
	p.cur = 1
	for _, id := range ids {
		p.maxID = max(p.maxID, id)
		if !fileIDs[id] {
			p.cur = id
		}
	}
	if p.maxID > 0 && fileIDs[p.maxID] {
		p.cur = p.maxID + 1
	}
	p.maxID = max(p.maxID, p.cur)
	created := len(ids) == 0 || p.cur > ids[len(ids)-1]
	f, err := os.OpenFile(filepath.Join(dir, packName(p.cur)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	p.files[p.cur] = f
	p.curSize = st.Size()
	if created {
		if err := atomicfile.SyncDir(dir); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return p, nil
}

// list returns the ids of the pack files of both kinds, in order, and
// which of them are file packs.
func (p *packs) list() ([]uint32, map[uint32]bool, error) {
	ents, err := os.ReadDir(p.dir)
	if err != nil {
		return nil, nil, err
	}
	var ids []uint32
	fileIDs := map[uint32]bool{}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".pack")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		name, file := strings.CutSuffix(name, filePackTag)
		id, err := strconv.ParseUint(name, 10, 32)
		if err != nil || id == 0 {
			continue
		}
		ids = append(ids, uint32(id))
		if file {
			fileIDs[uint32(id)] = true
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, fileIDs, nil
}

func (p *packs) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for id, f := range p.files {
		errs = append(errs, f.Close())
		delete(p.files, id)
	}
	return errors.Join(errs...)
}

// file returns the open pack id; the caller holds mu (either way).
func (p *packs) file(id uint32) (*os.File, error) {
	p.wmu.Lock()
	f := p.files[id]
	p.wmu.Unlock()
	if f != nil {
		return f, nil
	}
	f, err := os.Open(filepath.Join(p.dir, p.name(id)))
	if err != nil {
		return nil, err
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if old := p.files[id]; old != nil {
		_ = f.Close()
		return old, nil
	}
	p.files[id] = f
	return f, nil
}

// read returns the bytes ref points at; the caller holds mu for reading.
func (p *packs) read(ref packRef) ([]byte, error) { return p.readInto(ref, nil) }

// readInto is read into buf when they fit (else into a new slice).
func (p *packs) readInto(ref packRef, buf []byte) ([]byte, error) {
	f, err := p.file(ref.pack)
	if err != nil {
		return nil, fmt.Errorf("opening pack %d: %w", ref.pack, err)
	}
	b := buf[:0]
	if cap(b) >= int(ref.n) {
		b = b[:ref.n]
	} else {
		b = make([]byte, ref.n)
	}
	if _, err := f.ReadAt(b, ref.off); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading %d bytes at %d of pack %d: %w", ref.n, ref.off, ref.pack, err)
	}
	if crc32.Checksum(b, castagnoli) != ref.crc {
		return nil, fmt.Errorf("%d bytes at %d of pack %d: %w", ref.n, ref.off, ref.pack, errPackCRC)
	}
	return b, nil
}

// write appends data to the current pack (starting a new one past
// packMaxSize) without syncing it, and marks the append pending until
// done is called for its pack.
func (p *packs) write(data []byte) (packRef, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.curSize >= p.maxSize {
		if err := p.rotateLocked(); err != nil {
			return packRef{}, err
		}
	}
	f := p.files[p.cur]
	ref := packRef{pack: p.cur, off: p.curSize, n: uint32(len(data)), crc: crc32.Checksum(data, castagnoli)}
	if _, err := f.WriteAt(data, p.curSize); err != nil {
		// A part may have been written: go on after whatever is there.
		if st, serr := f.Stat(); serr == nil && st.Size() > p.curSize {
			p.curSize = st.Size()
		}
		return packRef{}, err
	}
	startWriteback(f, p.curSize, int64(len(data)))
	p.curSize += int64(len(data))
	p.pending[p.cur]++
	return ref, nil
}

// rotateLocked starts a new pack file; the caller holds wmu.
func (p *packs) rotateLocked() error {
	next := p.maxID + 1
	f, err := os.OpenFile(filepath.Join(p.dir, packName(next)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("starting pack %d: %w", next, err)
	}
	if err := atomicfile.SyncDir(p.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return fmt.Errorf("starting pack %d: %w", next, err)
	}
	p.files[next] = f
	p.cur, p.curSize, p.maxID = next, 0, next
	return nil
}

// sync makes the appends to the given packs durable.
func (p *packs) sync(ids map[uint32]bool) error {
	for id := range ids {
		f, err := p.file(id)
		if err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("syncing pack %d: %w", id, err)
		}
	}
	return nil
}

// done ends the pending appends counted in ids (their records are
// committed, or were given up).
func (p *packs) done(ids map[uint32]int) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	for id, n := range ids {
		if p.pending[id] -= n; p.pending[id] <= 0 {
			delete(p.pending, id)
		}
	}
}

// settled returns the packs that are neither the current one nor awaiting
// commits, with their sizes: no record will be added pointing into them.
func (p *packs) settled() (map[uint32]int64, error) {
	ids, fileIDs, err := p.list()
	if err != nil {
		return nil, err
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	out := map[uint32]int64{}
	for _, id := range ids {
		if id == p.cur || p.pending[id] > 0 {
			continue
		}
		name := packName(id)
		if fileIDs[id] {
			name = filePackName(id)
		}
		st, err := os.Stat(filepath.Join(p.dir, name))
		if err != nil {
			return nil, err
		}
		out[id] = st.Size()
	}
	return out, nil
}

// remove deletes pack files that no record refers to any more.
func (p *packs) remove(ids []uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, id := range ids {
		name := p.name(id)
		p.wmu.Lock()
		if f := p.files[id]; f != nil {
			_ = f.Close()
			delete(p.files, id)
		}
		delete(p.filePacks, id)
		p.wmu.Unlock()
		if err := os.Remove(filepath.Join(p.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(ids) > 0 {
		errs = append(errs, atomicfile.SyncDir(p.dir))
	}
	return errors.Join(errs...)
}
