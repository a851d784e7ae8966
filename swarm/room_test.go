package swarm

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestRoomReplayAndScore: on a room topic, the same sealed bytes sent again
// by anyone are not delivered a second time (replay check), and a peer
// that sends what does not open with the room key loses gossipsub score
// until it is graylisted (the topic has score parameters).
func TestRoomReplayAndScore(t *testing.T) {
	const topic = "/orchmind/room/test/1"
	// A stand-in for the room key: sealed messages start with "sealed:".
	open := func(b []byte) ([]byte, error) {
		if p, ok := bytes.CutPrefix(b, []byte("sealed:")); ok {
			return p, nil
		}
		return nil, errors.New("not for this room")
	}
	nodes := line(t, 2, nil)
	var mu sync.Mutex
	var got []string
	rooms := make([]*Room, 2)
	for i, n := range nodes {
		r, err := n.JoinRoom(t.Context(), topic, open, func(_ peer.ID, plain []byte) {
			if i == 1 {
				mu.Lock()
				got = append(got, string(plain))
				mu.Unlock()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		rooms[i] = r
	}
	received := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }
	eventually(t, 5*time.Second, "room peers", func() bool { return len(rooms[0].Peers()) > 0 })
	msg := []byte("sealed:hello room")
	if err := rooms[0].Publish(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the room message", func() bool { return len(received()) == 1 })

	// An outsider (a raw gossipsub peer, no validators) replays the sealed
	// bytes it saw, then sends junk.
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ps, err := pubsub.NewGossipSub(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	spam, err := ps.Join(topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Connect(t.Context(), addrInfo(nodes[1])); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "outsider in the room topic", func() bool { return slices.Contains(spam.ListPeers(), nodes[1].ID()) })
	for range 3 {
		if err := spam.Publish(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 {
		if err := spam.Publish(t.Context(), []byte("junk that does not open")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "outsider graylisted", func() bool {
		return nodes[1].PeerScores()[h.ID()] < GraylistThreshold
	})
	if r := received(); len(r) != 1 {
		t.Fatalf("node 1 got %d room messages %q, want the first one only (replays are dropped)", len(r), r)
	}
	// Members are unharmed, and a new message still gets through.
	if s := nodes[1].PeerScores()[nodes[0].ID()]; s < 0 {
		t.Errorf("member node 0 has score %.1f at node 1", s)
	}
	if err := rooms[0].Publish(t.Context(), []byte("sealed:second")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the second room message", func() bool { return len(received()) == 2 })
}
