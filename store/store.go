package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dustin/go-humanize"
	"github.com/hashicorp/golang-lru/v2/expirable"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
)

// MaxBlockSize is the largest block the store accepts (bitswap's own limit).
const MaxBlockSize = 2 << 20

const (
	// verifiedTTL is how long a block whose bytes were hash-checked is not
	// hashed again on Get (as long as its record is not rewritten).
	verifiedTTL = time.Minute
	// verifiedMax bounds the blocks remembered as checked.
	verifiedMax = 1 << 16
)

// Key prefixes in the badger database.
const (
	prefixBlock = "b/" // b/<CIDv1 bytes> → block bytes
	prefixPin   = "p/" // p/<CIDv1 bytes> → pin record (JSON)
	// n/ and m/announcements: saved announcements, see announcements.go.
)

// ErrCorrupt is wrapped by Get errors when a stored block no longer matches
// its CID.
var ErrCorrupt = errors.New("block corrupted on disk")

// ErrStoreFull is wrapped by Put errors when the quota would be exceeded.
var ErrStoreFull = errors.New("store full")

// ErrLocked is wrapped by Open errors when another process holds the store.
var ErrLocked = errors.New("store in use by another process")

// Options configure Open.
type Options struct {
	// Quota is the most block bytes the store may hold; 0 means no limit.
	Quota int64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Store is a badger-backed content store: blocks keyed by CID, pins, garbage
// collection, a size quota and an index of adapters. It implements boxo's
// blockstore.Blockstore and blockstore.GCLocker, so bitswap and a
// blockservice can use it directly. It is safe for concurrent use.
type Store struct {
	db    *badger.DB
	log   *slog.Logger
	dir   string
	quota int64
	dag   ipld.DAGService
	packs *packs
	// importDAG stores the blocks an import builds (their CIDs are hashes
	// of the bytes just computed) without hashing them again.
	importDAG ipld.DAGService

	mu   sync.Mutex // guards used
	used int64

	failures putFailures
	refs     refStats // reads of blocks imported by reference (filestore.go)

	// verified remembers, per block key, the badger version of the record
	// whose bytes were last hash-checked (on write or read), for
	// verifiedTTL: a Get of that same record within it does not hash the
	// bytes again. Any rewrite of the key makes a new version.
	verified *expirable.LRU[string, uint64]

	gcLock    sync.RWMutex // read: put→pin sequences; write: GC
	gcWaiting atomic.Int32
	closeOnce sync.Once
	closeErr  error
}

var (
	_ blockstore.Blockstore = (*Store)(nil)
	_ blockstore.GCLocker   = (*Store)(nil)
)

// Open opens (creating if needed) the store in dir. Writes are synced to disk
// before Put returns. Only one process may hold a store at a time: a second
// Open of the same directory fails with an error wrapping ErrLocked.
func Open(dir string, o Options) (*Store, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "store")
	if o.Quota < 0 {
		return nil, fmt.Errorf("store: quota %d is negative; use 0 for no limit", o.Quota)
	}
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		// Values in the value log (blocks of 1 MiB and more) are CRC-checked
		// on every read, so bit rot is caught even when Get skips hashing a
		// block it verified moments ago.
		WithVerifyValueChecksum(true).
		WithLogger(badgerLogger{log}).
		WithCompression(options.None). // blocks are weights: they do not compress
		WithMemTableSize(16 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(8 << 20).
		WithValueLogFileSize(128 << 20).
		WithNumCompactors(2)
	if dir == "" {
		return nil, errors.New("store: no folder given for the block store")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: creating the store folder %s: %w", dir, err)
	}
	removeEmptyMemtables(dir, log)
	db, err := badger.Open(bo)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("store: %s is already open in another orchmind node (%w); stop that node or give this one another data folder: %v", dir, ErrLocked, err)
		}
		return nil, fmt.Errorf("store: cannot open the block store in %s: %w; if the folder is damaged, move it aside (adapters can be fetched or imported again)", dir, err)
	}
	pk, err := openPacks(dir)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: opening the pack files in %s: %w", dir, err)
	}
	s := &Store{db: db, log: log, dir: dir, quota: o.Quota, packs: pk,
		verified: expirable.NewLRU[string, uint64](verifiedMax, nil, verifiedTTL)}
	if s.used, err = s.scanUsage(); err != nil {
		_ = pk.close()
		_ = db.Close()
		return nil, fmt.Errorf("store: reading the block store in %s: %w; if the folder is damaged, move it aside", dir, err)
	}
	s.dag = merkledag.NewDAGService(blockservice.New(s, offline.Exchange(s)))
	imp := importer{s}
	s.importDAG = merkledag.NewDAGService(blockservice.New(imp, offline.Exchange(imp)))
	log.Debug("store opened", "dir", dir, "used", s.used, "quota", o.Quota)
	return s, nil
}

// removeEmptyMemtables deletes memtable files (*.mem) of zero bytes. badger
// creates such a file and only then sizes it; a process killed in between
// leaves an empty one, which holds nothing but makes badger.Open fail
// ("while opening fid: N err: Create a new file").
func removeEmptyMemtables(dir string, log *slog.Logger) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".mem") {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Size() == 0 {
			p := filepath.Join(dir, e.Name())
			if err := os.Remove(p); err == nil {
				log.Warn("removed an empty memtable file left by a crash", "file", p)
			}
		}
	}
}

// Close flushes and closes the database and releases the directory lock. It
// is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if err := errors.Join(s.db.Close(), s.packs.close()); err != nil {
			s.closeErr = fmt.Errorf("store: closing %s: %w", s.dir, err)
		}
	})
	return s.closeErr
}

// DAGService returns an offline DAG service over the store.
func (s *Store) DAGService() ipld.DAGService { return s.dag }

// Used returns the bytes of block data stored.
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// Quota returns the configured quota in bytes (0: none).
func (s *Store) Quota() int64 { return s.quota }

func (s *Store) scanUsage() (int64, error) {
	var total int64
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte(prefixBlock)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n, err := recordSize(it.Item())
			if err != nil {
				return fmt.Errorf("block record %x: %w", it.Item().Key(), err)
			}
			total += n
		}
		return nil
	})
	return total, err
}

// normalize returns the CIDv1 of c (CIDv0 blocks are stored under their v1
// form) and checks that the store can hold it.
func normalize(c cid.Cid) (cid.Cid, error) {
	if !c.Defined() {
		return cid.Undef, errors.New("store: undefined CID")
	}
	dm, err := mh.Decode(c.Hash())
	if err != nil {
		return cid.Undef, fmt.Errorf("store: CID %s has a bad multihash: %w", c, err)
	}
	if dm.Code != mh.SHA2_256 {
		return cid.Undef, fmt.Errorf("store: CID %s uses hash %s; only sha2-256 blocks are stored", c, mh.Codes[dm.Code])
	}
	if c.Version() == 0 {
		return cid.NewCidV1(cid.DagProtobuf, c.Hash()), nil
	}
	return c, nil
}

func blockKey(c cid.Cid) []byte { return append([]byte(prefixBlock), c.Bytes()...) }

// verify checks that data hashes to c.
func verify(c cid.Cid, data []byte) error {
	sum, err := c.Prefix().Sum(data)
	if err != nil {
		return fmt.Errorf("hashing: %w", err)
	}
	if !bytes.Equal(sum.Hash(), c.Hash()) {
		return fmt.Errorf("content hashes to %s", sum)
	}
	return nil
}

// Has reports whether the block is stored.
func (s *Store) Has(ctx context.Context, c cid.Cid) (bool, error) {
	n, err := normalize(c)
	if err != nil {
		return false, err
	}
	err = s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(blockKey(n))
		return err
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("store: looking up %s: %w", c, err)
}

// Get returns the block after checking that its bytes still hash to c. A
// block that does not is deleted (so it can be fetched again), logged, and
// reported with an error wrapping ErrCorrupt; it is never served. A missing
// block gives ipld.ErrNotFound.
func (s *Store) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	n, err := normalize(c)
	if err != nil {
		return nil, err
	}
	var data []byte
	var version uint64
	var ref *fileRef // imported by reference (filestore.go)
	var refErr error
	key := blockKey(n)
	s.packs.mu.RLock()
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		version = item.Version()
		if item.UserMeta() == metaFileRef {
			return item.Value(func(v []byte) error {
				r, err := decodeFileRef(v)
				if err == nil {
					ref = &r
					data, refErr = r.read()
				}
				return err
			})
		}
		if item.UserMeta() != metaPacked {
			data, err = item.ValueCopy(nil)
			return err
		}
		var ref packRef
		if err := item.Value(func(v []byte) error { ref, err = decodePackRef(v); return err }); err != nil {
			return err
		}
		data, err = s.packs.read(ref)
		return err
	})
	s.packs.mu.RUnlock()
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ipld.ErrNotFound{Cid: c}
	}
	if ref != nil && err == nil {
		return s.getRef(c, data, refErr)
	}
	verr := err
	if err != nil && !errors.Is(err, errPackCRC) {
		return nil, fmt.Errorf("store: reading block %s: %w", c, err)
	}
	if verr == nil {
		if v, ok := s.verified.Get(string(key)); ok && v == version {
			return blocks.NewBlockWithCid(data, c)
		}
		verr = verify(c, data)
	}
	if verr != nil {
		s.log.Error("corrupted block removed; it will be fetched again when needed", "cid", c, "err", verr)
		if derr := s.DeleteBlock(ctx, c); derr != nil {
			s.log.Error("removing corrupted block", "cid", c, "err", derr)
		}
		return nil, fmt.Errorf("store: block %s: %w (%v); it was removed and not served: fetch the adapter again", c, ErrCorrupt, verr)
	}
	s.verified.Add(string(key), version)
	return blocks.NewBlockWithCid(data, c)
}

// GetSize returns the size of a stored block, or ipld.ErrNotFound.
func (s *Store) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	n, err := normalize(c)
	if err != nil {
		return -1, err
	}
	var size int64
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(blockKey(n))
		if err != nil {
			return err
		}
		if item.UserMeta() == metaFileRef {
			return item.Value(func(v []byte) error {
				r, err := decodeFileRef(v)
				size = int64(r.n)
				return err
			})
		}
		size, err = recordSize(item)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return -1, ipld.ErrNotFound{Cid: c}
	}
	if err != nil {
		return -1, fmt.Errorf("store: reading the size of %s: %w", c, err)
	}
	return int(size), nil
}

// Put stores a block after checking that its bytes hash to its CID. It is
// durable (synced) when Put returns. Storing a block that is already present
// does nothing. If the quota would be exceeded it fails with an error
// wrapping ErrStoreFull.
func (s *Store) Put(ctx context.Context, b blocks.Block) error {
	return s.PutMany(ctx, []blocks.Block{b})
}

// PutMany stores blocks like Put, in as few synced transactions as fit.
func (s *Store) PutMany(ctx context.Context, bs []blocks.Block) error {
	return s.putMany(ctx, bs, true)
}

// PutManyVerified is PutMany for blocks whose bytes the caller has just
// checked against their CIDs (a fetch hashes each block as it arrives): it
// skips hashing them a second time and is otherwise PutMany. Use PutMany
// for anything not verified by the caller.
func (s *Store) PutManyVerified(ctx context.Context, bs []blocks.Block) error {
	return s.putMany(ctx, bs, false)
}

// entry is a block about to be written.
type entry struct {
	key  []byte
	data []byte
	ref  *packRef // where its bytes went, once appended to a pack
	// reserved: its quota was reserved ahead (BlockWriter.Add); commit
	// neither reserves it again nor releases it when a transaction fails.
	reserved bool
}

// checkBlock returns b's CID as the store keys it and b's bytes, or why the
// store cannot take it.
func checkBlock(b blocks.Block) (cid.Cid, []byte, error) {
	c := b.Cid()
	n, err := normalize(c)
	if err != nil {
		return cid.Undef, nil, err
	}
	data := b.RawData()
	if len(data) > MaxBlockSize {
		return cid.Undef, nil, fmt.Errorf("store: block %s is %d bytes, over the %d-byte block limit", c, len(data), MaxBlockSize)
	}
	return n, data, nil
}

func (s *Store) putMany(ctx context.Context, bs []blocks.Block, check bool) error {
	var todo []entry
	for _, b := range bs {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := b.Cid()
		n, data, err := checkBlock(b)
		if err != nil {
			return err
		}
		if check {
			if err := verify(c, data); err != nil {
				return fmt.Errorf("store: refusing block %s: its bytes do not match its CID (%v)", c, err)
			}
		}
		todo = append(todo, entry{key: blockKey(n), data: data})
	}
	// Appends to packs stay pending (GC leaves their packs alone) until
	// this call ends: a record written on a retry may refer to them.
	appended := map[uint32]int{}
	defer s.packs.done(appended)
	return s.commit(ctx, todo, appended)
}

// commit writes the records of todo in as few synced transactions as
// fit, appending the bytes of large blocks to a pack first where that was
// not done yet (counted in appended) and syncing the packs before each
// transaction commits. Blocks already present are skipped.
func (s *Store) commit(ctx context.Context, todo []entry, appended map[uint32]int) error {
	for len(todo) > 0 {
		// One transaction: skip blocks already present, reserve quota for
		// the new ones, append the large ones to a pack file, sync it, and
		// commit the records (synced).
		done := 0
		var written []entry
		err := func() error {
			txn := s.db.NewTransaction(true)
			defer txn.Discard()
			var reserved int64
			for done < len(todo) {
				e := &todo[done]
				if _, err := txn.Get(e.key); err == nil {
					if e.reserved {
						s.release(int64(len(e.data)))
						e.reserved = false
					}
					done++
					continue
				} else if !errors.Is(err, badger.ErrKeyNotFound) {
					s.release(reserved)
					return err
				}
				if !e.reserved {
					if err := s.reserve(int64(len(e.data))); err != nil {
						s.release(reserved)
						return err
					}
				}
				// own is what this transaction reserved for e: released
				// again if it fails.
				own := int64(len(e.data))
				if e.reserved {
					own = 0
				}
				ent := badger.NewEntry(e.key, e.data)
				if e.ref != nil || len(e.data) >= packThreshold { // a file pack takes small leaves too
					if e.ref == nil {
						ref, err := s.packs.write(e.data)
						if err != nil {
							s.release(reserved + own)
							return err
						}
						e.ref = &ref
						appended[ref.pack]++
					}
					ent = badger.NewEntry(e.key, e.ref.encode()).WithMeta(metaPacked)
				}
				err := txn.SetEntry(ent)
				if errors.Is(err, badger.ErrTxnTooBig) && done > 0 {
					s.release(own)
					break // commit what we have; the rest goes in the next transaction
				}
				if err != nil {
					s.release(reserved + own)
					return err
				}
				reserved += own
				written = append(written, *e)
				done++
			}
			if err := s.packs.sync(packIDs(written)); err != nil {
				s.release(reserved)
				return err
			}
			if err := txn.Commit(); err != nil {
				s.release(reserved)
				return err
			}
			return nil
		}()
		if errors.Is(err, badger.ErrConflict) {
			continue // someone wrote one of these keys meanwhile: redo this batch
		}
		if err != nil {
			if !errors.Is(err, ErrStoreFull) {
				err = fmt.Errorf("store: writing blocks: %w", err)
			}
			if ctx.Err() == nil {
				s.failures.record(err) // out of quota or the disk refused the write
			}
			return err
		}
		for i := range todo[:done] {
			todo[i].reserved = false // committed: the quota is used for good
		}
		s.markVerified(written)
		todo = todo[done:]
	}
	return nil
}

// packIDs returns the packs holding the bytes of es.
func packIDs(es []entry) map[uint32]bool {
	ids := map[uint32]bool{}
	for _, e := range es {
		if e.ref != nil {
			ids[e.ref.pack] = true
		}
	}
	return ids
}

// recentlyVerified reports whether the stored block n (normalized) is one
// whose bytes Get would not hash again (checked within verifiedTTL, record
// unchanged), and its size.
func (s *Store) recentlyVerified(n cid.Cid) (int, bool) {
	key := blockKey(n)
	var size int64
	ok := false
	_ = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		if v, hit := s.verified.Get(string(key)); !hit || v != item.Version() {
			return nil
		}
		size, err = recordSize(item)
		ok = err == nil
		return nil
	})
	return int(size), ok
}

// markVerified records the versions of the records just written from
// bytes that were checked against their CIDs (by putMany or its caller).
func (s *Store) markVerified(es []entry) {
	_ = s.db.View(func(txn *badger.Txn) error {
		for _, e := range es {
			if item, err := txn.Get(e.key); err == nil {
				s.verified.Add(string(e.key), item.Version())
			}
		}
		return nil
	})
}

func (s *Store) reserve(n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quota > 0 && s.used+n > s.quota {
		return fmt.Errorf("%w: %s of %s used; unpin adapters or raise --quota", ErrStoreFull,
			humanize.IBytes(uint64(s.used)), humanize.IBytes(uint64(s.quota)))
	}
	s.used += n
	return nil
}

func (s *Store) release(n int64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	s.used -= n
	s.mu.Unlock()
}

// DeleteBlock removes a block; removing a missing block is not an error.
// It does not check pins: use GC to remove only unpinned blocks.
func (s *Store) DeleteBlock(ctx context.Context, c cid.Cid) error {
	n, err := normalize(c)
	if err != nil {
		return err
	}
	var freed int64
	err = s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(blockKey(n))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if freed, err = recordSize(item); err != nil {
			return err
		}
		return txn.Delete(blockKey(n))
	})
	if err != nil {
		return fmt.Errorf("store: deleting block %s: %w", c, err)
	}
	s.verified.Remove(string(blockKey(n)))
	s.release(freed)
	return nil
}

// importer is the store as the blockstore of an import: the importer
// made each block's CID by hashing its bytes, so Put does not hash them
// again. Everything else is the Store's.
type importer struct{ *Store }

func (i importer) Put(ctx context.Context, b blocks.Block) error {
	return i.putMany(ctx, []blocks.Block{b}, false)
}

func (i importer) PutMany(ctx context.Context, bs []blocks.Block) error {
	return i.putMany(ctx, bs, false)
}

// AllKeysChan lists the CIDs of all stored blocks (CIDv1 form). The channel
// closes when the listing ends or ctx is done.
func (s *Store) AllKeysChan(ctx context.Context) (<-chan cid.Cid, error) {
	out := make(chan cid.Cid, 64)
	go func() {
		defer close(out)
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte(prefixBlock)})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				c, err := cid.Cast(it.Item().KeyCopy(nil)[len(prefixBlock):])
				if err != nil {
					s.log.Warn("skipping a block key that is not a CID", "err", err)
					continue
				}
				select {
				case out <- c:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			s.log.Error("listing blocks", "err", err)
		}
	}()
	return out, nil
}

// badgerLogger routes badger's log lines to slog (info and debug at debug
// level: badger is chatty).
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Debugf(f string, a ...any) {
	b.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...)))
}
