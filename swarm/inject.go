package swarm

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// NewWithHost starts a node, like New, on a libp2p host the caller built
// (for example one of libp2p's in-memory mock network, for simulations of
// many nodes in one process). The node runs the same DHT, gossipsub,
// catalogue and block protocols as one New builds; the host's own
// transports, connection manager and gater are the caller's. cfg.Identity
// defaults to the host's key from its peerstore. Close closes h.
func NewWithHost(ctx context.Context, cfg Config, h host.Host) (*Swarm, error) {
	if h == nil {
		return nil, errors.New("swarm: NewWithHost needs a host; use New to build one")
	}
	if cfg.Identity == nil {
		cfg.Identity = h.Peerstore().PrivKey(h.ID())
		if cfg.Identity == nil {
			return nil, fmt.Errorf("swarm: the given host's peerstore has no private key for %s; set Config.Identity", h.ID())
		}
	}
	cfg.Host = h
	return New(ctx, cfg)
}

// openHost uses the injected Config.Host, or else builds the node's own
// host (startHost).
func (s *Swarm) openHost(key crypto.PrivKey, listen []ma.Multiaddr, private bool) error {
	h := s.cfg.Host
	if h == nil {
		return s.startHost(key, listen, private)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("swarm: node key: %w", err)
	}
	if id != h.ID() {
		return fmt.Errorf("swarm: the given host is %s but the node key is %s's; give the host's key as Config.Identity", h.ID(), id)
	}
	s.host = h
	s.hostRef.Store(&h)
	return nil
}
