package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/bitswap"
	bsnet "github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	circuitproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	madns "github.com/multiformats/go-multiaddr-dns"
)

// DHTProtocolPrefix is the Kademlia protocol prefix: orchmind's DHT speaks
// /orchmind/kad/1.0.0 and never mixes with the public IPFS DHT.
const DHTProtocolPrefix = "/orchmind"

// MDNSServiceName is the mDNS service name under which nodes find each
// other on the local network.
const MDNSServiceName = "orchmind"

// DHTMode selects whether this node answers DHT queries for others.
type DHTMode int

const (
	// DHTAuto serves DHT queries only once AutoNAT finds the node publicly
	// reachable (the right choice for users).
	DHTAuto DHTMode = iota
	// DHTServer always serves DHT queries (bootstrap nodes, tests on one machine).
	DHTServer
	// DHTClient never serves DHT queries.
	DHTClient
)

// Announcement is what the swarm needs to know about a verified announcement.
type Announcement struct {
	// Root is the CID of the adapter's DAG.
	Root cid.Cid
	// Base is the fingerprint of the base model the adapter was trained on.
	Base string
	// Author is the peer that signed the announcement.
	Author peer.ID
	// Created is when the author made it.
	Created time.Time
	// Decoded is whatever else the Validator decoded (the node keeps its
	// parsed announcement here, so the catalogue is the one store of what
	// it has seen); the swarm does not read it.
	Decoded any
}

// Validator decodes signed announcement bytes and checks their signature.
// It returns an error for anything that does not decode or verify; from is
// the peer the bytes came from (informational: the author check is done by
// the swarm).
type Validator func(ctx context.Context, from peer.ID, data []byte) (Announcement, error)

// Received is an announcement that passed validation.
type Received struct {
	Announcement
	// From is the peer that delivered it (the author or a peer that forwarded it).
	From peer.ID
	// Data is the signed announcement exactly as its author encoded it.
	Data []byte
	// Private marks an announcement from a private room (RememberRoom):
	// kept and listed here, never served to peers.
	Private bool
}

// Config configures a swarm node. The zero value plus a DataDir and a
// Validator is usable; DefaultConfig gives the settings meant for users.
type Config struct {
	// DataDir holds the node key (identity.key). Required.
	DataDir string
	// Identity is the node's key when the caller has loaded it already
	// (LoadOrCreateIdentity); nil loads or creates it in DataDir.
	Identity crypto.PrivKey
	// ListenAddrs default to /ip4/0.0.0.0/tcp/0 and /ip4/0.0.0.0/udp/0/quic-v1
	// (TCP only with a private network key).
	ListenAddrs []ma.Multiaddr
	// Bootstrap peers are dialled on start; each address must end in /p2p/<id>.
	Bootstrap []ma.Multiaddr
	// MDNS finds peers on the local network. Off in the zero value; on in
	// DefaultConfig.
	MDNS bool
	// PrivateNetworkKey, if set, is a 32-byte pre-shared key: only nodes with
	// the same key can connect. Forces TCP only (QUIC cannot use it).
	PrivateNetworkKey []byte
	// ConnMgrLow and ConnMgrHigh are the connection manager's water marks
	// (defaults DefaultConnMgrLow and DefaultConnMgrHigh).
	ConnMgrLow, ConnMgrHigh int
	// ConnMgrGrace is how long a new connection is spared from trimming
	// (default ConnMgrGracePeriod).
	ConnMgrGrace time.Duration
	// DHTMode defaults to DHTAuto.
	DHTMode DHTMode
	// Blockstore holds the blocks this node serves and fetches. Required.
	Blockstore blockstore.Blockstore
	// Validator decodes and verifies announcements. Required.
	Validator Validator
	// PinnedRoots lists the roots to re-provide to the DHT periodically; nil
	// disables reproviding.
	PinnedRoots func(ctx context.Context) ([]cid.Cid, error)
	// ReprovideInterval defaults to 12 hours.
	ReprovideInterval time.Duration
	// OnAnnouncement is called (from a swarm goroutine, one call at a time)
	// for every announcement newly added to the catalogue, from gossip or
	// from a catalogue exchange (for example to persist them).
	OnAnnouncement func(Received)
	// CatalogueSize bounds the announcements learned from peers that the
	// in-memory catalogue keeps (default 4096); see MaxClockSkew and
	// Catalogue for the quotas and what is never evicted.
	CatalogueSize int
	// AnnounceRate is how many announcements per minute one author may send
	// before further ones are dropped (default 10).
	AnnounceRate int
	// PeerAnnounceRate is how many announcements per minute (per topic) one
	// peer may forward, whoever their authors, before further ones are
	// dropped and cost it FloodPenalty each (default 4 × AnnounceRate).
	PeerAnnounceRate int
	// GlobalAnnounceRate is how many announcements per minute (per topic)
	// all peers together may bring (default 20 × AnnounceRate).
	GlobalAnnounceRate int
	// ScoreInspectPeriod is how often gossipsub peer scores are sampled for
	// PeerScores and MeshPeers (default 10 s: each sample scores every
	// peer, a few per cent of a node's CPU at 1 s with ~150 peers).
	ScoreInspectPeriod time.Duration
	// NoNATPortMap disables asking the router for a port mapping (tests).
	NoNATPortMap bool
	// LocalOnly makes the node talk to nothing but the peers it is given
	// (bootstrap addresses, Connect) and the peers those introduce: no NAT
	// port mapping (UPnP / NAT-PMP), no mDNS whatever MDNS says, no AutoNAT
	// probes or dial-back service, no relays (client, AutoRelay discovery)
	// and no hole punching. The node declares itself reachable, so DHTAuto
	// serves the DHT at once, and the default listen addresses are on
	// 127.0.0.1. For tests, the demo, benchmarks and CI, where nothing may
	// be sent to a router, a multicast group or the LAN; Services reports
	// what actually runs.
	LocalOnly bool
	// Port is the libp2p port of the default listen addresses (TCP and
	// QUIC, IPv4 and IPv6): 0 means DefaultPort, negative any free port. A
	// taken port falls back to a free one with a warning. Ignored with
	// ListenAddrs or LocalOnly.
	Port int
	// PublicDHT joins the public IPFS DHT (Amino) in client mode to find
	// other orchmind nodes through rendezvous records (see internet.go).
	// Off in the zero value, on in DefaultConfig; LocalOnly turns it off.
	PublicDHT bool
	// PublicBootstrap replaces libp2p's default bootstrap peers of the
	// public DHT (tests, labs, private deployments); /dnsaddr names
	// without a /p2p/ part are resolved at start.
	PublicBootstrap []ma.Multiaddr
	// PublicHelper serves others: the public DHT in server mode, the relay
	// service and DHT server mode on the orchmind DHT, whatever AutoNAT says
	// (for an always-on machine with a public address).
	PublicHelper bool
	// Rendezvous are extra namespaces to advertise and search on the public
	// DHT from the start (BaseNamespace; rooms add theirs when joined).
	Rendezvous []string
	// RememberInterval is how often the connected orchmind peers are saved
	// to PeersFile (default 1 minute; they are also saved at Close).
	RememberInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Host, if set, is used instead of a libp2p host of the node's own
	// (see NewWithHost); the listen, transport and NAT settings are unused.
	Host host.Host

	// bitswapServes, if set, says which blocks this node's bitswap server
	// gives to which peer (a test's node that holds blocks but whose
	// bitswap never delivers them, as a stalled session sees it).
	bitswapServes func(peer.ID, cid.Cid) bool
}

// DefaultConfig returns the settings meant for users: mDNS on, DHT mode auto,
// default listen addresses and limits.
func DefaultConfig(dataDir string) Config {
	return Config{DataDir: dataDir, MDNS: true, DHTMode: DHTAuto, PublicDHT: true}
}

// Swarm is a running libp2p node.
type Swarm struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	host    host.Host
	dht     *dht.IpfsDHT
	ps      *pubsub.PubSub
	bswap   *bitswap.Bitswap
	bserv   blockservice.BlockService
	mdns    mdnsCloser
	natmgr  atomic.Bool // the NAT port-mapping manager was created
	opted   Services    // the optional services the host was asked for
	gossip  *gossip
	catalog *catalogue
	audit   *blockAudit
	bases   *basesState   // base announcements (bases.go); nil until EnableBases
	serving chan struct{} // BlocksProtocol answers under way

	servingMu   sync.Mutex
	servingPeer map[peer.ID]int // BlocksProtocol answers under way, per peer
	serveBufs   sync.Pool       // *[]byte of maxBlockSize: blocks read to serve

	holders      *holderTable    // who holds the DAGs this node serves (holders.go)
	fetchingBlks *fetchingBlocks // fetched blocks served before they are stored

	closeOnce sync.Once
	mu        sync.Mutex // guards closed, and wg.Go against wg.Wait
	closed    bool
	hostRef   atomic.Pointer[host.Host]
	inet      *internet // public DHT rendezvous, peer sources, reachability
}

type mdnsCloser interface{ Close() error }

// Services says which of the host's optional network services run: those
// that can send packets to others than the peers the node was given — the
// router, a multicast group, relays, addresses peers merely claim.
type Services struct {
	// NATPortMap asks the router for a port mapping (UPnP discovery
	// multicast to 239.255.255.250, NAT-PMP to the default gateway).
	NATPortMap bool
	// MDNS announces the node and looks for peers by multicast DNS on the LAN.
	MDNS bool
	// AutoNATProbes asks connected peers to dial back to learn whether the
	// node is reachable.
	AutoNATProbes bool
	// AutoNATService dials back peers that ask, at the addresses they give.
	AutoNATService bool
	// Relay is the circuit-relay v2 client: dialling and being dialled
	// through relays.
	Relay bool
	// AutoRelay looks for relays among connected peers and reserves slots.
	AutoRelay bool
	// HolePunching (DCUtR) dials peers' observed addresses in step with them.
	HolePunching bool
}

// Any reports whether any of the services runs.
func (v Services) Any() bool { return v != Services{} }

// String lists the running services by name, or says "none".
func (v Services) String() string {
	var on []string
	for _, f := range []struct {
		on   bool
		name string
	}{{v.NATPortMap, "nat-portmap"}, {v.MDNS, "mdns"}, {v.AutoNATProbes, "autonat-probes"}, {v.AutoNATService, "autonat-service"},
		{v.Relay, "relay"}, {v.AutoRelay, "autorelay"}, {v.HolePunching, "hole-punching"}} {
		if f.on {
			on = append(on, f.name)
		}
	}
	if len(on) == 0 {
		return "none"
	}
	return strings.Join(on, ",")
}

// Services reports which optional network services this node runs. NAT port
// mapping, mDNS, AutoNAT and the relay client are read from the running
// host (the port-mapping manager's construction, the mDNS service, the
// AutoNAT kind, the protocols the host answers); AutoRelay and hole punching
// are what the host was configured with.
func (s *Swarm) Services() Services {
	v := s.opted
	v.NATPortMap = s.natmgr.Load()
	v.MDNS = s.mdns != nil
	if s.host == nil {
		return v
	}
	if h, ok := s.host.(interface{ GetAutoNat() autonat.AutoNAT }); ok {
		_, static := h.GetAutoNat().(*autonat.StaticAutoNAT)
		v.AutoNATProbes = h.GetAutoNat() != nil && !static
	}
	for _, p := range s.host.Mux().Protocols() {
		switch p {
		case autonat.AutoNATProto:
			v.AutoNATService = true
		case circuitproto.ProtoIDv2Stop:
			v.Relay = true
		}
	}
	return v
}

// New starts a node: host, DHT, gossipsub, catalogue protocol and bitswap,
// then dials the bootstrap peers. It returns once the host listens; the
// bootstrap dials and the DHT bootstrap continue in the background. Close
// stops it. ctx only bounds the start-up.
func New(ctx context.Context, cfg Config) (*Swarm, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("component", "swarm")
	if cfg.Blockstore == nil {
		return nil, errors.New("swarm: no blockstore given; set Config.Blockstore to the node's content store")
	}
	if cfg.Validator == nil {
		return nil, errors.New("swarm: no announcement validator given; set Config.Validator")
	}
	if cfg.ConnMgrLow <= 0 {
		cfg.ConnMgrLow = DefaultConnMgrLow
	}
	if cfg.ConnMgrHigh <= 0 {
		cfg.ConnMgrHigh = DefaultConnMgrHigh
	}
	if cfg.ConnMgrGrace <= 0 {
		cfg.ConnMgrGrace = ConnMgrGracePeriod
	}
	if cfg.ConnMgrHigh < cfg.ConnMgrLow {
		return nil, fmt.Errorf("swarm: connection manager high water mark %d is below the low one %d; raise the high mark", cfg.ConnMgrHigh, cfg.ConnMgrLow)
	}
	if cfg.ReprovideInterval <= 0 {
		cfg.ReprovideInterval = 12 * time.Hour
	}
	if cfg.CatalogueSize <= 0 {
		cfg.CatalogueSize = 4096
	}
	if cfg.AnnounceRate <= 0 {
		cfg.AnnounceRate = 10
	}
	if cfg.PeerAnnounceRate <= 0 {
		cfg.PeerAnnounceRate = 4 * cfg.AnnounceRate
	}
	if cfg.GlobalAnnounceRate <= 0 {
		cfg.GlobalAnnounceRate = 20 * cfg.AnnounceRate
	}
	if cfg.ScoreInspectPeriod <= 0 {
		cfg.ScoreInspectPeriod = 10 * time.Second
	}
	private := len(cfg.PrivateNetworkKey) > 0
	if private && len(cfg.PrivateNetworkKey) != 32 {
		return nil, fmt.Errorf("swarm: private network key is %d bytes, want 32; generate one with `head -c 32 /dev/urandom`", len(cfg.PrivateNetworkKey))
	}
	if cfg.RememberInterval <= 0 {
		cfg.RememberInterval = time.Minute
	}
	if cfg.LocalOnly {
		cfg.MDNS = false
		cfg.NoNATPortMap = true
		cfg.PublicDHT = false
		cfg.PublicHelper = false
	}
	bootstrap, err := resolveBootstrap(ctx, cfg.Bootstrap, madns.DefaultResolver, log.Warn)
	if err != nil {
		return nil, err
	}
	listen := cfg.ListenAddrs
	if len(listen) == 0 {
		listen = defaultListenAddrs(cfg, private, log.Warn)
	}
	if private {
		var tcpOnly []ma.Multiaddr
		for _, a := range listen {
			if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
				tcpOnly = append(tcpOnly, a)
			} else {
				log.Warn("ignoring a non-TCP listen address: a private network runs over TCP only", "addr", a.String())
			}
		}
		if len(tcpOnly) == 0 {
			return nil, errors.New("swarm: a private network needs at least one TCP listen address, e.g. /ip4/0.0.0.0/tcp/4001")
		}
		listen = tcpOnly
	}

	key := cfg.Identity
	if key == nil {
		var err error
		if key, err = LoadOrCreateIdentity(cfg.DataDir, log); err != nil {
			return nil, err
		}
	}

	s := &Swarm{cfg: cfg, log: log, audit: newBlockAudit(), serving: make(chan struct{}, maxServing), servingPeer: map[peer.ID]int{}, inet: newInternet()}
	s.serveBufs.New = func() any { b := make([]byte, maxBlockSize); return &b }
	s.holders, s.fetchingBlks = newHolderTable(), newFetchingBlocks()
	s.audit.isWanted = s.genuine
	s.audit.onBad = s.onBadBlock
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	if err := s.openHost(key, listen, private); err != nil {
		return nil, err
	}
	log = log.With("peer", s.host.ID().String())
	s.log = log

	// The catalogue protocol and gossipsub start before the DHT, whose
	// bootstrap dials the first peers: what they register then is in place
	// when those peers identify us.
	s.catalog = newCatalogue(cfg.CatalogueSize, s.host.ID(), cfg.PinnedRoots)
	if err := s.startCatalogueProtocol(); err != nil {
		return nil, err
	}
	if s.gossip, err = s.startGossip(); err != nil {
		return nil, err
	}

	mode := dht.ModeAuto
	switch {
	case cfg.DHTMode == DHTServer, cfg.DHTMode == DHTAuto && (cfg.LocalOnly || cfg.PublicHelper):
		mode = dht.ModeServer
	case cfg.DHTMode == DHTClient:
		mode = dht.ModeClient
	}
	s.dht, err = dht.New(s.host,
		dht.ProtocolPrefix(DHTProtocolPrefix),
		dht.Mode(mode),
		dht.BootstrapPeers(bootstrap...),
	)
	if err != nil {
		return nil, fmt.Errorf("swarm: starting the DHT: %w", err)
	}

	s.bswap = bitswap.New(s.ctx, bsnet.NewFromIpfsHost(s.host), s.dht, cfg.Blockstore, s.bitswapOptions()...)
	s.bserv = blockservice.New(cfg.Blockstore, s.bswap)
	s.host.SetStreamHandler(BlocksProtocol, s.serveBlocks)
	s.host.SetStreamHandler(HoldersProtocol, s.serveHolders)

	if cfg.MDNS {
		svc := mdns.NewMdnsService(s.host, MDNSServiceName, mdnsNotifee{s})
		if err := svc.Start(); err != nil {
			log.Warn("local network discovery (mDNS) did not start; peers on the LAN must be given as bootstrap addresses", "err", err)
		} else {
			s.mdns = svc
		}
	}

	for _, ai := range bootstrap {
		s.setSource(ai.ID, SourceBootstrap)
		s.spawn(func() {
			cctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
			defer cancel()
			if err := s.host.Connect(cctx, ai); err != nil {
				log.Warn("could not reach a bootstrap peer", "bootstrap", ai.ID.String(), "err", err)
			}
		})
	}
	if err := s.dht.Bootstrap(s.ctx); err != nil {
		log.Warn("DHT bootstrap did not start", "err", err)
	}
	if cfg.PinnedRoots != nil {
		s.spawn(s.reprovideLoop)
	}
	if err := s.watchReachability(); err != nil {
		return nil, err
	}
	s.dialRemembered()
	if cfg.PublicDHT {
		if err := s.startPublicDHT(); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("swarm: start-up cancelled: %w", err)
	}
	ok = true
	log.Info("swarm started", "addrs", fmt.Sprint(s.host.Addrs()), "services", s.Services().String())
	return s, nil
}

func (s *Swarm) startHost(key crypto.PrivKey, listen []ma.Multiaddr, private bool) error {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.AutoScale()))
	if err != nil {
		return fmt.Errorf("swarm: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(s.cfg.ConnMgrLow, s.cfg.ConnMgrHigh, connmgr.WithGracePeriod(s.cfg.ConnMgrGrace))
	if err != nil {
		return fmt.Errorf("swarm: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrs(listen...),
		// TLS first: its AES-GCM runs at several GB/s per core with AES-NI,
		// Noise's ChaCha20-Poly1305 at about a third of that, and bulk
		// transfers are bound by it. Both are offered (kubo speaks both).
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(s.audit),
		libp2p.UserAgent("orchmind"),
		// Nothing serves Prometheus metrics, and collecting them costs CPU
		// on every stream and connection (and registers globally).
		libp2p.DisableMetrics(),
	}
	if private {
		opts = append(opts, libp2p.PrivateNetwork(pnet.PSK(s.cfg.PrivateNetworkKey)))
	} else {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	if s.cfg.LocalOnly {
		// Reachable by the peers it is given, which is all it talks to:
		// AutoNAT runs no probes and DHTAuto serves.
		opts = append(opts, libp2p.DisableRelay(), libp2p.ForceReachabilityPublic())
	} else {
		opts = append(opts,
			libp2p.EnableNATService(),
			libp2p.EnableHolePunching(holepunch.WithTracer(holePunchTracer{s})),
			libp2p.EnableRelay(),
			// The relay service starts only while AutoNAT finds the node
			// publicly reachable, with libp2p's default resource limits.
			libp2p.EnableRelayService(),
			// One relay candidate is enough to start: a home node knows few
			// peers, and the default (4 candidates or 3 minutes) keeps it
			// unreachable for minutes.
			libp2p.EnableAutoRelayWithPeerSource(s.relayCandidates,
				autorelay.WithMinCandidates(1), autorelay.WithBootDelay(20*time.Second), autorelay.WithMinInterval(10*time.Second)),
		)
		if s.cfg.PublicHelper {
			opts = append(opts, libp2p.ForceReachabilityPublic())
		}
		s.opted.HolePunching, s.opted.AutoRelay = true, true
	}
	if !s.cfg.NoNATPortMap {
		opts = append(opts, libp2p.NATManager(func(n network.Network) basichost.NATManager {
			s.natmgr.Store(true)
			return basichost.NewNATManager(n)
		}))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		_ = rm.Close()
		_ = cm.Close()
		return fmt.Errorf("swarm: starting the libp2p host (is the listen port already in use?): %w", err)
	}
	s.host = h
	s.hostRef.Store(&h)
	return nil
}

// relayCandidates offers the peers we are connected to as relay candidates;
// AutoRelay keeps only those that run a relay service.
func (s *Swarm) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	hp := s.hostRef.Load()
	if hp == nil {
		return out
	}
	h := *hp
	for _, p := range h.Network().Peers() {
		if len(out) == num {
			break
		}
		out <- peer.AddrInfo{ID: p, Addrs: h.Peerstore().Addrs(p)}
	}
	return out
}

type mdnsNotifee struct{ s *Swarm }

func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	s := n.s
	if ai.ID == s.host.ID() || s.ctx.Err() != nil {
		return
	}
	s.setSource(ai.ID, SourceLAN)
	s.spawn(func() {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		defer cancel()
		if err := s.host.Connect(ctx, ai); err != nil {
			s.log.Debug("could not connect to a LAN peer found by mDNS", "peer", ai.ID.String(), "err", err)
		}
	})
}

func addrInfos(addrs []ma.Multiaddr) ([]peer.AddrInfo, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return nil, fmt.Errorf("swarm: bad bootstrap address (each must end in /p2p/<peer id>, e.g. /ip4/1.2.3.4/tcp/4001/p2p/12D3Koo...): %w", err)
	}
	return infos, nil
}

// Host returns the libp2p host.
func (s *Swarm) Host() host.Host { return s.host }

// ID returns this node's peer ID.
func (s *Swarm) ID() peer.ID { return s.host.ID() }

// Addrs returns the node's addresses, each ending in /p2p/<id>, ready to be
// given to another node as a bootstrap address.
func (s *Swarm) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: s.host.ID(), Addrs: s.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// Connect dials a peer (and keeps its addresses in the peerstore).
func (s *Swarm) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if err := s.host.Connect(ctx, ai); err != nil {
		return fmt.Errorf("swarm: connecting to %s: %w", ai.ID, err)
	}
	return nil
}

// ConnectPeer connects to p by its ID alone: with the addresses in the
// peerstore, or else those the DHT finds for it.
func (s *Swarm) ConnectPeer(ctx context.Context, p peer.ID) error {
	if p == s.host.ID() {
		return errors.New("swarm: connecting to ourselves")
	}
	if s.isConnected(p) {
		return nil
	}
	if addrs := s.host.Peerstore().Addrs(p); len(addrs) > 0 {
		if err := s.host.Connect(ctx, peer.AddrInfo{ID: p, Addrs: addrs}); err == nil {
			return nil
		}
	}
	ai, err := s.dht.FindPeer(ctx, p)
	if err != nil {
		return fmt.Errorf("swarm: looking up %s in the DHT: %w", p, err)
	}
	return s.Connect(ctx, ai)
}

// Peers lists the peers with an open connection.
func (s *Swarm) Peers() []peer.ID { return s.host.Network().Peers() }

// Connected reports whether the node has a connection to p.
func (s *Swarm) Connected(p peer.ID) bool {
	return s.host.Network().Connectedness(p) == network.Connected
}

// PeerAddrs returns the addresses the node knows for p.
func (s *Swarm) PeerAddrs(p peer.ID) []ma.Multiaddr { return s.host.Peerstore().Addrs(p) }

// LearnAddrs remembers addresses of a peer (a DHT provider record's) for
// ttl, so that ConnectPeer can dial it.
func (s *Swarm) LearnAddrs(ai peer.AddrInfo, ttl time.Duration) {
	if len(ai.Addrs) > 0 {
		s.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, ttl)
	}
}

// Close stops the node: background loops, mDNS, bitswap, DHT, host.
func (s *Swarm) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		if s.host != nil {
			if err := s.rememberPeers(); err != nil {
				s.log.Warn("remembered peers not saved", "err", err)
			}
		}
		s.cancel()
		if s.inet.pub != nil {
			errs = append(errs, s.inet.pub.Close())
		}
		if s.mdns != nil {
			errs = append(errs, s.mdns.Close())
		}
		if s.gossip != nil {
			s.gossip.close()
		}
		if s.bswap != nil {
			errs = append(errs, s.bswap.Close())
		}
		if s.dht != nil {
			errs = append(errs, s.dht.Close())
		}
		if s.host != nil {
			errs = append(errs, s.host.Close())
		}
		s.wg.Wait()
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("swarm: closing: %w", err)
	}
	return nil
}

// isConnected reports whether we have a live connection to p.
func (s *Swarm) isConnected(p peer.ID) bool {
	return s.host.Network().Connectedness(p) == network.Connected
}

// spawn runs f in a background goroutine that Close waits for; after Close
// it does nothing and reports false.
func (s *Swarm) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Go(f)
	return true
}
