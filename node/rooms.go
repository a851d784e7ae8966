package node

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"orchmind/adapters"
	"orchmind/protocol/room"
	"orchmind/swarm"
)

type joinedRoom struct {
	r  *room.Room
	sw *swarm.Room
}

// JoinRoom joins the private room of code: its announcements (sealed with
// the room key) become searchable here, and PublishRoom can announce into it.
func (n *Node) JoinRoom(ctx context.Context, code string) error {
	r, err := room.Join(code)
	if err != nil {
		return err
	}
	n.mu.Lock()
	_, dup := n.rooms[r.Topic()]
	n.mu.Unlock()
	if dup {
		return nil
	}
	sr, err := n.sw.JoinRoom(ctx, r.Topic(), r.Open, func(from peer.ID, plain []byte) {
		if err := n.sw.RememberRoom(context.Background(), from, plain); err != nil {
			n.log.Warn("not keeping a room member's announcement", "err", err)
		}
	})
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.rooms[r.Topic()] = &joinedRoom{r: r, sw: sr}
	n.mu.Unlock()
	return nil
}

// PublishRoom is Publish into a private room: the signed announcement is
// sealed with the room key and sent on the room's topic only, so peers
// outside the room see neither its name nor its CID. The blocks are still
// provided in the public DHT under their CID.
func (n *Node) PublishRoom(ctx context.Context, dir string, man *adapters.Manifest, code string) (string, error) {
	r, err := room.Join(code)
	if err != nil {
		return "", err
	}
	n.mu.Lock()
	jr := n.rooms[r.Topic()]
	n.mu.Unlock()
	if jr == nil {
		if err := n.JoinRoom(ctx, code); err != nil {
			return "", err
		}
		n.mu.Lock()
		jr = n.rooms[r.Topic()]
		n.mu.Unlock()
	}
	root, signed, err := n.prepare(ctx, dir, man)
	if err != nil {
		return "", err
	}
	// Searchable here, never served to peers outside the room.
	if err := n.sw.RememberRoom(ctx, n.sw.ID(), signed); err != nil {
		return "", err
	}
	sealed, err := jr.r.Seal(signed)
	if err != nil {
		return "", err
	}
	if err := jr.sw.Publish(ctx, sealed); err != nil {
		return "", fmt.Errorf("publish: stored as %s, but sending to the room failed: %w", root, err)
	}
	return root.String(), nil
}
