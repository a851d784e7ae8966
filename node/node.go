package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/internal/atomicfile"
	"orchmind/node/api"
	"orchmind/node/ui"
	"orchmind/protocol"
	"orchmind/protocol/room"
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
	Version     string
	Log         *slog.Logger
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
	done  chan struct{}
	once  sync.Once
}

type joinedRoom struct {
	r  *room.Room
	sw *swarm.Room
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

// Start opens the store, starts the swarm and serves the API.
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
	}{{cfg.Listen, &scfg.ListenAddrs}, {cfg.Bootstrap, &scfg.Bootstrap}} {
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
	if n.sw != nil {
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

// validate is the swarm's announcement check: decode, verify the signature.
// The decoded announcement travels with the swarm's catalogue entry
// (Decoded), which is where Search finds it: the catalogue, bounded and
// hardened against floods, is the node's one memory of announcements.
func validate(_ context.Context, _ peer.ID, data []byte) (swarm.Announcement, error) {
	s, err := protocol.Open(data)
	if err != nil {
		return swarm.Announcement{}, err
	}
	return swarm.Announcement{Root: s.Root, Base: s.Manifest.BaseFingerprint, Author: s.Author, Created: s.Created, Decoded: s}, nil
}

// announced returns the verified announcements of root this node knows
// (public and room ones, every author).
func (n *Node) announced(root cid.Cid) []*protocol.Signed {
	var out []*protocol.Signed
	for _, r := range n.sw.CatalogueOf(root) {
		if s, ok := r.Decoded.(*protocol.Signed); ok {
			out = append(out, s)
		}
	}
	return out
}

// Publish imports the adapter folder dir into the store, pins it, provides
// it in the DHT and announces it; it returns the root CID.
func (n *Node) Publish(ctx context.Context, dir string, man *adapters.Manifest) (string, error) {
	root, signed, err := n.prepare(ctx, dir, man)
	if err != nil {
		return "", err
	}
	// Searchable here at once (gossip's own delivery comes a moment later).
	if err := n.sw.Remember(ctx, signed); err != nil {
		return "", err
	}
	if err := n.sw.Announce(ctx, signed); err != nil {
		return "", fmt.Errorf("publish: stored and pinned as %s, but the announcement failed: %w", root, err)
	}
	return root.String(), nil
}

// prepare imports, pins and provides dir and returns its root and signed
// announcement.
func (n *Node) prepare(ctx context.Context, dir string, man *adapters.Manifest) (cid.Cid, []byte, error) {
	if man == nil {
		m, err := adapters.CheckFolder(dir, adapters.SafetensorsCodec{})
		if err != nil {
			return cid.Undef, nil, err
		}
		man = m
	}
	if man == nil {
		return cid.Undef, nil, fmt.Errorf("publish %s: the folder has no orchmind.json manifest: train the adapter with orchmind train, or write one", dir)
	}
	if man.BaseFingerprint == "" {
		return cid.Undef, nil, fmt.Errorf("publish %s: the manifest does not say which base model the adapter is for (base_fingerprint)", dir)
	}
	root, err := n.store.ImportFolder(ctx, dir)
	if err != nil {
		return cid.Undef, nil, err
	}
	size := adapters.FolderSize(dir)
	if err := n.store.Pin(ctx, root); err != nil {
		return cid.Undef, nil, err
	}
	n.provide(root)
	metrics := map[string]float64{}
	for k, v := range map[string]float64{"train_loss_before": man.TrainLossBefore, "train_loss_after": man.TrainLossAfter,
		"eval_loss_before": man.EvalLossBefore, "eval_loss_after": man.EvalLossAfter} {
		if v != 0 {
			metrics[k] = v
		}
	}
	a := protocol.Announcement{Root: root, Size: uint64(size), Created: time.Now(), Manifest: protocol.Manifest{
		Name: man.Name, Description: man.Description, Tags: man.Tags, Language: man.Language,
		BaseFingerprint: man.BaseFingerprint, BaseName: man.BaseName, Rank: man.Rank, Alpha: man.Alpha,
		TargetModules: man.TargetModules, Metrics: metrics, License: man.License}}
	signed, err := protocol.Sign(a, n.key)
	if err != nil {
		return cid.Undef, nil, err
	}
	return root, signed, nil
}

// JoinRoom joins the private room of code: its announcements (sealed with
// the room key) become searchable here, and PublishRoom can announce into it.
func (n *Node) JoinRoom(ctx context.Context, code string) error {
	r, err := room.Join(code)
	if err != nil {
		return err
	}
	n.mu.Lock()
	_, dup := n.rooms[r.Topic()]
	n.mu.Unlock()
	if dup {
		return nil
	}
	sr, err := n.sw.JoinRoom(ctx, r.Topic(), r.Open, func(from peer.ID, plain []byte) {
		if err := n.sw.RememberRoom(context.Background(), from, plain); err != nil {
			n.log.Warn("not keeping a room member's announcement", "err", err)
		}
	})
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.rooms[r.Topic()] = &joinedRoom{r: r, sw: sr}
	n.mu.Unlock()
	return nil
}

// PublishRoom is Publish into a private room: the signed announcement is
// sealed with the room key and sent on the room's topic only, so peers
// outside the room see neither its name nor its CID. The blocks are still
// provided in the public DHT under their CID.
func (n *Node) PublishRoom(ctx context.Context, dir string, man *adapters.Manifest, code string) (string, error) {
	r, err := room.Join(code)
	if err != nil {
		return "", err
	}
	n.mu.Lock()
	jr := n.rooms[r.Topic()]
	n.mu.Unlock()
	if jr == nil {
		if err := n.JoinRoom(ctx, code); err != nil {
			return "", err
		}
		n.mu.Lock()
		jr = n.rooms[r.Topic()]
		n.mu.Unlock()
	}
	root, signed, err := n.prepare(ctx, dir, man)
	if err != nil {
		return "", err
	}
	// Searchable here, never served to peers outside the room.
	if err := n.sw.RememberRoom(ctx, n.sw.ID(), signed); err != nil {
		return "", err
	}
	sealed, err := jr.r.Seal(signed)
	if err != nil {
		return "", err
	}
	if err := jr.sw.Publish(ctx, sealed); err != nil {
		return "", fmt.Errorf("publish: stored as %s, but sending to the room failed: %w", root, err)
	}
	return root.String(), nil
}

// provide announces root in the DHT; while the node has no DHT peers yet
// it retries in the background (for up to ten minutes), so an adapter
// published by a node that has just started is still findable.
func (n *Node) provide(root cid.Cid) {
	go func() {
		deadline := time.Now().Add(10 * time.Minute)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := n.sw.Provide(ctx, root)
			cancel()
			if err == nil || !errors.Is(err, swarm.ErrNoPeers) || time.Now().After(deadline) || n.closed() {
				if err != nil && !errors.Is(err, swarm.ErrNoPeers) {
					n.log.Warn("provide failed; the reprovider will try again", "cid", root, "err", err)
				}
				return
			}
			time.Sleep(time.Second)
		}
	}()
}

func (n *Node) closed() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// Search lists announced adapters matching q, newest first: one listing
// per (publisher, CID), so an adapter announced by several publishers
// (or re-announced by someone under another name) shows each of them
// with their own name and description.
func (n *Node) Search(_ context.Context, q api.SearchQuery) ([]api.Listing, error) {
	words := strings.Fields(strings.ToLower(q.Text))
	var out []api.Listing
	for _, r := range n.sw.Catalogue(q.BaseFingerprint, 0) {
		s, ok := r.Decoded.(*protocol.Signed)
		if !ok {
			continue
		}
		m := s.Manifest
		if q.BaseFingerprint != "" && m.BaseFingerprint != q.BaseFingerprint {
			continue
		}
		hay := strings.ToLower(m.Name + " " + m.Description + " " + strings.Join(m.Tags, " ") + " " + m.Language + " " + m.BaseName)
		match := true
		for _, w := range words {
			if !strings.Contains(hay, w) {
				match = false
			}
		}
		if !match {
			continue
		}
		out = append(out, api.Listing{CID: s.Root.String(), Name: m.Name, Description: m.Description, Tags: m.Tags,
			Language: m.Language, BaseName: m.BaseName, BaseFingerprint: m.BaseFingerprint, Publisher: s.Author.String(),
			Size: int64(s.Size)})
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out, nil
}

// pullKeep bounds the bytes of fetched blocks a pull keeps in memory for
// writing the adapter folder; the rest is read back from the store.
const pullKeep = 256 << 20

// keptBlocks hands the blocks a fetch checks to an export running beside
// it: have gives a block the fetch has handed over (kept, up to pullKeep
// bytes), waits for one that is neither kept nor in the store yet, and
// once the fetch has ended (finish) leaves the rest to the store.
type keptBlocks struct {
	st    *store.Store
	mu    sync.Mutex
	cond  *sync.Cond
	kept  map[string]blocks.Block
	bytes int
	gen   uint64 // counts keep calls, so a wait does not miss one
	done  bool
}

func newKeptBlocks(st *store.Store) *keptBlocks {
	k := &keptBlocks{st: st, kept: map[string]blocks.Block{}}
	k.cond = sync.NewCond(&k.mu)
	return k
}

// keep is the fetch's WithVerifiedBlocks callback: b is checked against
// its CID (and stored, or about to be).
func (k *keptBlocks) keep(b blocks.Block) {
	k.mu.Lock()
	if k.bytes+len(b.RawData()) <= pullKeep {
		k.kept[b.Cid().KeyString()] = b
		k.bytes += len(b.RawData())
	}
	k.gen++
	k.mu.Unlock()
	k.cond.Broadcast()
}

// finish says the fetch has ended: have waits no more.
func (k *keptBlocks) finish() {
	k.mu.Lock()
	k.done = true
	k.mu.Unlock()
	k.cond.Broadcast()
}

func (k *keptBlocks) clear() {
	k.mu.Lock()
	clear(k.kept)
	k.mu.Unlock()
}

// have returns a kept block, or false when the store is to be asked: the
// block is stored (by an earlier pull, or past pullKeep) or the fetch has
// ended.
func (k *keptBlocks) have(c cid.Cid) (blocks.Block, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for {
		if b, ok := k.kept[c.KeyString()]; ok {
			return b, true
		}
		if k.done {
			return nil, false
		}
		gen := k.gen
		k.mu.Unlock()
		has, err := k.st.Has(context.Background(), c)
		k.mu.Lock()
		if has || err != nil {
			return nil, false
		}
		for gen == k.gen && !k.done {
			k.cond.Wait()
		}
	}
}

// Pull fetches the adapter with root c from the swarm — from its
// announcement's author, reached by peer ID, or else from providers found
// in the DHT (see swarm.Fetch) — with every block hash-checked on arrival,
// writes it out from the fetched blocks as they are stored (the export
// runs beside the fetch), checks that it is a usable adapter for this
// node's base (adapters.CheckFolder: every check of ReadFolder, without
// reading the tensors back), pins it, moves it into the adapter folder
// under its manifest name, and provides it in the DHT so that others can
// fetch it from here too.
func (n *Node) Pull(ctx context.Context, c string) (string, error) {
	root, err := cid.Decode(strings.TrimSpace(c))
	if err != nil {
		return "", fmt.Errorf("pull: %q is not a CID: %w", c, err)
	}
	t0 := time.Now()
	var tFind, tFetch, tExport, tRead, tPin time.Duration
	mark := func(d *time.Duration) { *d = time.Since(t0); t0 = time.Now() }
	// The most the adapter's files may come to: what its announcements
	// say (a DAG that repeats one block thousands of times is small to
	// fetch and huge to write out), and never more than MaxPullSize.
	limit := n.cfg.MaxPullSize
	var announced int64
	for _, s := range n.announced(root) {
		announced = max(announced, int64(min(s.Size, uint64(math.MaxInt64))))
	}
	if announced > 0 {
		limit = min(limit, announced)
	}
	var provs []peer.AddrInfo
	if have, _ := n.store.Has(ctx, root); !have {
		if provs, err = n.findSource(ctx, root); err != nil {
			return "", fmt.Errorf("pull %s: %w", root, err)
		}
	}
	mark(&tFind)
	// No GC between the fetch and the pin: it would take the blocks away.
	unlock := n.store.PinLock(ctx)
	defer unlock.Unlock(ctx)
	tmp, err := os.MkdirTemp(n.cfg.DataDir, ".pull-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	got := filepath.Join(tmp, "adapter")
	// The folder is written while the blocks arrive: the export runs
	// beside the fetch and takes each block as soon as the fetch has
	// checked it against its CID (WithVerifiedBlocks), waiting for those
	// not there yet. The folder is used only once the fetch has returned,
	// every block stored; a failed fetch throws it away.
	kb := newKeptBlocks(n.store)
	ectx, ecancel := context.WithCancel(ctx)
	defer ecancel()
	// An export that refuses the DAG (larger than announced, bad names)
	// stops the fetch too: nothing more of it is wanted.
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	exported := make(chan error, 1)
	var stopMu sync.Mutex
	fetchDone, exportStopped := false, false
	go func() {
		err := n.store.ExportFolderFrom(ectx, root, got, kb.have, store.WithMaxBytes(limit))
		stopMu.Lock()
		if err != nil && !fetchDone {
			exportStopped = true
			fcancel()
		}
		stopMu.Unlock()
		exported <- err
	}()
	err = n.sw.Fetch(fctx, root, nil, swarm.WithProviders(provs...), swarm.WithVerifiedBlocks(kb.keep), swarm.WithMaxBytes(limit))
	stopMu.Lock()
	fetchDone = true
	stopped := exportStopped
	stopMu.Unlock()
	kb.finish()
	if err != nil {
		ecancel()
		eerr := <-exported
		if stopped {
			// The export refused the DAG and stopped the fetch: its error
			// says why.
			return "", fmt.Errorf("pull %s: %w", root, eerr)
		}
		if errors.Is(err, store.ErrStoreFull) || errors.Is(err, store.ErrDiskFull) || errors.Is(err, swarm.ErrTooLarge) {
			return "", fmt.Errorf("pull %s: %w", root, err)
		}
		return "", fmt.Errorf("pull %s: %w (no provider answered? check `orchmind peers`)", root, err)
	}
	mark(&tFetch)
	err = <-exported
	kb.clear()
	if err != nil {
		return "", fmt.Errorf("pull %s: %w", root, err)
	}
	mark(&tExport)
	// Every check of ReadFolder, without reading the 10 MB of tensors back
	// and converting them: only the manifest is used here.
	man, err := adapters.CheckFolder(got, adapters.SafetensorsCodec{})
	if err != nil {
		return "", fmt.Errorf("pull %s: the fetched folder is not a usable adapter: %w", root, err)
	}
	name := "adapter-" + root.String()[len(root.String())-8:]
	if man != nil && adapters.ValidName(man.Name) {
		name = man.Name
	}
	b := n.cfg.Base
	if man != nil && man.BaseFingerprint != "" && man.BaseFingerprint != b.Fingerprint && man.BaseShapeFingerprint != b.ShapeID {
		return "", fmt.Errorf("pull %s: adapter %q is for base %s (%s) but this node runs %s (%s): start a node with that base to use it",
			root, name, man.BaseName, man.BaseFingerprint, b.Name, b.Fingerprint)
	}
	mark(&tRead)
	if err := n.store.PinHeld(ctx, root); err != nil {
		return "", err
	}
	mark(&tPin)
	if err := os.MkdirAll(n.cfg.AdapterDir, 0o755); err != nil {
		return "", err
	}
	dst, fresh, err := placeFolder(ctx, n.cfg.AdapterDir, name, root)
	if err != nil {
		return "", fmt.Errorf("pull %s: %w", root, err)
	}
	if fresh {
		if err := moveInto(got, dst); err != nil {
			_ = os.Remove(dst) // the empty folder placeFolder made, nothing else
			return "", fmt.Errorf("pull %s: %w", root, err)
		}
	}
	// Serve it onward: other nodes find this one in the DHT from now on.
	n.provide(root)
	n.log.Info("pulled", "root", root.String(), "dir", dst, "find", tFind, "fetch", tFetch, "export", tExport, "read", tRead, "pin", tPin)
	return dst, nil
}

// findSource looks, for up to FindTimeout, for a peer to pull root from:
// its announcement's author (Fetch asks it directly, provider record in the
// DHT or not: a pull right after the announcement may well come before the
// record is there), or providers in the DHT that can be reached, which it
// returns. It looks again with growing pauses, so an announcement or a
// record that arrives meanwhile is found, and fails with a clear message
// when nobody serves root.
func (n *Node) findSource(ctx context.Context, root cid.Cid) ([]peer.AddrInfo, error) {
	fctx, cancel := context.WithTimeout(ctx, n.cfg.FindTimeout)
	defer cancel()
	listed := 0
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 2*time.Second) {
		actx, acancel := context.WithTimeout(fctx, n.cfg.FindTimeout/3)
		ok := n.reachAuthor(actx, root)
		acancel()
		if ok {
			return nil, nil
		}
		// A node that has just started may not have DHT peers yet.
		provs, err := n.sw.FindProviders(fctx, root, 3)
		if err != nil && !errors.Is(err, swarm.ErrNoPeers) && fctx.Err() == nil {
			return nil, err
		}
		if len(provs) > 0 {
			listed = len(provs)
			if provs = n.reachable(fctx, provs); len(provs) > 0 {
				return provs, nil
			}
		}
		select {
		case <-fctx.Done():
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			why := "searched the DHT for " + n.cfg.FindTimeout.String()
			if listed > 0 {
				why = fmt.Sprintf("the DHT lists %d, none of them reachable", listed)
			}
			return nil, fmt.Errorf("no peer provides it (%s): its publisher's node may be offline — try again later or ask them to keep it running", why)
		case <-time.After(pause):
		}
	}
}

// reachable returns the providers it can connect to (at once, until ctx
// ends): a provider record outlives its node by hours.
func (n *Node) reachable(ctx context.Context, provs []peer.AddrInfo) []peer.AddrInfo {
	ok := make([]bool, len(provs))
	var wg sync.WaitGroup
	for i, ai := range provs {
		wg.Go(func() {
			if len(ai.Addrs) > 0 {
				n.sw.Host().Peerstore().AddAddrs(ai.ID, ai.Addrs, 10*time.Minute)
			}
			ok[i] = n.sw.ConnectPeer(ctx, ai.ID) == nil
		})
	}
	wg.Wait()
	var out []peer.AddrInfo
	for i, ai := range provs {
		if ok[i] {
			out = append(out, ai)
		}
	}
	return out
}

// reachAuthor connects to the author of root's announcement, if one is
// known (looking its addresses up in the DHT if need be, within ctx), and
// reports whether it is connected.
func (n *Node) reachAuthor(ctx context.Context, root cid.Cid) bool {
	for _, s := range n.announced(root) {
		if s.Author == n.sw.ID() {
			continue
		}
		if n.sw.Host().Network().Connectedness(s.Author) == network.Connected {
			return true
		}
		if err := n.sw.ConnectPeer(ctx, s.Author); err != nil {
			n.log.Debug("an announcement's author is not reachable; looking for other providers", "author", s.Author.String(), "err", err)
			continue
		}
		return true
	}
	return false
}

// placeFolder chooses where a pulled adapter named name with root goes in
// dir: the first of name, name-<last 8 of the CID>, name-<…>-2, … that
// either holds exactly root already (fresh false: nothing to write) or does
// not exist, in which case it is created empty (fresh true) so that no
// other writer can take it. A folder that is there and holds anything else
// is never touched: a pull replaces only what it has just created.
func placeFolder(ctx context.Context, dir, name string, root cid.Cid) (dst string, fresh bool, err error) {
	tail := root.String()[len(root.String())-8:]
	for i := 0; i < 100; i++ {
		cand := name
		switch {
		case i == 1:
			cand = name + "-" + tail
		case i > 1:
			cand = fmt.Sprintf("%s-%s-%d", name, tail, i)
		}
		dst = filepath.Join(dir, cand)
		err := os.Mkdir(dst, 0o755)
		if err == nil {
			return dst, true, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", false, fmt.Errorf("creating the adapter folder: %w", err)
		}
		if have, herr := store.HashFolder(ctx, dst); herr == nil && have.Equals(root) {
			return dst, false, nil
		}
	}
	return "", false, fmt.Errorf("%d folders named %s… are already in %s: remove some", 100, name, dir)
}

// moveInto renames the folder src onto dst, an empty folder placeFolder
// created (rename replaces an empty folder on POSIX systems; elsewhere the
// empty folder is removed first).
func moveInto(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	if err := os.Remove(dst); err != nil {
		return fmt.Errorf("moving the adapter into %s: %w", dst, err)
	}
	if err := os.Rename(src, dst); err != nil {
		return fmt.Errorf("moving the adapter into %s: %w", dst, err)
	}
	return nil
}

// orphanAge is how long an adapter-folder temporary must have been left
// alone before a starting node takes it for an orphan.
const orphanAge = time.Hour

var (
	// pullTemp is a pull's working folder in the data folder.
	pullTemp = regexp.MustCompile(`^\.pull-[0-9]+$`)
	// adapterTemp is a temporary of store.ExportFolder (.orchmind-export-N),
	// adapters.WriteFolder (.NAME.tmp-N, .NAME.tmp-N.old) or atomicfile
	// (.NAME.tmp-N) in the adapters folder.
	adapterTemp = regexp.MustCompile(`^\.(orchmind-export-[0-9]+|.+\.tmp-[0-9]+(\.old)?)$`)
)

// cleanOrphans removes what a node or a training run killed mid-write left
// behind: every pull working folder in the data folder (only the node that
// holds the store's lock, this one, uses them) and, in the adapters folder,
// export and write temporaries untouched for orphanAge (another process,
// a training run, may be writing a fresh one). It removes nothing else and
// reports what it removed.
func cleanOrphans(dataDir, adapterDir string, now time.Time, log *slog.Logger) []string {
	var removed []string
	sweep := func(dir string, match *regexp.Regexp, minAge time.Duration) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if !match.MatchString(e.Name()) {
				continue
			}
			if minAge > 0 {
				fi, err := e.Info()
				if err != nil || now.Sub(fi.ModTime()) < minAge {
					continue
				}
			}
			p := filepath.Join(dir, e.Name())
			if err := os.RemoveAll(p); err != nil {
				log.Warn("could not remove a leftover temporary folder", "path", p, "err", err)
				continue
			}
			removed = append(removed, p)
		}
	}
	sweep(dataDir, pullTemp, 0)
	sweep(adapterDir, adapterTemp, orphanAge)
	if len(removed) > 0 {
		log.Info("removed temporaries left by an interrupted pull or write", "paths", strings.Join(removed, " "))
	}
	return removed
}

// Peers lists the connected peers.
func (n *Node) Peers(context.Context) ([]api.Peer, error) {
	var out []api.Peer
	for _, p := range n.sw.Peers() {
		ps := api.Peer{ID: p.String()}
		for _, a := range n.sw.Host().Peerstore().Addrs(p) {
			ps.Addrs = append(ps.Addrs, a.String())
		}
		out = append(out, ps)
	}
	return out, nil
}
