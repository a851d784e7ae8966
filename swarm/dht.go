package swarm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrNoPeers means the DHT has nobody to talk to yet: the node is not
// connected to any orchmind peer.
var ErrNoPeers = errors.New("swarm: not connected to any orchmind peer yet; add a bootstrap address or wait for peers on the LAN")

// Provide announces in the DHT that this node serves the DAG rooted at c.
// It fails with ErrNoPeers while the routing table is empty.
func (s *Swarm) Provide(ctx context.Context, c cid.Cid) error {
	if !c.Defined() {
		return errors.New("swarm: provide: empty CID")
	}
	if s.dht.RoutingTable().Size() == 0 {
		return fmt.Errorf("swarm: providing %s: %w", c, ErrNoPeers)
	}
	if err := s.dht.Provide(ctx, c, true); err != nil {
		return fmt.Errorf("swarm: providing %s in the DHT: %w", c, err)
	}
	return nil
}

// FindProviders returns up to limit peers (limit ≤ 0 means 20) that say in
// the DHT they serve c, other than ourselves. It returns what it found when
// ctx ends; an empty result with a nil error means nobody provides c.
func (s *Swarm) FindProviders(ctx context.Context, c cid.Cid, limit int) ([]peer.AddrInfo, error) {
	if !c.Defined() {
		return nil, errors.New("swarm: find providers: empty CID")
	}
	if limit <= 0 {
		limit = 20
	}
	if s.dht.RoutingTable().Size() == 0 {
		return nil, fmt.Errorf("swarm: finding providers of %s: %w", c, ErrNoPeers)
	}
	var out []peer.AddrInfo
	for ai := range s.dht.FindProvidersAsync(ctx, c, limit+1) {
		if ai.ID == s.host.ID() {
			continue
		}
		out = append(out, ai)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// reprovideLoop provides every pinned root once shortly after start (as
// soon as the routing table has peers) and then every ReprovideInterval.
func (s *Swarm) reprovideLoop() {
	// Wait for peers before the first round: providing to an empty table fails.
	wait := time.NewTicker(time.Second)
	for s.dht.RoutingTable().Size() == 0 {
		select {
		case <-s.ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
	}
	wait.Stop()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.reprovideOnce(s.ctx)
		t.Reset(s.cfg.ReprovideInterval)
	}
}

// reprovideOnce provides every pinned root, logging failures; it returns
// how many roots were provided.
func (s *Swarm) reprovideOnce(ctx context.Context) int {
	roots, err := s.cfg.PinnedRoots(ctx)
	if err != nil {
		s.log.Warn("reprovide: could not list pinned adapters", "err", err)
		return 0
	}
	n := 0
	for _, c := range roots {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := s.Provide(pctx, c)
		cancel()
		if ctx.Err() != nil {
			return n
		}
		if err != nil {
			s.log.Warn("reprovide failed", "cid", c.String(), "err", err)
			continue
		}
		n++
	}
	s.log.Debug("reprovided pinned roots", "provided", n, "pinned", len(roots))
	return n
}

// RefreshRoutingTable refreshes the DHT's routing table and waits until
// that is done. Shortly after start it first waits for the initial
// refresh, in which the node looks for its neighbours and connects to
// them: once it returns the node has joined the DHT.
func (s *Swarm) RefreshRoutingTable(ctx context.Context) error {
	select {
	case err := <-s.dht.RefreshRoutingTable():
		if err != nil {
			return fmt.Errorf("swarm: refreshing the DHT routing table: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
