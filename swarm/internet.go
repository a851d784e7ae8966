package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	madns "github.com/multiformats/go-multiaddr-dns"
)

// DefaultPort is the libp2p port (TCP and QUIC, IPv4 and IPv6) a node
// listens on unless told otherwise; when it is taken the node listens on a
// free port and says so.
const DefaultPort = 4747

// Rendezvous namespaces on the public DHT. Each is hashed into a CID by
// go-libp2p's routing discovery; the provider records under it are the only
// thing orchmind writes to the public DHT.
const (
	// RendezvousAll is where every orchmind node advertises itself.
	RendezvousAll  = "orchmind/v1/all"
	rendezvousBase = "orchmind/v1/base/"
	rendezvousRoom = "orchmind/v1/room/"
)

// BaseNamespace is the rendezvous namespace of the nodes running the base
// model of this fingerprint.
func BaseNamespace(fingerprint string) string { return rendezvousBase + fingerprint }

// RoomNamespace is the rendezvous namespace of a private room, derived from
// its gossip topic (itself derived from the room code by Argon2id and HKDF)
// by one more one-way hash: the namespace names the room to those who know
// the code and to nobody else.
func RoomNamespace(topic string) string {
	h := sha256.Sum256([]byte("orchmind rendezvous namespace\x00" + topic))
	return rendezvousRoom + hex.EncodeToString(h[:16])
}

// How a peer was found, as Network reports it.
const (
	SourceLAN        = "lan"              // mDNS on the local network
	SourcePublicDHT  = "public-dht"       // the rendezvous on the public DHT
	SourceBootstrap  = "bootstrap"        // a bootstrap address of the configuration
	SourcePublicBoot = "public-bootstrap" // a bootstrap peer of the public DHT
	SourceRemembered = "remembered"       // peers.json, from an earlier run
	SourceIncoming   = "incoming"         // it dialled us, or the orchmind DHT or a pull introduced it
)

// Reachability says how others can reach this node.
const (
	ReachPublic    = "public"       // AutoNAT: peers can dial our addresses
	ReachRelay     = "nat-relay"    // behind NAT, reachable through relays
	ReachNAT       = "nat"          // behind NAT, no relay reservation yet
	ReachUnknown   = "unknown"      // not known yet
	ReachLocalOnly = "local-only"   // --local-only: only the peers given
	connDirect     = "direct"       // a direct connection
	connRelayed    = "relayed"      // through a relay (limited)
	connPunched    = "hole-punched" // direct after DCUtR hole punching
)

// internet is the state of the internet-facing parts of a swarm: the
// public DHT rendezvous, how each peer was found, reachability, hole
// punches.
type internet struct {
	pub  *dht.IpfsDHT
	disc *drouting.RoutingDiscovery

	mu      sync.Mutex
	ns      []string // rendezvous namespaces advertised and searched
	kick    chan struct{}
	sources map[peer.ID]string
	punched map[peer.ID]bool
	reach   network.Reachability
	punches struct{ ok, failed int }
}

func newInternet() *internet {
	return &internet{kick: make(chan struct{}, 1), sources: map[peer.ID]string{}, punched: map[peer.ID]bool{}}
}

// setSource records how p was found, unless it is known already.
func (s *Swarm) setSource(p peer.ID, src string) {
	in := s.inet
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.sources[p]; !ok {
		in.sources[p] = src
	}
}

// source says how p was found.
func (s *Swarm) source(p peer.ID) string {
	in := s.inet
	in.mu.Lock()
	defer in.mu.Unlock()
	if src, ok := in.sources[p]; ok {
		return src
	}
	return SourceIncoming
}

// dialFound connects to a peer found by src in the background.
func (s *Swarm) dialFound(ai peer.AddrInfo, src string, timeout time.Duration) {
	if ai.ID == s.host.ID() || ai.ID == "" {
		return
	}
	s.setSource(ai.ID, src)
	if s.isConnected(ai.ID) {
		return
	}
	s.spawn(func() {
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		defer cancel()
		if err := s.host.Connect(ctx, ai); err != nil {
			s.log.Debug("could not reach a peer", "source", src, "peer", ai.ID.String(), "err", err)
		}
	})
}

// defaultListenAddrs are the listen addresses when none are configured: on
// 127.0.0.1 with free ports for LocalOnly; else TCP and QUIC on all IPv4
// and (where the machine has IPv6) IPv6 interfaces, on cfg.Port (0:
// DefaultPort; negative: any free port), or a free port when that one is
// taken.
func defaultListenAddrs(cfg Config, private bool, warn func(msg string, args ...any)) []ma.Multiaddr {
	if cfg.LocalOnly {
		l := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
		if !private {
			l = append(l, ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1"))
		}
		return l
	}
	port := cfg.Port
	if port == 0 {
		port = DefaultPort
	}
	if port < 0 {
		port = 0
	}
	v6 := hasIPv6()
	if port != 0 {
		if err := portFree(port, !private, v6); err != nil {
			warn(fmt.Sprintf("port %d is taken (another orchmind node?); listening on a free port instead: peers that remembered this node must find it again, and a router's port forward will not apply. Choose one with `orchmind config set port N`", port), "err", err)
			port = 0
		}
	}
	p := strconv.Itoa(port)
	var l []ma.Multiaddr
	for _, ip := range []string{"/ip4/0.0.0.0", "/ip6/::"} {
		if ip == "/ip6/::" && !v6 {
			continue
		}
		l = append(l, ma.StringCast(ip+"/tcp/"+p))
		if !private {
			l = append(l, ma.StringCast(ip+"/udp/"+p+"/quic-v1"))
		}
	}
	return l
}

// hasIPv6 reports whether the machine can open an IPv6 socket.
func hasIPv6() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// portFree checks that TCP (and UDP when udp) port is free on IPv4 (and IPv6).
func portFree(port int, udp, v6 bool) error {
	nets := []string{"tcp4"}
	if v6 {
		nets = append(nets, "tcp6")
	}
	for _, n := range nets {
		ln, err := net.Listen(n, net.JoinHostPort("", strconv.Itoa(port)))
		if err != nil {
			return err
		}
		_ = ln.Close()
	}
	if udp {
		unets := []string{"udp4"}
		if v6 {
			unets = append(unets, "udp6")
		}
		for _, n := range unets {
			pc, err := net.ListenPacket(n, net.JoinHostPort("", strconv.Itoa(port)))
			if err != nil {
				return err
			}
			_ = pc.Close()
		}
	}
	return nil
}

// resolveBootstrap turns addresses into peers: those ending in /p2p/<id>
// as they are, and /dnsaddr names without one through their DNS TXT
// records (each record an address with its /p2p/ part). A name that does
// not resolve is logged and skipped.
func resolveBootstrap(ctx context.Context, addrs []ma.Multiaddr, res *madns.Resolver, warn func(msg string, args ...any)) ([]peer.AddrInfo, error) {
	var direct []ma.Multiaddr
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
			direct = append(direct, a)
			continue
		}
		if _, err := a.ValueForProtocol(ma.P_DNSADDR); err != nil {
			return nil, fmt.Errorf("swarm: bootstrap address %s names no peer: give /ip4/…/tcp/…/p2p/<peer id> or a /dnsaddr/<name>", a)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		got, err := res.Resolve(rctx, a)
		cancel()
		if err != nil || len(got) == 0 {
			warn("a /dnsaddr bootstrap name did not resolve; skipping it", "name", a.String(), "err", err)
			continue
		}
		for _, g := range got {
			if _, err := g.ValueForProtocol(ma.P_P2P); err == nil {
				direct = append(direct, g)
			}
		}
	}
	return addrInfos(direct)
}

// startPublicDHT joins the public (Amino) DHT for the rendezvous: in
// client mode for users, in server mode for public helpers. Its
// bootstrap peers are cfg.PublicBootstrap, else libp2p's defaults.
func (s *Swarm) startPublicDHT() error {
	var boot []peer.AddrInfo
	if len(s.cfg.PublicBootstrap) == 0 {
		boot = dht.GetDefaultBootstrapPeerAddrInfos()
	} else {
		var err error
		if boot, err = resolveBootstrap(s.ctx, s.cfg.PublicBootstrap, madns.DefaultResolver, s.log.Warn); err != nil {
			return err
		}
	}
	boot = slices.DeleteFunc(boot, func(ai peer.AddrInfo) bool { return ai.ID == s.host.ID() })
	mode := dht.ModeClient
	if s.cfg.PublicHelper {
		mode = dht.ModeServer
	}
	pub, err := dht.New(s.host, dht.Mode(mode), dht.BootstrapPeers(boot...))
	if err != nil {
		return fmt.Errorf("swarm: joining the public DHT: %w", err)
	}
	s.inet.pub = pub
	s.inet.disc = drouting.NewRoutingDiscovery(pub)
	for _, ai := range boot {
		s.setSource(ai.ID, SourcePublicBoot)
		s.spawn(func() {
			ctx, cancel := context.WithTimeout(s.ctx, 20*time.Second)
			defer cancel()
			if err := s.host.Connect(ctx, ai); err != nil {
				s.log.Debug("could not reach a public DHT bootstrap peer", "peer", ai.ID.String(), "err", err)
			}
		})
	}
	if err := pub.Bootstrap(s.ctx); err != nil {
		s.log.Warn("public DHT bootstrap did not start", "err", err)
	}
	s.AddRendezvous(RendezvousAll)
	for _, ns := range s.cfg.Rendezvous {
		s.AddRendezvous(ns)
	}
	s.spawn(s.rendezvousLoop)
	return nil
}

// AddRendezvous adds a namespace this node advertises itself under and
// looks for peers in on the public DHT (BaseNamespace, RoomNamespace). It
// does nothing without the public DHT.
func (s *Swarm) AddRendezvous(ns string) {
	in := s.inet
	in.mu.Lock()
	if slices.Contains(in.ns, ns) {
		in.mu.Unlock()
		return
	}
	in.ns = append(in.ns, ns)
	in.mu.Unlock()
	select {
	case in.kick <- struct{}{}:
	default:
	}
}

// Rendezvous lists the namespaces advertised on the public DHT (none
// without it).
func (s *Swarm) Rendezvous() []string {
	in := s.inet
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.pub == nil {
		return nil
	}
	return slices.Clone(in.ns)
}

// rendezvousLoop advertises this node under every namespace and looks for
// other orchmind nodes there: quickly (every few seconds) while the public
// DHT has no peers or nothing was found, then every few minutes.
func (s *Swarm) rendezvousLoop() {
	in := s.inet
	advertised := map[string]time.Time{}
	wait := 2 * time.Second
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-in.kick:
		case <-time.After(wait):
		}
		if in.pub.RoutingTable().Size() == 0 {
			wait = 2 * time.Second
			continue
		}
		in.mu.Lock()
		nss := slices.Clone(in.ns)
		in.mu.Unlock()
		for _, ns := range nss {
			if time.Now().After(advertised[ns]) {
				ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
				ttl, err := in.disc.Advertise(ctx, ns)
				cancel()
				if err != nil {
					s.log.Debug("rendezvous: advertising failed", "ns", ns, "err", err)
				} else {
					s.log.Debug("rendezvous: advertised", "ns", ns)
					advertised[ns] = time.Now().Add(min(ttl*7/8, time.Hour))
				}
			}
			s.findRendezvous(ns)
		}
		// Look again soon until an orchmind peer found here is connected
		// (peers behind NAT become reachable once they hold a relay slot),
		// then every few minutes.
		if s.connectedFromRendezvous() {
			wait = 5 * time.Minute
		} else {
			wait = min(max(wait*2, 5*time.Second), 15*time.Second)
		}
	}
}

// connectedFromRendezvous reports whether an orchmind peer found through
// the rendezvous is connected (a relayed connection counts).
func (s *Swarm) connectedFromRendezvous() bool {
	for _, p := range s.host.Network().Peers() {
		if s.source(p) != SourcePublicDHT {
			continue
		}
		if ok, _ := s.host.Peerstore().SupportsProtocols(p, CatalogueProtocol); len(ok) > 0 {
			return true
		}
	}
	return false
}

// findRendezvous looks up ns and dials the orchmind nodes found there that
// we are not connected to; it returns how many other nodes advertise ns.
func (s *Swarm) findRendezvous(ns string) int {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	ch, err := s.inet.disc.FindPeers(ctx, ns)
	if err != nil {
		s.log.Debug("rendezvous: lookup failed", "ns", ns, "err", err)
		return 0
	}
	n := 0
	for ai := range ch {
		if ai.ID == s.host.ID() {
			continue
		}
		n++
		s.dialFound(ai, SourcePublicDHT, 45*time.Second)
	}
	return n
}

// orchmindPeerTag is the connection manager's tag (and weight) on orchmind
// peers: with the public DHT's many short connections around, the
// connection manager trims those first.
const (
	orchmindPeerTag    = "orchmind"
	orchmindPeerWeight = 50
)

// watchReachability follows AutoNAT's verdict, and tags orchmind peers for
// the connection manager once identified.
func (s *Swarm) watchReachability() error {
	sub, err := s.host.EventBus().Subscribe([]any{new(event.EvtLocalReachabilityChanged), new(event.EvtPeerIdentificationCompleted)})
	if err != nil {
		return fmt.Errorf("swarm: watching reachability: %w", err)
	}
	s.spawn(func() {
		defer sub.Close()
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
						s.host.ConnManager().TagPeer(e.Peer, orchmindPeerTag, orchmindPeerWeight)
					}
				case event.EvtLocalReachabilityChanged:
					s.inet.mu.Lock()
					s.inet.reach = e.Reachability
					s.inet.mu.Unlock()
					s.log.Info("reachability changed", "reachability", e.Reachability.String())
				}
			}
		}
	})
	return nil
}

// holePunchTracer records the outcome of DCUtR hole punches.
type holePunchTracer struct{ s *Swarm }

// Trace implements holepunch.EventTracer.
func (t holePunchTracer) Trace(evt *holepunch.Event) {
	e, ok := evt.Evt.(*holepunch.EndHolePunchEvt)
	if !ok {
		return
	}
	in := t.s.inet
	in.mu.Lock()
	defer in.mu.Unlock()
	if e.Success {
		in.punches.ok++
		in.punched[evt.Remote] = true
	} else {
		in.punches.failed++
	}
}

// PeerInfo describes one connected peer for Network.
type PeerInfo struct {
	ID peer.ID
	// Addrs are the remote addresses of the open connections.
	Addrs []ma.Multiaddr
	// Orchmind is true for peers that speak orchmind's catalogue protocol
	// (the others are public DHT nodes and relays).
	Orchmind bool
	// Source says how the peer was found (SourceLAN, SourcePublicDHT, …).
	Source string
	// Conn is "direct", "relayed" or "hole-punched".
	Conn string
}

// NetworkStatus says how this node is reachable and how it found its peers.
type NetworkStatus struct {
	// Reachability is ReachPublic, ReachRelay, ReachNAT, ReachUnknown or
	// ReachLocalOnly.
	Reachability string
	// Addrs are the addresses the node tells peers (relay addresses
	// included).
	Addrs []ma.Multiaddr
	// PublicDHT says whether the rendezvous on the public DHT runs, and
	// PublicDHTPeers how many public DHT servers its routing table holds.
	PublicDHT      bool
	PublicDHTPeers int
	// Rendezvous lists the namespaces advertised.
	Rendezvous []string
	// HolePunches counts DCUtR attempts that succeeded and failed.
	HolePunches, HolePunchFailures int
	// Peers are the connected peers.
	Peers []PeerInfo
}

// Network reports how the node is reachable and how it found its peers.
func (s *Swarm) Network() NetworkStatus {
	in := s.inet
	st := NetworkStatus{Addrs: s.Addrs()}
	relayAddr := false
	for _, a := range s.host.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			relayAddr = true
		}
	}
	in.mu.Lock()
	reach := in.reach
	st.HolePunches, st.HolePunchFailures = in.punches.ok, in.punches.failed
	punched := maps.Clone(in.punched)
	in.mu.Unlock()
	switch {
	case s.cfg.LocalOnly:
		st.Reachability = ReachLocalOnly
	case reach == network.ReachabilityPublic || s.cfg.PublicHelper:
		st.Reachability = ReachPublic
	case relayAddr:
		st.Reachability = ReachRelay
	case reach == network.ReachabilityPrivate:
		st.Reachability = ReachNAT
	default:
		st.Reachability = ReachUnknown
	}
	if in.pub != nil {
		st.PublicDHT = true
		st.PublicDHTPeers = in.pub.RoutingTable().Size()
		st.Rendezvous = s.Rendezvous()
	}
	for _, p := range s.host.Network().Peers() {
		pi := PeerInfo{ID: p, Source: s.source(p), Conn: connRelayed}
		for _, c := range s.host.Network().ConnsToPeer(p) {
			pi.Addrs = append(pi.Addrs, c.RemoteMultiaddr())
			if !c.Stat().Limited {
				pi.Conn = connDirect
			}
		}
		if pi.Conn == connDirect && punched[p] {
			pi.Conn = connPunched
		}
		if ok, _ := s.host.Peerstore().SupportsProtocols(p, CatalogueProtocol); len(ok) > 0 {
			pi.Orchmind = true
		}
		st.Peers = append(st.Peers, pi)
	}
	slices.SortFunc(st.Peers, func(a, b PeerInfo) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return st
}
