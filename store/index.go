package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrNoAdapter is wrapped by GetAdapter errors for an unknown root.
var ErrNoAdapter = errors.New("adapter not in the index")

// Adapter is an entry of the adapter index.
type Adapter struct {
	// Root is the CID of the adapter's UnixFS directory.
	Root cid.Cid
	// Name is the adapter's name.
	Name string
	// BaseFingerprint identifies the base model it was trained on.
	BaseFingerprint string
	// Tags are free-form labels.
	Tags []string
	// Author is the peer that published it.
	Author peer.ID
	// Created is when the author made it.
	Created time.Time
	// Size is the total size of its files in bytes.
	Size uint64
	// Manifest holds the manifest digest bytes (the signed announcement as
	// received), kept so the entry can be re-verified and re-served.
	Manifest []byte
}

type adapterJSON struct {
	Root            string   `json:"root"`
	Name            string   `json:"name"`
	BaseFingerprint string   `json:"base_fingerprint"`
	Tags            []string `json:"tags,omitempty"`
	Author          string   `json:"author,omitempty"`
	CreatedUnixNano int64    `json:"created"`
	Size            uint64   `json:"size"`
	Manifest        []byte   `json:"manifest,omitempty"`
}

// Query selects adapters from the index. Empty fields match everything;
// set fields must all match (Tag: one of the adapter's tags). Results are
// newest first.
type Query struct {
	BaseFingerprint string
	Name            string
	Tag             string
	Author          peer.ID
	// Limit caps the results; 0 means no limit.
	Limit int
}

// Secondary index kinds: i/<kind>/<value>\x00<inverted created><CID> → "".
const (
	idxAll    = "c"
	idxBase   = "b"
	idxName   = "n"
	idxTag    = "t"
	idxAuthor = "u"
)

const maxIndexedString = 1024

func indexPrefix(kind, value string) []byte {
	k := []byte(prefixIndex + kind + "/")
	if kind != idxAll {
		k = append(k, value...)
		k = append(k, 0)
	}
	return k
}

func indexKey(kind, value string, created time.Time, root cid.Cid) []byte {
	k := indexPrefix(kind, value)
	k = binary.BigEndian.AppendUint64(k, math.MaxUint64-uint64(created.UnixNano()))
	return append(k, root.Bytes()...)
}

func (a *Adapter) indexKeys() [][]byte {
	keys := [][]byte{
		indexKey(idxAll, "", a.Created, a.Root),
		indexKey(idxBase, a.BaseFingerprint, a.Created, a.Root),
		indexKey(idxName, a.Name, a.Created, a.Root),
	}
	if a.Author != "" {
		keys = append(keys, indexKey(idxAuthor, a.Author.String(), a.Created, a.Root))
	}
	for _, t := range a.Tags {
		keys = append(keys, indexKey(idxTag, t, a.Created, a.Root))
	}
	return keys
}

func checkIndexed(what, v string) error {
	if len(v) > maxIndexedString {
		return fmt.Errorf("store: adapter %s of %d bytes is too long (limit %d)", what, len(v), maxIndexedString)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("store: adapter %s contains a NUL byte", what)
	}
	return nil
}

func adapterKey(root cid.Cid) []byte { return append([]byte(prefixAdapter), root.Bytes()...) }

// PutAdapter adds or replaces the index entry for a.Root.
func (s *Store) PutAdapter(ctx context.Context, a Adapter) error {
	root, err := normalize(a.Root)
	if err != nil {
		return err
	}
	a.Root = root
	if a.Name == "" || a.BaseFingerprint == "" {
		return errors.New("store: an adapter index entry needs a name and a base fingerprint")
	}
	if a.Created.UnixNano() <= 0 {
		return fmt.Errorf("store: adapter %q has no creation time", a.Name)
	}
	for _, f := range []struct{ what, v string }{{"name", a.Name}, {"base fingerprint", a.BaseFingerprint}} {
		if err := checkIndexed(f.what, f.v); err != nil {
			return err
		}
	}
	for _, t := range a.Tags {
		if err := checkIndexed("tag", t); err != nil {
			return err
		}
	}
	val, err := json.Marshal(adapterJSON{
		Root: root.String(), Name: a.Name, BaseFingerprint: a.BaseFingerprint, Tags: a.Tags,
		Author: authorString(a.Author), CreatedUnixNano: a.Created.UnixNano(), Size: a.Size, Manifest: a.Manifest,
	})
	if err != nil {
		return fmt.Errorf("store: encoding adapter %q: %w", a.Name, err)
	}
	err = s.update(func(txn *badger.Txn) error {
		if err := deleteAdapterTxn(txn, root); err != nil {
			return err
		}
		if err := txn.Set(adapterKey(root), val); err != nil {
			return err
		}
		for _, k := range a.indexKeys() {
			if err := txn.Set(k, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: indexing adapter %q (%s): %w", a.Name, root, err)
	}
	return nil
}

func authorString(p peer.ID) string {
	if p == "" {
		return ""
	}
	return p.String()
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

func loadAdapter(txn *badger.Txn, root cid.Cid) (Adapter, error) {
	item, err := txn.Get(adapterKey(root))
	if err != nil {
		return Adapter{}, err
	}
	var j adapterJSON
	if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &j) }); err != nil {
		return Adapter{}, fmt.Errorf("decoding the index entry of %s: %w", root, err)
	}
	c, err := cid.Decode(j.Root)
	if err != nil {
		return Adapter{}, fmt.Errorf("decoding the index entry of %s: %w", root, err)
	}
	a := Adapter{
		Root: c, Name: j.Name, BaseFingerprint: j.BaseFingerprint, Tags: j.Tags,
		Created: time.Unix(0, j.CreatedUnixNano), Size: j.Size, Manifest: j.Manifest,
	}
	if j.Author != "" {
		if a.Author, err = peer.Decode(j.Author); err != nil {
			return Adapter{}, fmt.Errorf("decoding the author of %s: %w", root, err)
		}
	}
	return a, nil
}

func deleteAdapterTxn(txn *badger.Txn, root cid.Cid) error {
	old, err := loadAdapter(txn, root)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range old.indexKeys() {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return txn.Delete(adapterKey(root))
}

// GetAdapter returns the index entry of root, or an error wrapping
// ErrNoAdapter.
func (s *Store) GetAdapter(ctx context.Context, root cid.Cid) (Adapter, error) {
	n, err := normalize(root)
	if err != nil {
		return Adapter{}, err
	}
	var a Adapter
	err = s.db.View(func(txn *badger.Txn) error {
		a, err = loadAdapter(txn, n)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return Adapter{}, fmt.Errorf("store: %s: %w", root, ErrNoAdapter)
	}
	if err != nil {
		return Adapter{}, fmt.Errorf("store: %w", err)
	}
	return a, nil
}

// DeleteAdapter removes the index entry of root (not its blocks or pin).
// Removing an absent entry is not an error.
func (s *Store) DeleteAdapter(ctx context.Context, root cid.Cid) error {
	n, err := normalize(root)
	if err != nil {
		return err
	}
	if err := s.update(func(txn *badger.Txn) error { return deleteAdapterTxn(txn, n) }); err != nil {
		return fmt.Errorf("store: removing the index entry of %s: %w", root, err)
	}
	return nil
}

// FindAdapters returns the index entries matching q, newest first.
func (s *Store) FindAdapters(ctx context.Context, q Query) ([]Adapter, error) {
	kind, value := idxAll, ""
	switch {
	case q.Name != "":
		kind, value = idxName, q.Name
	case q.Author != "":
		kind, value = idxAuthor, q.Author.String()
	case q.BaseFingerprint != "":
		kind, value = idxBase, q.BaseFingerprint
	case q.Tag != "":
		kind, value = idxTag, q.Tag
	}
	prefix := indexPrefix(kind, value)
	var out []Adapter
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := it.Item().Key()
			if len(k) < len(prefix)+8 {
				continue
			}
			root, err := cid.Cast(bytes.Clone(k[len(prefix)+8:]))
			if err != nil {
				return fmt.Errorf("bad index key: %w", err)
			}
			a, err := loadAdapter(txn, root)
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if !q.matches(&a) {
				continue
			}
			out = append(out, a)
			if q.Limit > 0 && len(out) == q.Limit {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: querying adapters: %w", err)
	}
	return out, nil
}

func (q *Query) matches(a *Adapter) bool {
	if q.Name != "" && a.Name != q.Name {
		return false
	}
	if q.BaseFingerprint != "" && a.BaseFingerprint != q.BaseFingerprint {
		return false
	}
	if q.Author != "" && a.Author != q.Author {
		return false
	}
	if q.Tag != "" {
		found := false
		for _, t := range a.Tags {
			if t == q.Tag {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
