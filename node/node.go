package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"

	"orchmind/engine/base"
	"orchmind/internal/appdir"
	"orchmind/internal/atomicfile"
	"orchmind/node/api"
	"orchmind/node/ui"
	"orchmind/store"
	"orchmind/swarm"
)

// Config configures a node.
type Config struct {
	// DataDir holds the node key, the content store and the API address file.
	DataDir string
	// AdapterDir holds local adapter folders (trained and pulled).
	AdapterDir string
	// Base is the loaded base model.
	Base *base.Base
	// Listen are libp2p listen multiaddrs (default: TCP and QUIC on all
	// interfaces, random ports). Bootstrap peers are dialled on start.
	Listen, Bootstrap []string
	// MDNS finds peers on the local network.
	MDNS bool
	// LocalOnly makes the node talk to nothing but the peers it is given
	// (Bootstrap, pulls from named peers) and those they introduce: no NAT
	// port mapping, no mDNS (whatever MDNS says), no AutoNAT, relays or hole
	// punching, and listen addresses on 127.0.0.1 unless Listen names
	// others (see swarm.Config.LocalOnly). Tests, the demo, benchmarks and
	// CI run this way; Swarm().Services() reports what runs.
	LocalOnly bool
	// APIAddr is where the HTTP API listens (default 127.0.0.1:11435; use
	// port 0 for a free port). The chosen address is written to
	// DataDir/api so CLI verbs can find the node.
	APIAddr string
	// Token lets non-loopback clients use the API.
	Token string
	// DHTServer makes the node answer DHT queries at once (tests, servers).
	DHTServer bool
	// PublicDHT finds other orchmind nodes on the internet through
	// rendezvous records on the public IPFS DHT (off in the zero value, so
	// tests never dial out; the CLI turns it on unless --public-dht=off;
	// LocalOnly turns it off). PublicBootstrap replaces libp2p's default
	// bootstrap peers of that DHT (multiaddrs with /p2p/, or /dnsaddr
	// names). PublicHelper serves others: public DHT server and relay.
	PublicDHT       bool
	PublicBootstrap []string
	PublicHelper    bool
	// Port is the libp2p port when Listen is empty (0: swarm.DefaultPort,
	// negative: any free port).
	Port int
	// Rooms are private-room codes to join on start.
	Rooms []string
	// FindTimeout bounds the search for a peer to pull a CID from (its
	// announcement's author, or providers in the DHT) (default 30 s).
	FindTimeout time.Duration
	// Quota bounds the content store in bytes (0: the store's default).
	Quota int64
	// MaxPullSize bounds the bytes of files a pull writes out (default
	// DefaultMaxPullSize); a pull of an announced adapter is also bounded
	// by the largest size announced for it.
	MaxPullSize int64
	// ShareBase imports the running base's file into the store by
	// reference and announces it to peers (see ShareBase, bases.go).
	ShareBase bool
	// ModelsDir receives base models pulled from peers (default: the
	// platform's orchmind models folder, appdir.Models()).
	ModelsDir string
	Version   string
	Log       *slog.Logger
}

// Node is a running daemon.
type Node struct {
	cfg   Config
	log   *slog.Logger
	key   crypto.PrivKey
	store *store.Store
	sw    *swarm.Swarm
	api   *api.Server
	srv   *http.Server
	ln    net.Listener

	mu    sync.Mutex
	rooms map[string]*joinedRoom // by topic
	held  heldBases              // guards BasesFile (bases.go)
	done  chan struct{}
	once  sync.Once
	// bg counts the node's background work (DHT provides, saving the
	// catalogue); Close waits for it before closing the swarm and the store.
	bg sync.WaitGroup
	// savedSeq is the catalogue's change number at the last save (used by
	// the saver in bg, then by Close).
	savedSeq uint64
}

// APIFile is the file in the data dir that holds the API address.
const APIFile = "api"

// TokenFile is the file in the data dir (readable by its owner only) that
// holds the node's local API token: orchmind's CLI sends it, which lets it
// name adapter folders anywhere on this computer (see api.Config.LocalToken).
// A new token is made at every start.
const TokenFile = "api-token"

// DefaultMaxPullSize is the most bytes of files a pull writes out unless
// Config.MaxPullSize says otherwise: far above any LoRA adapter of the
// models this node runs, far below what fills a home disk.
const DefaultMaxPullSize = 2 << 30

// Start opens the store, starts the swarm (giving it back the
// announcements seen before, saved in the store) and serves the API.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.DataDir == "" || cfg.Base == nil {
		return nil, errors.New("node: a data folder and a base model are needed")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.AdapterDir == "" {
		cfg.AdapterDir = "lora_adapters"
	}
	if cfg.APIAddr == "" {
		cfg.APIAddr = "127.0.0.1:11435"
	}
	if cfg.FindTimeout <= 0 {
		cfg.FindTimeout = 30 * time.Second
	}
	if cfg.ModelsDir == "" {
		cfg.ModelsDir = appdir.Models()
	}
	if cfg.MaxPullSize <= 0 {
		cfg.MaxPullSize = DefaultMaxPullSize
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data folder: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Log, rooms: map[string]*joinedRoom{}, done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	var err error
	if n.key, err = swarm.LoadOrCreateIdentity(cfg.DataDir, cfg.Log); err != nil {
		return nil, err
	}
	if n.store, err = store.Open(filepath.Join(cfg.DataDir, "store"), store.Options{Quota: cfg.Quota, Logger: cfg.Log}); err != nil {
		return nil, err
	}
	// The store's lock is ours: no other node uses this data folder.
	cleanOrphans(cfg.DataDir, cfg.AdapterDir, time.Now(), cfg.Log)
	scfg := swarm.DefaultConfig(cfg.DataDir)
	scfg.MDNS = cfg.MDNS
	scfg.LocalOnly = cfg.LocalOnly
	scfg.PublicDHT = cfg.PublicDHT
	scfg.PublicHelper = cfg.PublicHelper
	scfg.Port = cfg.Port
	scfg.Rendezvous = []string{swarm.BaseNamespace(cfg.Base.Fingerprint)}
	scfg.Identity = n.key
	scfg.Blockstore = n.store
	scfg.Logger = cfg.Log
	scfg.Validator = validate
	scfg.PinnedRoots = n.store.Pins
	if cfg.DHTServer {
		scfg.DHTMode = swarm.DHTServer
	}
	for _, list := range []struct {
		in  []string
		out *[]ma.Multiaddr
	}{{cfg.Listen, &scfg.ListenAddrs}, {cfg.Bootstrap, &scfg.Bootstrap}, {cfg.PublicBootstrap, &scfg.PublicBootstrap}} {
		for _, s := range list.in {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return nil, fmt.Errorf("node: address %q: %w", s, err)
			}
			*list.out = append(*list.out, a)
		}
	}
	if n.sw, err = swarm.New(ctx, scfg); err != nil {
		return nil, err
	}
	n.restoreAnnouncements(ctx)
	n.keepSaving()
	if err := n.startBases(ctx); err != nil {
		return nil, err
	}
	localToken := rand.Text()
	if err := atomicfile.WriteFile(filepath.Join(cfg.DataDir, TokenFile), []byte(localToken+"\n"), 0o600); err != nil {
		return nil, err
	}
	if n.api, err = api.New(api.Config{Base: cfg.Base, AdapterDir: cfg.AdapterDir, Swarm: n, Token: cfg.Token, LocalToken: localToken,
		UI: ui.Handler(), Version: cfg.Version, Log: cfg.Log}); err != nil {
		return nil, err
	}
	if n.ln, err = net.Listen("tcp", cfg.APIAddr); err != nil {
		return nil, fmt.Errorf("node: cannot listen on %s: %w (is another node running? choose another --api)", cfg.APIAddr, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(cfg.DataDir, APIFile), []byte("http://"+n.ln.Addr().String()+"\n"), 0o600); err != nil {
		return nil, err
	}
	for _, code := range cfg.Rooms {
		if err := n.JoinRoom(ctx, code); err != nil {
			return nil, err
		}
	}
	n.srv = &http.Server{Handler: n.api, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := n.srv.Serve(n.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("API server stopped", "err", err)
		}
	}()
	ok = true
	return n, nil
}

// URL is the API's base URL.
func (n *Node) URL() string { return "http://" + n.ln.Addr().String() }

// Swarm is the node's swarm (tests and diagnostics).
func (n *Node) Swarm() *swarm.Swarm { return n.sw }

// Store is the node's content store (tests and diagnostics).
func (n *Node) Store() *store.Store { return n.store }

// Close stops everything; it is safe on a half-started node.
func (n *Node) Close() error {
	n.once.Do(func() { close(n.done) })
	var errs []error
	if n.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		errs = append(errs, n.srv.Shutdown(ctx))
		cancel()
	}
	if n.api != nil {
		n.api.Close()
	}
	n.bg.Wait()
	if n.sw != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		n.saveAnnouncements(ctx)
		cancel()
		errs = append(errs, n.sw.Close())
	}
	if n.store != nil {
		errs = append(errs, n.store.Close())
	}
	if n.cfg.DataDir != "" {
		_ = os.Remove(filepath.Join(n.cfg.DataDir, APIFile))
		_ = os.Remove(filepath.Join(n.cfg.DataDir, TokenFile))
	}
	return errors.Join(errs...)
}

func (n *Node) closed() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}
