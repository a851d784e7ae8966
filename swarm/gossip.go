package swarm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	wire "orchmind/protocol"
)

// CatalogueTopic carries every announcement.
const CatalogueTopic = "/orchmind/catalogue/1"

// SeenTTL is how long an accepted announcement is remembered: the same
// bytes arriving again on the same topic within it are dropped unforwarded.
const SeenTTL = 5 * time.Minute

// ReannounceDelay is when Announce publishes an announcement a second
// time, for peers the first message missed.
const ReannounceDelay = 2 * time.Second

// Peer score thresholds (see PeerScores). A peer below GraylistThreshold is
// ignored altogether; each rejected (forged) announcement costs its
// forwarder InvalidMessagePenalty × (number of invalid messages)².
const (
	GossipThreshold       = -100.0
	PublishThreshold      = -500.0
	GraylistThreshold     = -1000.0
	InvalidMessagePenalty = -100.0
)

// BaseTopic returns the topic of announcements for one base model.
func BaseTopic(fingerprint string) string {
	return "/orchmind/base/" + fingerprint + "/1"
}

// checkFingerprint refuses fingerprints that would make odd topic names.
func checkFingerprint(fp string) error {
	if fp == "" || len(fp) > 128 {
		return fmt.Errorf("swarm: base fingerprint %q must be 1 to 128 characters", fp)
	}
	for _, r := range fp {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)) {
			return fmt.Errorf("swarm: base fingerprint %q may only hold letters, digits, dashes, underscores, dots and colons", fp)
		}
	}
	return nil
}

type gossip struct {
	s  *Swarm
	ps *pubsub.PubSub

	mu     sync.Mutex
	topics map[string]*pubsub.Topic

	seen     *expirable.LRU[[32]byte, struct{}]
	limiters *lru.Cache[string, *rate.Limiter] // per author and topic, per forwarder and topic
	global   map[string]*rate.Limiter          // per topic
	flood    *lru.Cache[peer.ID, floodDebt]    // forwarders over their rate limit
	rateMu   sync.Mutex

	scoresMu sync.Mutex
	scores   map[peer.ID]float64
	mesh     map[string][]peer.ID // topic → peers in our mesh (sampled)

	catSub *pubsub.Subscription
}

func scoreParams(app func(peer.ID) float64) *pubsub.PeerScoreParams {
	_, lo4, _ := net.ParseCIDR("127.0.0.0/8")
	_, lo6, _ := net.ParseCIDR("::1/128")
	return &pubsub.PeerScoreParams{
		Topics:                      map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:               100,
		AppSpecificScore:            app,
		AppSpecificWeight:           1,
		IPColocationFactorWeight:    -5,
		IPColocationFactorThreshold: 8,
		IPColocationFactorWhitelist: []*net.IPNet{lo4, lo6},
		BehaviourPenaltyWeight:      -10,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       scoreDecay(10 * time.Minute),
		DecayInterval:               scoreDecayInterval,
		DecayToZero:                 pubsub.DefaultDecayToZero,
		RetainScore:                 30 * time.Minute,
	}
}

func scoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             GossipThreshold,
		PublishThreshold:            PublishThreshold,
		GraylistThreshold:           GraylistThreshold,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 5,
	}
}

// topicScoreParams: announcements are sparse, so mesh delivery rates are
// not scored; time in mesh and first deliveries earn a little, invalid
// messages cost a lot (squared) and are forgiven over about an hour.
func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                    1,
		TimeInMeshWeight:               0.01,
		TimeInMeshQuantum:              time.Second,
		TimeInMeshCap:                  3600,
		FirstMessageDeliveriesWeight:   1,
		FirstMessageDeliveriesDecay:    scoreDecay(time.Hour),
		FirstMessageDeliveriesCap:      50,
		InvalidMessageDeliveriesWeight: InvalidMessagePenalty,
		InvalidMessageDeliveriesDecay:  scoreDecay(time.Hour),
	}
}

func (s *Swarm) startGossip() (*gossip, error) {
	g := &gossip{
		s:      s,
		topics: map[string]*pubsub.Topic{},
		seen:   expirable.NewLRU[[32]byte, struct{}](16384, nil, SeenTTL),
		scores: map[peer.ID]float64{},
		global: map[string]*rate.Limiter{},
	}
	var err error
	g.limiters, err = lru.New[string, *rate.Limiter](8192)
	if err != nil {
		return nil, fmt.Errorf("swarm: rate limiter cache: %w", err)
	}
	if g.flood, err = lru.New[peer.ID, floodDebt](4096); err != nil {
		return nil, fmt.Errorf("swarm: rate limiter cache: %w", err)
	}
	app := func(p peer.ID) float64 { return s.audit.score(p) + g.floodScore(p) }
	g.ps, err = pubsub.NewGossipSub(s.ctx, s.host, append(gossipOptions(),
		// Announcements are rare and small: send our own to every topic peer
		// rather than only to the mesh, which is empty until the first heartbeat.
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerScore(scoreParams(app), scoreThresholds()),
		pubsub.WithPeerScoreInspect(pubsub.ExtendedPeerScoreInspectFn(g.inspect), s.cfg.ScoreInspectPeriod),
	)...)
	if err != nil {
		return nil, fmt.Errorf("swarm: starting gossipsub: %w", err)
	}
	s.ps = g.ps
	t, err := g.topic(CatalogueTopic, "")
	if err != nil {
		return nil, err
	}
	if g.catSub, err = t.Subscribe(); err != nil {
		return nil, fmt.Errorf("swarm: subscribing to %s: %w", CatalogueTopic, err)
	}
	sub := g.catSub
	s.spawn(func() {
		for {
			msg, err := sub.Next(s.ctx)
			if err != nil {
				return
			}
			if r, ok := msg.ValidatorData.(Received); ok {
				s.catalog.addAndNotify(s, r)
			}
		}
	})
	return g, nil
}

func (g *gossip) close() {
	if g.catSub != nil {
		g.catSub.Cancel()
	}
}

func (g *gossip) inspect(snaps map[peer.ID]*pubsub.PeerScoreSnapshot) {
	scores := make(map[peer.ID]float64, len(snaps))
	mesh := map[string][]peer.ID{}
	for p, s := range snaps {
		scores[p] = s.Score
		for topic, ts := range s.Topics {
			if ts.TimeInMesh > 0 {
				mesh[topic] = append(mesh[topic], p)
			}
		}
	}
	g.scoresMu.Lock()
	g.scores, g.mesh = scores, mesh
	g.scoresMu.Unlock()
}

// MeshPeers returns the peers in this node's gossipsub mesh for a topic
// (CatalogueTopic or BaseTopic(fp)), as sampled every
// Config.ScoreInspectPeriod. Messages travel along meshes; an empty mesh
// right after start fills at the next heartbeats (about a second).
func (s *Swarm) MeshPeers(topic string) []peer.ID {
	g := s.gossip
	g.scoresMu.Lock()
	defer g.scoresMu.Unlock()
	return append([]peer.ID(nil), g.mesh[topic]...)
}

// topic joins (once) the topic and registers its validator; base is "" for
// the catalogue topic.
func (g *gossip) topic(name, base string) (*pubsub.Topic, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.topics[name]; ok {
		return t, nil
	}
	if err := g.ps.RegisterTopicValidator(name, g.validator(base), pubsub.WithValidatorTimeout(5*time.Second)); err != nil {
		return nil, fmt.Errorf("swarm: registering the validator of %s: %w", name, err)
	}
	t, err := g.ps.Join(name)
	if err != nil {
		_ = g.ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("swarm: joining %s: %w", name, err)
	}
	if err := t.SetScoreParams(topicScoreParams()); err != nil {
		return nil, fmt.Errorf("swarm: scoring %s: %w", name, err)
	}
	g.topics[name] = t
	return t, nil
}

// validator checks an announcement on a topic (base "" = catalogue topic).
func (g *gossip) validator(base string) pubsub.ValidatorEx {
	self := g.s.host.ID()
	return func(ctx context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
		log := g.s.log
		if len(msg.Data) > wire.MaxAnnouncementSize {
			log.Debug("rejected an oversized announcement", "from", from.String(), "bytes", len(msg.Data))
			return pubsub.ValidationReject
		}
		author := msg.GetFrom()
		local := author == self && from == self
		key := sha256.Sum256(append([]byte(msg.GetTopic()+"\x00"), msg.Data...))
		if !local && g.seen.Contains(key) {
			return pubsub.ValidationIgnore
		}
		ann, err := g.s.cfg.Validator(ctx, from, msg.Data)
		if err != nil {
			log.Info("rejected an announcement that does not verify", "from", from.String(), "author", author.String(), "err", err)
			return pubsub.ValidationReject
		}
		if ann.Author != author {
			log.Info("rejected an announcement published by someone other than its author", "from", from.String(), "publisher", author.String(), "author", ann.Author.String())
			return pubsub.ValidationReject
		}
		if base != "" && ann.Base != base {
			log.Info("rejected an announcement on the wrong base topic", "from", from.String(), "topic_base", base, "base", ann.Base)
			return pubsub.ValidationReject
		}
		if ann.Created.After(time.Now().Add(MaxClockSkew)) {
			// Its forwarder checked the date too (an honest one drops it):
			// rejected, which costs the forwarder score.
			log.Info("rejected an announcement dated in the future", "from", from.String(), "author", author.String(), "created", ann.Created)
			return pubsub.ValidationReject
		}
		if !local {
			if why := g.allow(author, from, msg.GetTopic()); why != "" {
				log.Debug("dropped an announcement over the rate limit", "limit", why, "author", author.String(), "from", from.String())
				return pubsub.ValidationIgnore
			}
		}
		g.seen.Add(key, struct{}{})
		msg.ValidatorData = Received{Announcement: ann, From: msg.ReceivedFrom, Data: msg.Data}
		return pubsub.ValidationAccept
	}
}

// FloodPenalty is the gossipsub application score a forwarder loses per
// announcement it sends past its rate limit (Config.PeerAnnounceRate); the
// debt halves every FloodHalfLife. A peer that keeps flooding reaches
// GraylistThreshold and is ignored altogether.
const (
	FloodPenalty  = -1.0
	FloodHalfLife = 10 * time.Minute
)

// floodDebt is a forwarder's count of announcements past its rate limit,
// decaying from at.
type floodDebt struct {
	n  float64
	at time.Time
}

func (d floodDebt) now(t time.Time) float64 {
	return d.n * math.Exp2(-float64(t.Sub(d.at))/float64(FloodHalfLife))
}

// floodScore is p's share of the application-specific score for flooding.
func (g *gossip) floodScore(p peer.ID) float64 {
	g.rateMu.Lock()
	defer g.rateMu.Unlock()
	d, ok := g.flood.Get(p)
	if !ok {
		return 0
	}
	return FloodPenalty * d.now(time.Now())
}

// allow applies the announcement rate limits of one topic: per author
// (Config.AnnounceRate), per forwarding peer (Config.PeerAnnounceRate:
// fresh author keys do not get past it, and each announcement past it
// costs the forwarder FloodPenalty) and for all peers together
// (Config.GlobalAnnounceRate). It returns "" or the limit that was hit.
func (g *gossip) allow(author, from peer.ID, topic string) string {
	g.rateMu.Lock()
	defer g.rateMu.Unlock()
	limiter := func(key string, perMinute int) *rate.Limiter {
		l, ok := g.limiters.Get(key)
		if !ok {
			l = rate.NewLimiter(rate.Every(time.Minute/time.Duration(perMinute)), perMinute)
			g.limiters.Add(key, l)
		}
		return l
	}
	if !limiter("p\x00"+string(from)+"\x00"+topic, g.s.cfg.PeerAnnounceRate).Allow() {
		now := time.Now()
		d, _ := g.flood.Get(from)
		g.flood.Add(from, floodDebt{n: d.now(now) + 1, at: now})
		return "forwarding peer"
	}
	if !limiter("a\x00"+string(author)+"\x00"+topic, g.s.cfg.AnnounceRate).Allow() {
		return "author"
	}
	gl := g.global[topic]
	if gl == nil {
		n := g.s.cfg.GlobalAnnounceRate
		gl = rate.NewLimiter(rate.Every(time.Minute/time.Duration(n)), n)
		g.global[topic] = gl
	}
	if !gl.Allow() {
		return "all peers"
	}
	return ""
}

// PeerScores returns the latest gossipsub score of each connected peer
// (sampled every Config.ScoreInspectPeriod). Below GraylistThreshold a
// peer's messages are ignored.
func (s *Swarm) PeerScores() map[peer.ID]float64 {
	g := s.gossip
	g.scoresMu.Lock()
	defer g.scoresMu.Unlock()
	out := make(map[peer.ID]float64, len(g.scores))
	for p, v := range g.scores {
		out[p] = v
	}
	return out
}

// Announce publishes a signed announcement on the catalogue topic and on
// its base's topic, and again ReannounceDelay later. It is validated
// locally first, exactly as peers will validate it; an announcement by
// another author is refused. If no peer is reachable on the catalogue
// topic yet it waits up to two seconds for one, then publishes anyway (late
// joiners get it from the catalogue exchange).
func (s *Swarm) Announce(ctx context.Context, signed []byte) error {
	if len(signed) > wire.MaxAnnouncementSize {
		return fmt.Errorf("swarm: announcement is %d bytes, the limit is %d; shorten its description or tags", len(signed), wire.MaxAnnouncementSize)
	}
	ann, err := s.cfg.Validator(ctx, s.host.ID(), signed)
	if err != nil {
		return fmt.Errorf("swarm: refusing to announce something that does not verify: %w", err)
	}
	if ann.Author != s.host.ID() {
		return fmt.Errorf("swarm: announcement is signed by %s, not by this node (%s); only the author can publish it", ann.Author, s.host.ID())
	}
	if err := checkFingerprint(ann.Base); err != nil {
		return err
	}
	var errs []error
	var published []*pubsub.Topic
	for _, name := range []string{CatalogueTopic, BaseTopic(ann.Base)} {
		base := ""
		if name != CatalogueTopic {
			base = ann.Base
		}
		t, err := s.gossip.topic(name, base)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.gossip.publish(ctx, t, signed, name == CatalogueTopic); err != nil {
			errs = append(errs, fmt.Errorf("swarm: publishing on %s: %w", name, err))
			continue
		}
		published = append(published, t)
	}
	// Once more a little later, for topic peers whose subscription we had
	// not learned yet (a gossipsub heartbeat): those that got it the first
	// time drop the copy unforwarded (see SeenTTL).
	if len(published) > 0 {
		s.spawn(func() {
			select {
			case <-time.After(ReannounceDelay):
			case <-s.ctx.Done():
				return
			}
			for _, t := range published {
				if err := t.Publish(s.ctx, signed); err != nil && s.ctx.Err() == nil {
					s.log.Debug("announcing again", "topic", t.String(), "err", err)
				}
			}
		})
	}
	return errors.Join(errs...)
}

// publish publishes on t; with wait it first waits up to two seconds until
// a peer subscribed to t has an open gossipsub stream from us: a node that
// has just started or connected does not know its peers' subscriptions yet,
// and a message published then reaches nobody.
func (g *gossip) publish(ctx context.Context, t *pubsub.Topic, data []byte, wait bool) error {
	if !wait {
		return t.Publish(ctx, data)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for !g.reachable(t) {
		select {
		case <-waitCtx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return t.Publish(ctx, data) // nobody yet: local delivery only
		case <-tick.C:
		}
	}
	return t.Publish(ctx, data)
}

// reachable reports whether some peer subscribed to t has an outbound
// gossipsub stream from us.
func (g *gossip) reachable(t *pubsub.Topic) bool {
	nw := g.s.host.Network()
	for _, p := range t.ListPeers() {
		for _, c := range nw.ConnsToPeer(p) {
			for _, st := range c.GetStreams() {
				if st.Stat().Direction == network.DirOutbound && strings.HasPrefix(string(st.Protocol()), "/meshsub/") {
					return true
				}
			}
		}
	}
	return false
}

// Subscribe returns the announcements for one base model as they arrive on
// its topic, until ctx ends or the swarm closes (then the channel is
// closed). Announcements on the catalogue topic reach the catalogue and
// Config.OnAnnouncement whether or not anyone subscribes.
func (s *Swarm) Subscribe(ctx context.Context, base string) (<-chan Received, error) {
	if err := checkFingerprint(base); err != nil {
		return nil, err
	}
	t, err := s.gossip.topic(BaseTopic(base), base)
	if err != nil {
		return nil, err
	}
	sub, err := t.Subscribe()
	if err != nil {
		return nil, fmt.Errorf("swarm: subscribing to %s: %w", BaseTopic(base), err)
	}
	out := make(chan Received, 64)
	ok := s.spawn(func() {
		defer close(out)
		defer sub.Cancel()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-s.ctx.Done():
				cancel()
			case <-ctx.Done():
			}
		}()
		for {
			msg, err := sub.Next(ctx)
			if err != nil {
				return
			}
			r, ok := msg.ValidatorData.(Received)
			if !ok {
				continue
			}
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
		}
	})
	if !ok {
		sub.Cancel()
		return nil, errors.New("swarm: subscribe after Close")
	}
	return out, nil
}
