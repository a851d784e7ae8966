package store

import (
	"context"
	"errors"

	"github.com/dgraph-io/badger/v4"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// GetToServe returns a block to send to a peer that will hash it itself
// (swarm's BlocksProtocol): a block in a pack is read with its CRC-32C
// checked — which catches rot on disk — but not hashed again; any other
// is read with Get. A block whose CRC does not match goes through Get,
// which removes it.
func (s *Store) GetToServe(ctx context.Context, c cid.Cid) (blocks.Block, error) {
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
		data, err = s.packs.read(ref)
		return err
	})
	s.packs.mu.RUnlock()
	if err != nil {
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, ipld.ErrNotFound{Cid: c}
		}
		return s.Get(ctx, c)
	}
	return blocks.NewBlockWithCid(data, c)
}
