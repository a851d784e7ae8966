package swarm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	wire "orchmind/protocol"
)

// Room is a joined private-room topic: its messages are sealed bytes that
// only members can open (see protocol/room).
type Room struct {
	s     *Swarm
	t     *pubsub.Topic
	sub   *pubsub.Subscription
	topic string
}

// JoinRoom joins the gossipsub topic of a private room. open checks a
// sealed message with the room key: messages that do not open are rejected
// and cost their sender peer score (the topic is scored like the
// announcement topics), so only members' messages travel; the same sealed
// bytes arriving again within SeenTTL are dropped as a replay.
// onMessage receives every opened message from other peers, one at a time.
func (s *Swarm) JoinRoom(ctx context.Context, topic string, open func([]byte) ([]byte, error), onMessage func(from peer.ID, plain []byte)) (*Room, error) {
	if !strings.HasPrefix(topic, "/orchmind/room/") {
		return nil, fmt.Errorf("swarm: %q is not a room topic", topic)
	}
	g := s.gossip
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.topics[topic]; ok {
		return nil, errors.New("swarm: this room is already joined")
	}
	self := s.host.ID()
	validate := func(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if len(m.Data) > wire.MaxAnnouncementSize+64 {
			return pubsub.ValidationReject
		}
		// Replay check: the same sealed bytes again within SeenTTL — a
		// member's message resent by anyone, under any pubsub envelope —
		// are neither delivered nor forwarded a second time.
		key := sha256.Sum256(append([]byte(topic+"\x00"), m.Data...))
		local := from == self && m.GetFrom() == self
		if !local && g.seen.Contains(key) {
			return pubsub.ValidationIgnore
		}
		if _, err := open(m.Data); err != nil {
			return pubsub.ValidationReject
		}
		g.seen.Add(key, struct{}{})
		return pubsub.ValidationAccept
	}
	if err := g.ps.RegisterTopicValidator(topic, validate, pubsub.WithValidatorTimeout(5*time.Second)); err != nil {
		return nil, fmt.Errorf("swarm: room validator: %w", err)
	}
	t, err := g.ps.Join(topic)
	if err != nil {
		_ = g.ps.UnregisterTopicValidator(topic)
		return nil, fmt.Errorf("swarm: joining the room: %w", err)
	}
	// Scored like the announcement topics: a peer that sends what does not
	// open with the room key loses score (squared) and is graylisted.
	if err := t.SetScoreParams(topicScoreParams()); err != nil {
		_ = t.Close()
		_ = g.ps.UnregisterTopicValidator(topic)
		return nil, fmt.Errorf("swarm: scoring the room topic: %w", err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		return nil, fmt.Errorf("swarm: subscribing to the room: %w", err)
	}
	g.topics[topic] = t
	s.AddRendezvous(RoomNamespace(topic))
	r := &Room{s: s, t: t, sub: sub, topic: topic}
	s.spawn(func() {
		for {
			m, err := sub.Next(s.ctx)
			if err != nil {
				return
			}
			if m.ReceivedFrom == s.host.ID() {
				continue
			}
			if plain, err := open(m.Data); err == nil {
				onMessage(m.ReceivedFrom, plain)
			}
		}
	})
	return r, nil
}

// Publish sends a sealed message to the room, waiting up to two seconds
// for a member to be reachable first.
func (r *Room) Publish(ctx context.Context, sealed []byte) error {
	return r.s.gossip.publish(ctx, r.t, sealed, true)
}

// Peers lists the room members this node sees.
func (r *Room) Peers() []peer.ID { return r.t.ListPeers() }
