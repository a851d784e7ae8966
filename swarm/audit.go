package swarm

import (
	"context"
	"sync"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Serving corrupt blocks. Bitswap names a received block by hashing its
// bytes, so a block whose bytes were changed arrives under a CID that
// nobody asked for: the blocks a node wants are exactly the CIDs it
// requested. Over BlocksProtocol the answer to a request for a CID must
// hash to that CID. The audit counts such blocks per sender. Each one costs the
// sender BadBlockPenalty of gossipsub application score (a single one puts
// it at the graylist threshold, so its announcements are ignored too), and
// the sender is disconnected and refused for BanDuration: an honest node
// never sends a block that was not requested, and one whose disk returns
// wrong bytes cannot be trusted either.
const (
	// BadBlockPenalty is the gossipsub application-specific score of a
	// peer per corrupt or unrequested block it sent.
	BadBlockPenalty = GraylistThreshold
	// BanDuration is how long a peer that sent a corrupt block is refused.
	BanDuration = time.Hour

	wantedTTL = 30 * time.Minute // how long a requested CID stays "wanted"
	wantedMax = 1 << 20          // at most this many remembered wants
)

// BadPeer describes a peer caught sending blocks nobody asked for.
type BadPeer struct {
	// Blocks counts the corrupt or unrequested blocks received from it.
	Blocks int
	// Last is when the latest one arrived; the ban ends BanDuration later.
	Last time.Time
}

// blockAudit is a bitswap tracer that records what this node asked for
// and flags peers that send anything else. It is also the host's
// connection gater for the peers it bans.
type blockAudit struct {
	mu     sync.Mutex
	wanted map[cid.Cid]time.Time
	bad    map[peer.ID]*BadPeer
	now    func() time.Time

	// isWanted, when set, reports CIDs bitswap currently wants or the
	// blockstore already holds (a block of those bytes is genuine).
	isWanted func(cid.Cid) bool
	// onBad is called (outside the lock) when a peer sends a bad block.
	onBad func(peer.ID, cid.Cid, int)
}

func newBlockAudit() *blockAudit {
	return &blockAudit{wanted: map[cid.Cid]time.Time{}, bad: map[peer.ID]*BadPeer{}, now: time.Now}
}

// want records CIDs about to be requested from the network.
func (a *blockAudit) want(cs []cid.Cid) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if len(a.wanted)+len(cs) > wantedMax {
		for c, t := range a.wanted {
			if now.Sub(t) > wantedTTL || len(a.wanted)+len(cs) > wantedMax {
				delete(a.wanted, c)
			}
		}
	}
	for _, c := range cs {
		a.wanted[c] = now
	}
}

// MessageReceived implements bitswap's tracer: it runs before bitswap
// looks at the message.
func (a *blockAudit) MessageReceived(p peer.ID, m bsmsg.BitSwapMessage) {
	for _, b := range m.Blocks() {
		c := b.Cid()
		a.mu.Lock()
		t, ok := a.wanted[c]
		ok = ok && a.now().Sub(t) <= wantedTTL
		a.mu.Unlock()
		if ok || (a.isWanted != nil && a.isWanted(c)) {
			continue
		}
		a.report(p, c)
	}
}

// report records that p sent a corrupt or unrequested block c.
func (a *blockAudit) report(p peer.ID, c cid.Cid) {
	a.mu.Lock()
	r := a.bad[p]
	if r == nil {
		r = &BadPeer{}
		a.bad[p] = r
	}
	r.Blocks++
	r.Last = a.now()
	n := r.Blocks
	a.mu.Unlock()
	if a.onBad != nil {
		a.onBad(p, c, n)
	}
}

// MessageSent implements bitswap's tracer; sent messages are not audited.
func (a *blockAudit) MessageSent(peer.ID, bsmsg.BitSwapMessage) {}

// score is p's gossipsub application-specific score.
func (a *blockAudit) score(p peer.ID) float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.bad[p]; r != nil && a.now().Sub(r.Last) < BanDuration {
		return BadBlockPenalty * float64(r.Blocks)
	}
	return 0
}

// banned reports whether p is refused.
func (a *blockAudit) banned(p peer.ID) bool {
	return a.score(p) < 0
}

// badPeers returns the peers caught within BanDuration.
func (a *blockAudit) badPeers() map[peer.ID]BadPeer {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[peer.ID]BadPeer, len(a.bad))
	for p, r := range a.bad {
		if a.now().Sub(r.Last) < BanDuration {
			out[p] = *r
		}
	}
	return out
}

// The connection gater: banned peers are neither dialled nor accepted.

func (a *blockAudit) InterceptPeerDial(p peer.ID) bool                 { return !a.banned(p) }
func (a *blockAudit) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !a.banned(p) }
func (a *blockAudit) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (a *blockAudit) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !a.banned(p)
}
func (a *blockAudit) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// BadPeers returns the peers this node caught sending corrupt or
// unrequested blocks within the last BanDuration; they are disconnected,
// refused, and scored down in gossipsub.
func (s *Swarm) BadPeers() map[peer.ID]BadPeer {
	return s.audit.badPeers()
}

// onBadBlock scores the sender down and cuts it off.
func (s *Swarm) onBadBlock(p peer.ID, c cid.Cid, n int) {
	s.log.Warn("a peer sent a block that does not match any requested CID (corrupt or unrequested data); refusing it",
		"from", p.String(), "block", c.String(), "count", n, "ban", BanDuration.String())
	if h := s.hostRef.Load(); h != nil {
		go func() { _ = (*h).Network().ClosePeer(p) }()
	}
}

// genuine reports whether c is a CID bitswap wants right now or one the
// blockstore already holds.
func (s *Swarm) genuine(c cid.Cid) bool {
	if s.bswap != nil {
		for _, w := range s.bswap.GetWantlist() {
			if w == c {
				return true
			}
		}
	}
	has, err := s.cfg.Blockstore.Has(context.Background(), c)
	return err == nil && has
}
