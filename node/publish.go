package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"orchmind/adapters"
	"orchmind/protocol"
	"orchmind/swarm"
)

// validate is the swarm's announcement check: decode, verify the signature.
// The decoded announcement travels with the swarm's catalogue entry
// (Decoded), which is where Search finds it: the catalogue, bounded and
// hardened against floods, is the node's one memory of announcements.
func validate(_ context.Context, _ peer.ID, data []byte) (swarm.Announcement, error) {
	s, err := protocol.Open(data)
	if err != nil {
		return swarm.Announcement{}, err
	}
	return swarm.Announcement{Root: s.Root, Base: s.Manifest.BaseFingerprint, Author: s.Author, Created: s.Created, Decoded: s}, nil
}

// announced returns the verified announcements of root this node knows
// (public and room ones, every author).
func (n *Node) announced(root cid.Cid) []*protocol.Signed {
	var out []*protocol.Signed
	for _, r := range n.sw.CatalogueOf(root) {
		if s, ok := r.Decoded.(*protocol.Signed); ok {
			out = append(out, s)
		}
	}
	return out
}

// Publish imports the adapter folder dir into the store, pins it, provides
// it in the DHT and announces it; it returns the root CID.
func (n *Node) Publish(ctx context.Context, dir string, man *adapters.Manifest) (string, error) {
	root, signed, err := n.prepare(ctx, dir, man)
	if err != nil {
		return "", err
	}
	// Searchable here at once (gossip's own delivery comes a moment later).
	if err := n.sw.Remember(ctx, signed); err != nil {
		return "", err
	}
	if err := n.sw.Announce(ctx, signed); err != nil {
		return "", fmt.Errorf("publish: stored and pinned as %s, but the announcement failed: %w", root, err)
	}
	return root.String(), nil
}

// prepare imports, pins and provides dir and returns its root and signed
// announcement.
func (n *Node) prepare(ctx context.Context, dir string, man *adapters.Manifest) (cid.Cid, []byte, error) {
	if man == nil {
		m, err := adapters.CheckFolder(dir, adapters.SafetensorsCodec{})
		if err != nil {
			return cid.Undef, nil, err
		}
		man = m
	}
	if man == nil {
		return cid.Undef, nil, fmt.Errorf("publish %s: the folder has no orchmind.json manifest: train the adapter with orchmind train, or write one", dir)
	}
	if man.BaseFingerprint == "" {
		return cid.Undef, nil, fmt.Errorf("publish %s: the manifest does not say which base model the adapter is for (base_fingerprint)", dir)
	}
	root, err := n.store.ImportFolder(ctx, dir)
	if err != nil {
		return cid.Undef, nil, err
	}
	size := adapters.FolderSize(dir)
	if err := n.store.Pin(ctx, root); err != nil {
		return cid.Undef, nil, err
	}
	n.provide(root)
	a := protocol.Announcement{Root: root, Size: uint64(size), Created: time.Now(), Manifest: man.Announce()}
	signed, err := protocol.Sign(a, n.key)
	if err != nil {
		return cid.Undef, nil, err
	}
	return root, signed, nil
}

// provide announces root in the DHT; while the node has no DHT peers yet
// it retries in the background (for up to ten minutes), so an adapter
// published by a node that has just started is still findable.
func (n *Node) provide(root cid.Cid) {
	n.bg.Go(func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-n.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		deadline := time.Now().Add(10 * time.Minute)
		for {
			tctx, tcancel := context.WithTimeout(ctx, time.Minute)
			err := n.sw.Provide(tctx, root)
			tcancel()
			if err == nil || !errors.Is(err, swarm.ErrNoPeers) || time.Now().After(deadline) || n.closed() {
				if err != nil && !errors.Is(err, swarm.ErrNoPeers) && !n.closed() {
					n.log.Warn("provide failed; the reprovider will try again", "cid", root, "err", err)
				}
				return
			}
			select {
			case <-time.After(time.Second):
			case <-n.done:
				return
			}
		}
	})
}
