package swarm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	wire "orchmind/protocol"
)

// Bases over the swarm: a node announces the base model files it holds
// (signed base announcements, see protocol.BaseAnnouncement) on
// BasesTopic, and answers BasesProtocol requests with its own base
// announcements, so a peer that joins later learns them too. A base file
// is an ordinary UnixFS DAG: it is fetched with Fetch, from all the peers
// that hold it at once.

// BasesTopic carries base announcements (never adapter ones: the node's
// BaseValidator opens only base announcements).
const BasesTopic = "/orchmind/bases/1"

// BasesProtocol is the stream protocol with which a node asks a peer for
// the base announcements it holds itself. Request: one frame holding a
// fingerprint ("" for all). Answer: one frame per signed announcement,
// then an empty frame. A frame is a uvarint length and its bytes.
const BasesProtocol protocol.ID = "/orchmind/bases/1.0.0"

// MaxBasesPerPeer bounds the base announcements one peer answers or is
// remembered for.
const MaxBasesPerPeer = 64

const basesTimeout = 10 * time.Second

// BaseInfo is a verified base announcement.
type BaseInfo struct {
	// Root is the CID of the base file's UnixFS DAG.
	Root cid.Cid
	// Fingerprint is the base's fingerprint.
	Fingerprint string
	// Author is the peer that signed it (and holds the file).
	Author peer.ID
	// Created is when it was signed.
	Created time.Time
	// Decoded is what the BaseValidator decoded (the node's parsed
	// announcement).
	Decoded any
	// Data is the signed announcement as its author encoded it.
	Data []byte
}

// BaseValidator opens (decodes and verifies) a signed base announcement.
type BaseValidator func(data []byte) (BaseInfo, error)

type basesState struct {
	v     BaseValidator
	topic *pubsub.Topic
	mu    sync.Mutex
	own   map[string][]byte               // root key → signed, this node's own
	known map[peer.ID]map[string]BaseInfo // author → root key → info
}

// EnableBases starts the exchange of base announcements: the BasesTopic
// subscription (validated with v), the BasesProtocol handler, and asking
// each peer that is identified for its bases. Call it once, after New.
func (s *Swarm) EnableBases(v BaseValidator) error {
	if v == nil {
		return errors.New("swarm: EnableBases needs a validator")
	}
	b := &basesState{v: v, own: map[string][]byte{}, known: map[peer.ID]map[string]BaseInfo{}}
	s.mu.Lock()
	if s.bases != nil {
		s.mu.Unlock()
		return errors.New("swarm: bases already enabled")
	}
	s.bases = b
	s.mu.Unlock()
	self := s.host.ID()
	if err := s.ps.RegisterTopicValidator(BasesTopic, func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		if len(msg.Data) > wire.MaxAnnouncementSize {
			return pubsub.ValidationReject
		}
		info, err := v(msg.Data)
		if err != nil {
			s.log.Info("rejected a base announcement that does not verify", "from", from.String(), "err", err)
			return pubsub.ValidationReject
		}
		if info.Author != msg.GetFrom() {
			return pubsub.ValidationReject
		}
		if info.Created.After(time.Now().Add(MaxClockSkew)) {
			return pubsub.ValidationReject
		}
		if info.Author != self {
			if why := s.gossip.allow(info.Author, from, BasesTopic); why != "" {
				return pubsub.ValidationIgnore
			}
		}
		msg.ValidatorData = info
		return pubsub.ValidationAccept
	}, pubsub.WithValidatorTimeout(5*time.Second)); err != nil {
		return fmt.Errorf("swarm: registering the validator of %s: %w", BasesTopic, err)
	}
	t, err := s.ps.Join(BasesTopic)
	if err != nil {
		return fmt.Errorf("swarm: joining %s: %w", BasesTopic, err)
	}
	if err := t.SetScoreParams(topicScoreParams()); err != nil {
		return fmt.Errorf("swarm: scoring %s: %w", BasesTopic, err)
	}
	b.topic = t
	sub, err := t.Subscribe()
	if err != nil {
		return fmt.Errorf("swarm: subscribing to %s: %w", BasesTopic, err)
	}
	s.spawn(func() {
		defer sub.Cancel()
		for {
			msg, err := sub.Next(s.ctx)
			if err != nil {
				return
			}
			if info, ok := msg.ValidatorData.(BaseInfo); ok && info.Author != self {
				b.remember(info)
			}
		}
	})
	s.host.SetStreamHandler(BasesProtocol, s.serveBases)
	evs, err := s.host.EventBus().Subscribe([]any{new(event.EvtPeerIdentificationCompleted), new(event.EvtPeerProtocolsUpdated)})
	if err != nil {
		return fmt.Errorf("swarm: subscribing to identify events: %w", err)
	}
	ask := func(p peer.ID) {
		s.spawn(func() {
			ctx, cancel := context.WithTimeout(s.ctx, basesTimeout)
			defer cancel()
			if _, err := s.RequestBases(ctx, p, ""); err != nil {
				s.log.Debug("asking a peer for its bases", "peer", p.String(), "err", err)
			}
		})
	}
	s.spawn(func() {
		defer evs.Close()
		for _, p := range s.host.Network().Peers() {
			if ps, err := s.host.Peerstore().SupportsProtocols(p, BasesProtocol); err == nil && len(ps) > 0 {
				ask(p)
			}
		}
		for {
			select {
			case <-s.ctx.Done():
				return
			case e, ok := <-evs.Out():
				if !ok {
					return
				}
				switch e := e.(type) {
				case event.EvtPeerIdentificationCompleted:
					if slices.Contains(e.Protocols, BasesProtocol) {
						ask(e.Peer)
					}
				case event.EvtPeerProtocolsUpdated:
					if slices.Contains(e.Added, BasesProtocol) {
						ask(e.Peer)
					}
				}
			}
		}
	})
	return nil
}

func (b *basesState) remember(info BaseInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.known[info.Author]
	if m == nil {
		m = map[string]BaseInfo{}
		b.known[info.Author] = m
	}
	k := info.Root.KeyString()
	if old, ok := m[k]; ok && !info.Created.After(old.Created) {
		return
	}
	if _, ok := m[k]; !ok && len(m) >= MaxBasesPerPeer {
		return
	}
	m[k] = info
}

func (s *Swarm) basesOn() (*basesState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bases == nil {
		return nil, errors.New("swarm: bases are not enabled (EnableBases)")
	}
	return s.bases, nil
}

// AnnounceBase publishes this node's signed base announcement on
// BasesTopic and keeps it to answer BasesProtocol requests. It must
// verify and be signed by this node.
func (s *Swarm) AnnounceBase(ctx context.Context, signed []byte) error {
	b, err := s.basesOn()
	if err != nil {
		return err
	}
	info, err := b.v(signed)
	if err != nil {
		return fmt.Errorf("swarm: refusing to announce a base announcement that does not verify: %w", err)
	}
	if info.Author != s.host.ID() {
		return fmt.Errorf("swarm: base announcement is signed by %s, not by this node", info.Author)
	}
	b.mu.Lock()
	if len(b.own) >= MaxBasesPerPeer {
		if _, ok := b.own[info.Root.KeyString()]; !ok {
			b.mu.Unlock()
			return fmt.Errorf("swarm: this node already announces %d bases, the most peers keep", MaxBasesPerPeer)
		}
	}
	b.own[info.Root.KeyString()] = signed
	b.mu.Unlock()
	return s.gossip.publish(ctx, b.topic, signed, true)
}

// WithdrawBase stops answering for the base with this root (its file is
// gone); peers forget it when they ask again.
func (s *Swarm) WithdrawBase(root cid.Cid) {
	if b, err := s.basesOn(); err == nil {
		b.mu.Lock()
		delete(b.own, root.KeyString())
		b.mu.Unlock()
	}
}

// KnownBases returns the verified base announcements learned from peers
// (fingerprint "" for all), newest first.
func (s *Swarm) KnownBases(fingerprint string) []BaseInfo {
	b, err := s.basesOn()
	if err != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []BaseInfo
	for _, m := range b.known {
		for _, info := range m {
			if fingerprint == "" || info.Fingerprint == fingerprint {
				out = append(out, info)
			}
		}
	}
	slices.SortFunc(out, func(x, y BaseInfo) int { return y.Created.Compare(x.Created) })
	return out
}

// RequestBases asks p for the bases it holds (fingerprint "" for all),
// verifies each answer, remembers those signed by p and returns them.
// Announcements that do not verify, or that p did not sign (a peer
// answers only for itself), are dropped.
func (s *Swarm) RequestBases(ctx context.Context, p peer.ID, fingerprint string) ([]BaseInfo, error) {
	b, err := s.basesOn()
	if err != nil {
		return nil, err
	}
	if len(fingerprint) > 128 {
		return nil, fmt.Errorf("swarm: fingerprint of %d bytes is too long", len(fingerprint))
	}
	st, err := s.host.NewStream(ctx, p, BasesProtocol)
	if err != nil {
		return nil, fmt.Errorf("swarm: asking %s for its bases: %w", p, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	} else {
		_ = st.SetDeadline(time.Now().Add(basesTimeout))
	}
	if err := wire.WriteFrame(st, []byte(fingerprint)); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("swarm: asking %s for its bases: %w", p, err)
	}
	_ = st.CloseWrite()
	r := bufio.NewReader(st)
	var out []BaseInfo
	for i := 0; ; i++ {
		data, err := wire.ReadFrame(r, wire.MaxAnnouncementSize)
		if err != nil {
			_ = st.Reset()
			return out, fmt.Errorf("swarm: reading the bases of %s: %w", p, err)
		}
		if len(data) == 0 {
			return out, nil
		}
		if i >= MaxBasesPerPeer {
			_ = st.Reset()
			return out, fmt.Errorf("swarm: %s sent more than %d bases", p, MaxBasesPerPeer)
		}
		info, err := b.v(data)
		if err != nil || info.Author != p || info.Created.After(time.Now().Add(MaxClockSkew)) {
			s.log.Info("dropped a base announcement a peer sent", "peer", p.String(), "err", err)
			continue
		}
		if fingerprint != "" && info.Fingerprint != fingerprint {
			continue
		}
		b.remember(info)
		out = append(out, info)
	}
}

// serveBases answers a BasesProtocol request with this node's own base
// announcements.
func (s *Swarm) serveBases(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(basesTimeout))
	fp, err := wire.ReadFrame(bufio.NewReader(st), 128)
	if err != nil {
		_ = st.Reset()
		return
	}
	b, err := s.basesOn()
	if err != nil {
		_ = st.Reset()
		return
	}
	b.mu.Lock()
	var items [][]byte
	for _, signed := range b.own {
		items = append(items, signed)
	}
	b.mu.Unlock()
	w := bufio.NewWriter(st)
	for _, signed := range items {
		if len(fp) > 0 {
			if info, err := b.v(signed); err != nil || info.Fingerprint != string(fp) {
				continue
			}
		}
		if err := wire.WriteFrame(w, signed); err != nil {
			_ = st.Reset()
			return
		}
	}
	if err := wire.WriteFrame(w, nil); err != nil || w.Flush() != nil {
		_ = st.Reset()
	}
}
