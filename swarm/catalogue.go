package swarm

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// CatalogueProtocol is the stream protocol with which a node asks a peer
// for the announcements it has kept.
const CatalogueProtocol protocol.ID = "/orchmind/catalogue/1.0.0"

// MaxCatalogueEntries bounds one catalogue response.
const MaxCatalogueEntries = 1000

// catalogueTimeout bounds one whole catalogue exchange.
const catalogueTimeout = 30 * time.Second

// catalogueRetry is the first pause before a failed catalogue exchange is
// tried again (then doubling, four tries in all).
const catalogueRetry = 500 * time.Millisecond

type catKey struct {
	author peer.ID
	root   string
}

// catalogue is the bounded in-memory set of verified announcements, one per
// (author, root): the newest wins.
type catalogue struct {
	mu    sync.Mutex
	max   int
	items map[catKey]Received

	notifyMu sync.Mutex // one OnAnnouncement call at a time
}

func newCatalogue(max int) *catalogue {
	return &catalogue{max: max, items: map[catKey]Received{}}
}

// add keeps r unless an equal or newer announcement of the same root by
// the same author is already there; it reports whether r was kept.
func (c *catalogue) add(r Received) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := catKey{r.Author, r.Root.KeyString()}
	if old, ok := c.items[k]; ok && !r.Created.After(old.Created) {
		return false
	}
	c.items[k] = r
	if len(c.items) > c.max {
		var oldest catKey
		first := true
		for k, v := range c.items {
			if first || v.Created.Before(c.items[oldest].Created) {
				oldest, first = k, false
			}
		}
		delete(c.items, oldest)
		if oldest == k {
			return false
		}
	}
	return true
}

// addAndNotify adds r and, if it is new, tells Config.OnAnnouncement.
func (c *catalogue) addAndNotify(s *Swarm, r Received) bool {
	if !c.add(r) {
		return false
	}
	if f := s.cfg.OnAnnouncement; f != nil {
		c.notifyMu.Lock()
		f(r)
		c.notifyMu.Unlock()
	}
	return true
}

// byRoot returns the announcements of root.
func (c *catalogue) byRoot(root cid.Cid) []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Received
	for _, r := range c.items {
		if r.Root.Equals(root) {
			out = append(out, r)
		}
	}
	return out
}

// list returns up to limit announcements, newest first, for one base
// ("" = all).
func (c *catalogue) list(base string, limit int) []Received {
	c.mu.Lock()
	out := make([]Received, 0, len(c.items))
	for _, r := range c.items {
		if base == "" || r.Base == base {
			out = append(out, r)
		}
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return string(out[i].Data) < string(out[j].Data)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Catalogue returns up to limit (≤ 0: all) kept announcements, newest first,
// for one base fingerprint ("" = every base).
func (s *Swarm) Catalogue(base string, limit int) []Received {
	return s.catalog.list(base, limit)
}

// Remember adds an announcement (e.g. one loaded from the node's store at
// start) to the catalogue served to peers, after validating it. It does not
// call OnAnnouncement.
func (s *Swarm) Remember(ctx context.Context, signed []byte) error {
	ann, err := s.cfg.Validator(ctx, s.host.ID(), signed)
	if err != nil {
		return fmt.Errorf("swarm: not keeping an announcement that does not verify: %w", err)
	}
	s.catalog.add(Received{Announcement: ann, From: s.host.ID(), Data: signed})
	return nil
}

// startCatalogueProtocol serves our catalogue and asks every peer that
// speaks the protocol for theirs, once per peer. Peers are asked when
// identify says they support it (at their first identification, or when
// they add the protocol later): asking on connection alone races a peer
// that is still starting and has not registered its handler yet, and such
// a peer would then never be asked.
func (s *Swarm) startCatalogueProtocol() error {
	s.host.SetStreamHandler(CatalogueProtocol, s.serveCatalogue)
	sub, err := s.host.EventBus().Subscribe([]any{new(event.EvtPeerIdentificationCompleted), new(event.EvtPeerProtocolsUpdated)})
	if err != nil {
		return fmt.Errorf("swarm: subscribing to identify events: %w", err)
	}
	asked, _ := lru.New[peer.ID, struct{}](4096)
	sem := make(chan struct{}, 4)
	var mu sync.Mutex
	ask := func(p peer.ID) {
		mu.Lock()
		if ok, _ := asked.ContainsOrAdd(p, struct{}{}); ok {
			mu.Unlock()
			return
		}
		mu.Unlock()
		s.spawn(func() {
			select {
			case sem <- struct{}{}:
			case <-s.ctx.Done():
				return
			}
			defer func() { <-sem }()
			// A failed exchange is tried again a few times while the peer
			// stays connected, then on its next identification.
			for wait := catalogueRetry; ; wait *= 2 {
				n, err := s.syncCatalogue(s.ctx, p)
				if err == nil {
					if n > 0 {
						s.log.Info("learned announcements from a peer's catalogue", "peer", p.String(), "new", n)
					}
					return
				}
				if wait >= 8*catalogueRetry || !s.isConnected(p) {
					s.log.Debug("catalogue exchange failed; asking again when the peer is identified next", "peer", p.String(), "err", err)
					mu.Lock()
					asked.Remove(p)
					mu.Unlock()
					return
				}
				s.log.Debug("catalogue exchange failed; trying again", "peer", p.String(), "in", wait, "err", err)
				select {
				case <-time.After(wait):
				case <-s.ctx.Done():
					return
				}
			}
		})
	}
	// A peer that disconnected altogether is asked again when it is back:
	// it may have learned announcements meanwhile.
	s.host.Network().Notify(&network.NotifyBundle{
		DisconnectedF: func(nw network.Network, c network.Conn) {
			p := c.RemotePeer()
			if nw.Connectedness(p) != network.Connected {
				mu.Lock()
				asked.Remove(p)
				mu.Unlock()
			}
		},
	})
	ok := s.spawn(func() {
		defer sub.Close()
		// Peers identified before the subscription started.
		for _, p := range s.host.Network().Peers() {
			if ps, err := s.host.Peerstore().SupportsProtocols(p, CatalogueProtocol); err == nil && len(ps) > 0 {
				ask(p)
			}
		}
		for {
			select {
			case <-s.ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				switch e := e.(type) {
				case event.EvtPeerIdentificationCompleted:
					if slices.Contains(e.Protocols, CatalogueProtocol) {
						ask(e.Peer)
					}
				case event.EvtPeerProtocolsUpdated:
					if slices.Contains(e.Added, CatalogueProtocol) {
						ask(e.Peer)
					}
				}
			}
		}
	})
	if !ok {
		_ = sub.Close()
	}
	return nil
}

// syncCatalogue asks p for its catalogue and keeps what verifies; it
// returns how many announcements were new.
func (s *Swarm) syncCatalogue(ctx context.Context, p peer.ID) (int, error) {
	got, err := s.RequestCatalogue(ctx, p, "", MaxCatalogueEntries)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range got {
		if s.catalog.addAndNotify(s, r) {
			n++
		}
	}
	return n, nil
}

// RequestCatalogue asks peer p for up to limit of its kept announcements
// (for one base, or all with base ""), newest first, and returns those
// that verify. Ones that do not verify are dropped and logged.
func (s *Swarm) RequestCatalogue(ctx context.Context, p peer.ID, base string, limit int) ([]Received, error) {
	if limit <= 0 || limit > MaxCatalogueEntries {
		limit = MaxCatalogueEntries
	}
	if base != "" {
		if err := checkFingerprint(base); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, catalogueTimeout)
	defer cancel()
	st, err := s.host.NewStream(ctx, p, CatalogueProtocol)
	if err != nil {
		return nil, fmt.Errorf("swarm: opening a catalogue stream to %s: %w", p, err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if err := writeCatalogueRequest(st, catalogueRequest{Base: base, Limit: limit}); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("swarm: sending a catalogue request to %s: %w", p, err)
	}
	_ = st.CloseWrite()
	raw, err := readCatalogueResponse(bufio.NewReader(st), limit)
	if err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("swarm: reading the catalogue of %s: %w", p, err)
	}
	out := make([]Received, 0, len(raw))
	for _, data := range raw {
		ann, err := s.cfg.Validator(ctx, p, data)
		if err != nil {
			s.log.Info("dropped a catalogue entry that does not verify", "peer", p.String(), "err", err)
			continue
		}
		if base != "" && ann.Base != base {
			s.log.Info("dropped a catalogue entry for another base", "peer", p.String(), "want", base, "got", ann.Base)
			continue
		}
		out = append(out, Received{Announcement: ann, From: p, Data: data})
	}
	return out, nil
}

func (s *Swarm) serveCatalogue(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(catalogueTimeout))
	req, err := readCatalogueRequest(bufio.NewReader(st))
	if err != nil {
		s.log.Debug("bad catalogue request", "peer", st.Conn().RemotePeer().String(), "err", err)
		_ = st.Reset()
		return
	}
	limit := req.Limit
	if limit <= 0 || limit > MaxCatalogueEntries {
		limit = MaxCatalogueEntries
	}
	items := s.catalog.list(req.Base, limit)
	raw := make([][]byte, len(items))
	for i, r := range items {
		raw[i] = r.Data
	}
	w := bufio.NewWriter(st)
	if err := writeCatalogueResponse(w, raw); err != nil || w.Flush() != nil {
		_ = st.Reset()
	}
}
