package swarm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
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

	wire "orchmind/protocol"
)

// CatalogueProtocol is the stream protocol with which a node asks a peer
// for the announcements it has kept. Its messages (a CBOR request, then
// one frame per signed announcement) are package protocol's: see
// protocol.WriteCatalogueRequest and protocol.ReadCatalogueResponse.
const CatalogueProtocol protocol.ID = wire.CatalogueProtocolID

// MaxCatalogueEntries bounds one catalogue response.
const MaxCatalogueEntries = wire.MaxCatalogueLimit

// catalogueTimeout bounds one whole catalogue exchange.
const catalogueTimeout = 30 * time.Second

// catalogueRetry is the first pause before a failed catalogue exchange is
// tried again (then doubling, four tries in all).
const catalogueRetry = 500 * time.Millisecond

// MaxClockSkew is how far in the future an announcement's Created may be
// (by this node's clock): later ones are refused. The catalogue evicts by
// arrival, not by Created, but Created orders what a catalogue serves and
// what a search lists first, so a date far ahead would put an entry on top
// for ever.
const MaxClockSkew = 10 * time.Minute

type catKey struct {
	author peer.ID
	root   string
}

// catEntry is one kept announcement with its arrival number.
type catEntry struct {
	r   Received
	seq uint64
}

// catalogue is the bounded in-memory set of verified announcements, one
// per (author, root): the newest wins. It holds up to max entries learned
// from peers; when more arrive it evicts by arrival, never by the
// attacker-chosen Created, with quotas: one author keeps at most perAuthor
// entries and one delivering peer (From: the author, the gossip forwarder
// or the peer whose catalogue it came from) at most perPeer, each over
// its quota losing its own oldest arrival first; a full catalogue evicts
// the oldest arrival of the peer that delivered the most. The node's own
// entries and those of pinned roots are never evicted and do not count;
// room entries (Private) are bounded by max separately and evicted only by
// other room entries.
type catalogue struct {
	mu        sync.Mutex
	max       int
	perAuthor int
	perPeer   int
	self      peer.ID
	now       func() time.Time
	items     map[catKey]*catEntry
	byAuthor  map[peer.ID]int // public, not own
	byPeer    map[peer.ID]int // public, not own
	public    int             // entries that are neither own nor room ones
	rooms     int
	seq       uint64
	// sums finds an entry by the SHA-256 of its signed bytes: a peer's
	// catalogue entry we hold already needs no second signature check.
	sums map[[sha256.Size]byte]catKey
	// digest is over the entries a peer's catalogue request may get
	// (neither room ones nor, per base, of other bases: see digestOf).
	digest catalogueDigest

	pins    func(context.Context) ([]cid.Cid, error) // nil: nothing is pinned
	pinSet  map[string]bool
	pinTime time.Time

	notifyMu sync.Mutex // one OnAnnouncement call at a time
}

func newCatalogue(size int, self peer.ID, pins func(context.Context) ([]cid.Cid, error)) *catalogue {
	return &catalogue{max: size, perAuthor: max(size/64, 4), perPeer: max(size/4, 16), self: self, now: time.Now, pins: pins,
		items: map[catKey]*catEntry{}, byAuthor: map[peer.ID]int{}, byPeer: map[peer.ID]int{}, sums: map[[sha256.Size]byte]catKey{}}
}

// own reports whether r is this node's: its own announcement, or one it
// put there itself (Remember).
func (c *catalogue) own(r Received) bool { return r.Author == c.self || r.From == c.self }

func (c *catalogue) count(r Received, d int) {
	sum := sha256.Sum256(r.Data)
	if d > 0 {
		c.sums[sum] = catKey{r.Author, r.Root.KeyString()}
	} else {
		delete(c.sums, sum)
	}
	if !r.Private {
		c.digest.toggle(r.Data)
	}
	switch {
	case r.Private:
		c.rooms += d
	case c.own(r):
	default:
		c.public += d
		c.byAuthor[r.Author] += d
		c.byPeer[r.From] += d
		if c.byAuthor[r.Author] == 0 {
			delete(c.byAuthor, r.Author)
		}
		if c.byPeer[r.From] == 0 {
			delete(c.byPeer, r.From)
		}
	}
}

// pinned returns the set of pinned roots, read again at most every ten
// seconds; called with c.mu held.
func (c *catalogue) pinned() map[string]bool {
	if c.pins == nil {
		return nil
	}
	if c.pinSet == nil || c.now().Sub(c.pinTime) > 10*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		roots, err := c.pins(ctx)
		cancel()
		if err == nil || c.pinSet == nil {
			c.pinSet = map[string]bool{}
			for _, r := range roots {
				c.pinSet[r.KeyString()] = true
			}
			c.pinTime = c.now()
		}
	}
	return c.pinSet
}

// evictOldest removes the earliest-arrived entry for which match is true,
// skipping own and pinned ones; it reports the key removed.
func (c *catalogue) evictOldest(match func(Received) bool) (catKey, bool) {
	pinned := c.pinned()
	var best catKey
	var bestSeq uint64
	found := false
	for k, e := range c.items {
		if c.own(e.r) || !match(e.r) || (!e.r.Private && pinned[k.root]) {
			continue
		}
		if !found || e.seq < bestSeq {
			best, bestSeq, found = k, e.seq, true
		}
	}
	if found {
		c.count(c.items[best].r, -1)
		delete(c.items, best)
	}
	return best, found
}

// add keeps r unless an equal or newer announcement of the same root by
// the same author is already there, or its Created is more than
// MaxClockSkew ahead; it reports whether r was kept.
func (c *catalogue) add(r Received) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Created.After(c.now().Add(MaxClockSkew)) {
		return false
	}
	k := catKey{r.Author, r.Root.KeyString()}
	if old, ok := c.items[k]; ok {
		if !r.Created.After(old.r.Created) {
			return false
		}
		if old.r.Private && !r.Private {
			// A room entry stays a room entry: it is never served to peers,
			// whoever announces the same root later.
			r.Private = true
		}
		c.count(old.r, -1)
		delete(c.items, k)
	}
	c.seq++
	c.items[k] = &catEntry{r: r, seq: c.seq}
	c.count(r, 1)
	switch {
	case r.Private:
		if c.rooms > c.max {
			c.evictOldest(func(x Received) bool { return x.Private })
		}
	case c.own(r):
	default:
		if c.byAuthor[r.Author] > c.perAuthor {
			c.evictOldest(func(x Received) bool { return !x.Private && x.Author == r.Author })
		}
		if c.byPeer[r.From] > c.perPeer {
			c.evictOldest(func(x Received) bool { return !x.Private && x.From == r.From })
		}
		for c.public > c.max {
			// The peer that delivered the most loses its oldest arrival.
			var fat peer.ID
			for p, n := range c.byPeer {
				if n > c.byPeer[fat] || fat == "" {
					fat = p
				}
			}
			if _, ok := c.evictOldest(func(x Received) bool { return !x.Private && x.From == fat }); ok {
				continue
			}
			if _, ok := c.evictOldest(func(x Received) bool { return !x.Private }); !ok {
				break // all pinned
			}
		}
	}
	_, kept := c.items[k]
	return kept
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

// held returns the kept announcement whose signed bytes are data, if any.
func (c *catalogue) held(data []byte) (Received, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.sums[sha256.Sum256(data)]
	if !ok {
		return Received{}, false
	}
	e, ok := c.items[k]
	if !ok || !bytes.Equal(e.r.Data, data) {
		return Received{}, false
	}
	return e.r, true
}

// digestOf is the digest of the entries that are not room ones, for one
// base ("" for all).
func (c *catalogue) digestOf(base string) catalogueDigest {
	c.mu.Lock()
	defer c.mu.Unlock()
	if base == "" {
		return c.digest
	}
	var d catalogueDigest
	for _, e := range c.items {
		if !e.r.Private && e.r.Base == base {
			d.toggle(e.r.Data)
		}
	}
	return d
}

// byRoot returns the announcements of root (room ones included).
func (c *catalogue) byRoot(root cid.Cid) []Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Received
	for _, e := range c.items {
		if e.r.Root.Equals(root) {
			out = append(out, e.r)
		}
	}
	return out
}

func newestFirst(out []Received) {
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return string(out[i].Data) < string(out[j].Data)
	})
}

// list returns up to limit announcements, newest first, for one base
// ("" = all), room ones included.
func (c *catalogue) list(base string, limit int) []Received {
	c.mu.Lock()
	out := make([]Received, 0, len(c.items))
	for _, e := range c.items {
		if base == "" || e.r.Base == base {
			out = append(out, e.r)
		}
	}
	c.mu.Unlock()
	newestFirst(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// serve returns up to limit announcements for a peer's catalogue request:
// no room ones, and shared fairly among the peers that delivered them —
// the node's own first, then one from each delivering peer in turn, newest
// first within each — so that a peer that floods the catalogue cannot push
// the others out of what is served.
func (c *catalogue) serve(base string, limit int) []Received {
	c.mu.Lock()
	groups := map[peer.ID][]Received{}
	var own []Received
	for _, e := range c.items {
		if e.r.Private || (base != "" && e.r.Base != base) {
			continue
		}
		if c.own(e.r) {
			own = append(own, e.r)
		} else {
			groups[e.r.From] = append(groups[e.r.From], e.r)
		}
	}
	c.mu.Unlock()
	newestFirst(own)
	lists := make([][]Received, 0, len(groups))
	for _, g := range groups {
		newestFirst(g)
		lists = append(lists, g)
	}
	sort.Slice(lists, func(i, j int) bool { return lists[i][0].Created.After(lists[j][0].Created) })
	out := own
	for i := 0; len(lists) > 0; i++ {
		rest := lists[:0]
		for _, g := range lists {
			if i < len(g) {
				out = append(out, g[i])
			}
			if i+1 < len(g) {
				rest = append(rest, g)
			}
		}
		lists = rest
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Catalogue returns up to limit (≤ 0: all) kept announcements, newest first,
// for one base fingerprint ("" = every base). Room announcements
// (RememberRoom) are included, with Private set; peers never get those.
func (s *Swarm) Catalogue(base string, limit int) []Received {
	return s.catalog.list(base, limit)
}

// CatalogueOf returns the kept announcements of root, every author's
// (room ones included, with Private set).
func (s *Swarm) CatalogueOf(root cid.Cid) []Received {
	return s.catalog.byRoot(root)
}

// Remember adds one of the node's own announcements (one it has just
// published) to the catalogue served to peers, after validating it; it is
// never evicted. It does not call OnAnnouncement. RememberFrom gives back
// what the node saved before a restart.
func (s *Swarm) Remember(ctx context.Context, signed []byte) error {
	ann, err := s.cfg.Validator(ctx, s.host.ID(), signed)
	if err != nil {
		return fmt.Errorf("swarm: not keeping an announcement that does not verify: %w", err)
	}
	s.catalog.add(Received{Announcement: ann, From: s.host.ID(), Data: signed})
	return nil
}

// Kept returns the public announcements of the catalogue (room ones left
// out) in the order they arrived, with a number that changes whenever the
// catalogue does: what a node saves to give back to RememberFrom after a
// restart, and when it needs saving again.
func (s *Swarm) Kept() ([]Received, uint64) {
	c := s.catalog
	c.mu.Lock()
	entries := make([]*catEntry, 0, len(c.items))
	for _, e := range c.items {
		if !e.r.Private {
			entries = append(entries, e)
		}
	}
	seq := c.seq
	c.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].seq < entries[j].seq })
	out := make([]Received, len(entries))
	for i, e := range entries {
		out[i] = e.r
	}
	return out, seq
}

// RememberFrom adds an announcement that peer from delivered earlier (one
// the node saved before a restart, see Kept) to the catalogue, after
// validating it again, under the same quotas and eviction as when it
// first arrived; from == this node's ID makes it the node's own. It does
// not call OnAnnouncement.
func (s *Swarm) RememberFrom(ctx context.Context, from peer.ID, signed []byte) error {
	if from == "" {
		from = s.host.ID()
	}
	ann, err := s.cfg.Validator(ctx, from, signed)
	if err != nil {
		return fmt.Errorf("swarm: not keeping an announcement that does not verify: %w", err)
	}
	if !s.catalog.add(Received{Announcement: ann, From: from, Data: signed}) {
		return fmt.Errorf("swarm: not keeping an announcement by %s: a newer one is kept, or it is dated more than %s ahead", ann.Author, MaxClockSkew)
	}
	return nil
}

// RememberRoom adds an announcement that arrived in (or was sealed for) a
// private room to the catalogue, after validating it: it is listed by
// Catalogue with Private set and gives Fetch a provider, but it is never
// served to peers. Room entries are bounded like the others but evicted
// only by other room entries. It does not call OnAnnouncement.
func (s *Swarm) RememberRoom(ctx context.Context, from peer.ID, signed []byte) error {
	ann, err := s.cfg.Validator(ctx, from, signed)
	if err != nil {
		return fmt.Errorf("swarm: not keeping a room announcement that does not verify: %w", err)
	}
	if !s.catalog.add(Received{Announcement: ann, From: from, Data: signed, Private: true}) {
		return fmt.Errorf("swarm: not keeping a room announcement by %s: a newer one is kept, or it is dated more than %s ahead", ann.Author, MaxClockSkew)
	}
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
	got, err := s.requestCatalogue(ctx, p, "", MaxCatalogueEntries, true)
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
	return s.requestCatalogue(ctx, p, base, limit, false)
}

// requestCatalogue is RequestCatalogue; with digest it sends the digest of
// what this node holds, and gets nothing back from a peer that would send
// exactly that.
func (s *Swarm) requestCatalogue(ctx context.Context, p peer.ID, base string, limit int, digest bool) ([]Received, error) {
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
	req := wire.CatalogueRequest{BaseFingerprint: base, Limit: limit}
	if digest {
		d := s.catalog.digestOf(base)
		req.Have = d[:]
	}
	if err := wire.WriteCatalogueRequest(st, req); err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("swarm: sending a catalogue request to %s: %w", p, err)
	}
	_ = st.CloseWrite()
	raw, err := wire.ReadCatalogueResponse(bufio.NewReader(st), limit)
	if err != nil {
		_ = st.Reset()
		return nil, fmt.Errorf("swarm: reading the catalogue of %s: %w", p, err)
	}
	out := make([]Received, 0, len(raw))
	for _, data := range raw {
		if r, ok := s.catalog.held(data); ok && !r.Private && (base == "" || r.Base == base) {
			// The same signed bytes verified when they were kept.
			out = append(out, Received{Announcement: r.Announcement, From: p, Data: data})
			continue
		}
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
	req, err := wire.ReadCatalogueRequest(bufio.NewReader(st))
	if err != nil {
		s.log.Debug("bad catalogue request", "peer", st.Conn().RemotePeer().String(), "err", err)
		_ = st.Reset()
		return
	}
	items := s.catalog.serve(req.BaseFingerprint, req.EffectiveLimit())
	raw := make([][]byte, len(items))
	var d catalogueDigest
	for i, r := range items {
		raw[i] = r.Data
		d.toggle(r.Data)
	}
	if len(req.Have) == len(d) && [len(d)]byte(req.Have) == d {
		raw = nil // the asker holds exactly these
	}
	w := bufio.NewWriter(st)
	if err := wire.WriteCatalogueResponse(w, raw); err != nil || w.Flush() != nil {
		_ = st.Reset()
	}
}

// readFrame reads one length-prefixed frame of at most max bytes (the
// framing of every orchmind stream protocol, protocol.ReadFrame).
func readFrame(r *bufio.Reader, max int) ([]byte, error) { return wire.ReadFrame(r, max) }
