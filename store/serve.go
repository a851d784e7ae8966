package store

import (
	"context"
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// ReadToServe returns the bytes of a block to send to a peer that will
// hash them itself (swarm's BlocksProtocol), in buf when they fit: a block
// in a pack is read with its CRC-32C checked — which catches rot on disk —
// but not hashed again; any other is read with Get. A block whose CRC does
// not match goes through Get, which removes it and reports ErrCorrupt. A
// missing block gives ipld.ErrNotFound.
func (s *Store) ReadToServe(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error) {
	n, err := normalize(c)
	if err != nil {
		return nil, err
	}
	var data []byte
	s.packs.mu.RLock()
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(blockKey(n))
		if err != nil {
			return err
		}
		if item.UserMeta() != metaPacked {
			return errNotPacked
		}
		var ref packRef
		if err := item.Value(func(v []byte) error { ref, err = decodePackRef(v); return err }); err != nil {
			return err
		}
		data, err = s.packs.readInto(ref, buf)
		return err
	})
	s.packs.mu.RUnlock()
	if err != nil {
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, ipld.ErrNotFound{Cid: c}
		}
		b, err := s.Get(ctx, c)
		if err != nil {
			return nil, err
		}
		return b.RawData(), nil
	}
	return data, nil
}
