package swarm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"orchmind/internal/atomicfile"
)

// PeersFile is the file in the data folder that holds the orchmind peers
// this node was recently connected to; they are dialled at the next start.
const PeersFile = "peers.json"

// maxRemembered bounds the peers kept in PeersFile (newest first).
const maxRemembered = 64

// rememberFor is how long a peer not seen again stays in PeersFile.
const rememberFor = 30 * 24 * time.Hour

// RememberedPeer is one entry of PeersFile.
type RememberedPeer struct {
	ID     string    `json:"id"`
	Addrs  []string  `json:"addrs"`
	Seen   time.Time `json:"seen"`
	Source string    `json:"source,omitempty"`
}

type peersFile struct {
	Version int              `json:"version"`
	Peers   []RememberedPeer `json:"peers"`
}

// LoadRememberedPeers reads dataDir's PeersFile; a missing file is no
// peers, a damaged one an error that says to delete it.
func LoadRememberedPeers(dataDir string) ([]RememberedPeer, error) {
	path := filepath.Join(dataDir, PeersFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("swarm: remembered peers: %w", err)
	}
	var f peersFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("swarm: remembered peers %s are not valid JSON (%v); delete the file, the node finds its peers again", path, err)
	}
	return f.Peers, nil
}

// rememberPeers merges the connected orchmind peers into PeersFile.
func (s *Swarm) rememberPeers() error {
	if s.cfg.DataDir == "" || s.host == nil {
		return nil
	}
	old, err := LoadRememberedPeers(s.cfg.DataDir)
	if err != nil {
		s.log.Warn("replacing the damaged remembered-peers file", "err", err)
		old = nil
	}
	now := time.Now().UTC()
	byID := map[string]RememberedPeer{}
	for _, p := range old {
		if now.Sub(p.Seen) < rememberFor {
			byID[p.ID] = p
		}
	}
	for _, pi := range s.Network().Peers {
		if !pi.Orchmind {
			continue
		}
		rp := RememberedPeer{ID: pi.ID.String(), Seen: now, Source: pi.Source}
		if prev, ok := byID[rp.ID]; ok && prev.Source != "" && pi.Source == SourceRemembered {
			rp.Source = prev.Source // keep how it was first found
		}
		// The addresses of the open direct connections first (those work
		// now, through NATs too), then what the peer says it listens on.
		var addrs []ma.Multiaddr
		if pi.Conn != connRelayed {
			addrs = append(addrs, pi.Addrs...)
		}
		for _, a := range dialable(append(addrs, s.host.Peerstore().Addrs(pi.ID)...)) {
			if !slices.Contains(rp.Addrs, a.String()) {
				rp.Addrs = append(rp.Addrs, a.String())
			}
		}
		if len(rp.Addrs) == 0 {
			continue
		}
		byID[rp.ID] = rp
	}
	list := make([]RememberedPeer, 0, len(byID))
	for _, p := range byID {
		list = append(list, p)
	}
	slices.SortFunc(list, func(a, b RememberedPeer) int { return b.Seen.Compare(a.Seen) })
	if len(list) > maxRemembered {
		list = list[:maxRemembered]
	}
	b, err := json.MarshalIndent(peersFile{Version: 1, Peers: list}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(s.cfg.DataDir, PeersFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("swarm: saving remembered peers: %w", err)
	}
	return nil
}

// dialable drops addresses no one else can use (loopback is kept: nodes
// on one machine find each other by it).
func dialable(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if ip, err := a.ValueForProtocol(ma.P_IP6); err == nil && (ip == "::" || len(ip) > 4 && ip[:4] == "fe80") {
			continue
		}
		if ip, err := a.ValueForProtocol(ma.P_IP4); err == nil && ip == "0.0.0.0" {
			continue
		}
		out = append(out, a)
	}
	return out
}

// dialRemembered dials the peers of PeersFile and then keeps the file up
// to date every minute (and at Close).
func (s *Swarm) dialRemembered() {
	peers, err := LoadRememberedPeers(s.cfg.DataDir)
	if err != nil {
		s.log.Warn("remembered peers not read", "err", err)
	}
	for _, rp := range peers {
		id, err := peer.Decode(rp.ID)
		if err != nil {
			continue
		}
		ai := peer.AddrInfo{ID: id}
		for _, a := range rp.Addrs {
			if m, err := ma.NewMultiaddr(a); err == nil {
				ai.Addrs = append(ai.Addrs, m)
			}
		}
		if len(ai.Addrs) > 0 {
			s.dialFound(ai, SourceRemembered, 30*time.Second)
		}
	}
	if len(peers) > 0 {
		s.log.Info("dialling remembered peers", "peers", len(peers))
	}
	s.spawn(func() {
		t := time.NewTicker(s.cfg.RememberInterval)
		defer t.Stop()
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				if err := s.rememberPeers(); err != nil {
					s.log.Warn("remembered peers not saved", "err", err)
				}
			}
		}
	})
}
