package scale

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"orchmind/internal/cputime"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"orchmind/protocol"
	"orchmind/store"
	"orchmind/swarm"
)

// Options describe one run. The zero value of a field takes the default
// given in its comment.
type Options struct {
	// Nodes is how many nodes are up when the run starts (default 100).
	Nodes int
	// LatencyMin and LatencyMax bound the one-way delay of a link
	// (defaults 20 ms and 200 ms).
	LatencyMin, LatencyMax time.Duration
	// Jitter is how far the delay of each piece written wanders around
	// its link's, as a share of it (default 0.1; negative for none);
	// pieces still arrive in order.
	Jitter float64
	// UplinkMbps caps what each node writes, all streams together, in
	// megabits per second (default 40; negative for no cap).
	UplinkMbps float64
	// Churn is the share of Nodes that leave, and as many new nodes that
	// join, during the announcement (default 0.1; negative for none).
	Churn float64
	// ChurnWindow is the time after the announcement over which they leave
	// and join (default 3 s).
	ChurnWindow time.Duration
	// Bootstraps is how many of the nodes every other node is given as
	// bootstrap peers (default 4).
	Bootstraps int
	// ConnLow and ConnHigh are each node's connection manager water
	// marks (defaults: swarm's, DefaultConnMgrLow and DefaultConnMgrHigh).
	ConnLow, ConnHigh int
	// ConnGrace is how long the connection manager spares a new
	// connection (default: swarm's ConnMgrGracePeriod).
	ConnGrace time.Duration
	// Authors is how many nodes announce (and provide) an adapter before
	// the measured announcement: the catalogue every node holds and the
	// keys of the DHT lookups (default 20).
	Authors int
	// Lookups is how many DHT provider lookups are timed (default 50).
	Lookups int
	// Quiet is how long idle traffic is measured before the announcement,
	// after a pause for gossipsub's message cache to forget the prefill
	// (default 5 s; negative: neither, and gossip per announcement is not
	// corrected for idle traffic).
	Quiet time.Duration
	// JoinTimeout bounds the wait for each node's first DHT routing
	// table refresh (default 90 s); dht_joined says how many finished.
	JoinTimeout time.Duration
	// JoinWave is how many nodes start and join the DHT together; the
	// next wave starts once they have (default 100; negative: all at
	// once). A swarm grows; 300 nodes refreshing their routing tables in
	// the same second on a shared core made every refresh time out.
	JoinWave int
	// Observe is how long the measured announcement is watched at most
	// (default 20 s).
	Observe time.Duration
	// Pullers are timed pulling a PullMB adapter from one author while
	// Background other nodes pull it too (defaults 10, 100, 10; Pullers
	// negative for no pull phase).
	Pullers, Background int
	// PullMB is the size of the pulled adapter in MB (default 10).
	PullMB int
	// PullTimeout bounds the pull phase (default 5 min).
	PullTimeout time.Duration
	// Seed makes the latency model, churn and choices repeatable (0: 1).
	Seed uint64
	// Tune adjusts every node's swarm configuration (tuning experiments).
	Tune func(*swarm.Config)
	// CPUProfile, if set, is where a CPU profile of the set-up, the
	// announcement and the lookups is written; HeapProfile where a heap profile is
	// written once the catalogue is full.
	CPUProfile, HeapProfile string
	// Logger receives the harness's progress (default: discard). The
	// nodes' own logs go to NodeLogger (default: discard).
	Logger, NodeLogger *slog.Logger
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Nodes, 100)
	def(&o.Bootstraps, 4)
	def(&o.Authors, 20)
	def(&o.Lookups, 50)
	def(&o.Pullers, 10)
	def(&o.Background, 100)
	def(&o.PullMB, 10)
	def(&o.JoinWave, 100)
	if o.LatencyMin == 0 {
		o.LatencyMin = 20 * time.Millisecond
	}
	if o.LatencyMax == 0 {
		o.LatencyMax = 200 * time.Millisecond
	}
	if o.Jitter == 0 {
		o.Jitter = 0.1
	}
	if o.UplinkMbps == 0 {
		o.UplinkMbps = 40
	}
	if o.Churn == 0 {
		o.Churn = 0.1
	}
	if o.ChurnWindow == 0 {
		o.ChurnWindow = 3 * time.Second
	}
	if o.JoinTimeout == 0 {
		o.JoinTimeout = 90 * time.Second
	}
	if o.Quiet == 0 {
		o.Quiet = 5 * time.Second
	}
	if o.Observe == 0 {
		o.Observe = 20 * time.Second
	}
	if o.PullTimeout == 0 {
		o.PullTimeout = 5 * time.Minute
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.NodeLogger == nil {
		o.NodeLogger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Result is what one run measured; it marshals to the JSON line that
// `make bench-scale` prints. Times are seconds; a percentile that was not
// reached within Options.Observe is -1. The announcement's percentiles
// (t50_s ...) are over the nodes live at the end, those that joined during
// the churn timed from when they started.
type Result struct {
	Nodes         int        `json:"nodes"`
	LatencyMS     [2]int     `json:"latency_ms"`
	Jitter        float64    `json:"jitter"`
	UplinkMbps    float64    `json:"uplink_mbps"`
	Churn         float64    `json:"churn"`
	Left          int        `json:"left"`
	Joined        int        `json:"joined"`
	Live          int        `json:"live"`
	Coverage      float64    `json:"coverage"`
	T50           float64    `json:"t50_s"`
	T90           float64    `json:"t90_s"`
	T99           float64    `json:"t99_s"`
	T100          float64    `json:"t100_s"`
	JoinersCov    float64    `json:"joiners_coverage"`
	Lookups       int        `json:"lookups"`
	LookupsOK     int        `json:"lookups_found"`
	HopsMedian    float64    `json:"lookup_hops_median"`
	HopsP99       float64    `json:"lookup_hops_p99"`
	HopsBound     int        `json:"lookup_hops_bound"`
	ProvideMed    float64    `json:"provide_s_median"`
	ProvideMax    float64    `json:"provide_s_max"`
	LookupMed     float64    `json:"lookup_s_median"`
	LookupP99     float64    `json:"lookup_s_p99"`
	Catalogue     float64    `json:"catalogue_entries_median"`
	CatKB         float64    `json:"catalogue_kb_per_node"`
	RSSMB         float64    `json:"rss_mb_per_node"`
	HeapMB        float64    `json:"heap_mb_per_node"`
	StackMB       float64    `json:"stack_mb_per_node"`
	HarnessMB     float64    `json:"harness_mb"`
	Goroutines    float64    `json:"goroutines_per_node"`
	MockGor       float64    `json:"mock_goroutines_per_node"`
	MockMB        float64    `json:"mock_mb_per_node"`
	RSSPeakMB     float64    `json:"rss_peak_mb_per_node"`
	Conns         float64    `json:"conns_per_node"`
	ConnLow       int        `json:"conn_low"`
	ConnHigh      int        `json:"conn_high"`
	ConnGraceS    float64    `json:"conn_grace_s"`
	GossipMsgs    float64    `json:"gossip_msgs_per_node_per_ann"`
	GossipKB      float64    `json:"gossip_kb_per_node_per_ann"`
	IdleKBs       float64    `json:"idle_kb_per_node_per_s"`
	IdleGossipKBs float64    `json:"idle_gossip_kb_per_node_per_s"`
	JoinKB        float64    `json:"catalogue_kb_per_join"`
	PullMB        int        `json:"pull_mb"`
	Pullers       int        `json:"pullers"`
	Background    int        `json:"pull_background"`
	PullMed       float64    `json:"pull_s_median"`
	PullMax       float64    `json:"pull_s_max"`
	PullsDone     int        `json:"pulls_done"`
	AuthorPart    float64    `json:"pull_author_share"`
	SetupS        float64    `json:"setup_s"`
	CPUS          float64    `json:"cpu_s"`
	Load          float64    `json:"load_avg"`
	JoinedDHT     float64    `json:"dht_joined"`
	JoinS         float64    `json:"dht_join_s"`
	JoinWave      int        `json:"join_wave"`
	WallS         float64    `json:"wall_s"`
	Traffic       trafficOut `json:"traffic_mb,omitempty"`
}

type trafficOut map[string]float64

// simNode is one node of the run.
type simNode struct {
	i      int
	key    crypto.PrivKey
	id     peer.ID
	host   *simHost
	sw     *swarm.Swarm
	bs     blockstore.Blockstore
	seen   atomic.Int64 // ns after t0 when the watched root arrived; 0 = not yet
	alive  bool
	join   bool          // started during the churn
	joinAt time.Duration // when, after the announcement
}

type run struct {
	o      Options
	log    *slog.Logger
	rnd    *rand.Rand
	mn     mocknet.Mocknet
	nodes  []*simNode
	byID   map[peer.ID]*simNode
	places []place
	all    traffic

	provideMed, provideMax float64

	mu      sync.Mutex
	watched cid.Cid
	t0      time.Time
}

// Run builds the network, runs every phase and returns what it measured.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	start := time.Now()
	cpu0 := cputime.Process()
	r := &run{o: o, log: o.Logger, rnd: newRand(o.Seed), byID: map[peer.ID]*simNode{}}
	res := Result{Nodes: o.Nodes, LatencyMS: [2]int{int(o.LatencyMin.Milliseconds()), int(o.LatencyMax.Milliseconds())},
		Jitter: max(o.Jitter, 0), UplinkMbps: max(o.UplinkMbps, 0), Churn: max(o.Churn, 0), Traffic: trafficOut{}}
	defer r.close()

	if o.CPUProfile != "" {
		f, err := os.Create(o.CPUProfile)
		if err != nil {
			return res, fmt.Errorf("scale: cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return res, fmt.Errorf("scale: cpu profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	debug.FreeOSMemory()
	rss0 := rssBytes()
	joiners := 0
	if o.Churn > 0 {
		joiners = int(math.Round(o.Churn * float64(o.Nodes)))
	}
	if err := r.build(o.Nodes + joiners); err != nil {
		return res, err
	}
	debug.FreeOSMemory()
	rssNet := rssBytes()
	if err := r.link(); err != nil {
		return res, err
	}
	debug.FreeOSMemory()
	linkBytes := rssBytes() - rssNet
	res.HarnessMB = round(float64(linkBytes)/1e6, 1)
	r.log.Info("network built", "hosts", len(r.nodes), "links_mb", res.HarnessMB)

	var err error
	if res.JoinedDHT, res.JoinS, err = r.join(ctx, r.nodes[:o.Nodes]); err != nil {
		return res, err
	}
	roots, holders, err := r.prefill(ctx)
	if err != nil {
		return res, err
	}
	res.SetupS = round(time.Since(start).Seconds(), 1)
	res.JoinWave = min(max(o.JoinWave, 0), o.Nodes)
	if res.JoinWave == 0 {
		res.JoinWave = o.Nodes
	}
	res.ProvideMed, res.ProvideMax = r.provideMed, r.provideMax

	// Memory and catalogue of the settled network. Each RSS reading
	// follows a collection that returns freed pages to the system
	// (FreeOSMemory), so that it is the live memory whatever GOGC the
	// harness runs with; a node's RSS between collections is higher by
	// up to its heap (heap_mb_per_node less its stacks) at GOGC=100.
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := r.live()
	n := float64(len(live))
	res.RSSMB = round(float64(rssBytes()-rss0-linkBytes)/1e6/n, 2)
	res.HeapMB = round(float64(ms.HeapInuse+ms.StackInuse)/1e6/n, 2)
	res.StackMB = round(float64(ms.StackInuse)/1e6/n, 2)
	res.Goroutines = round(float64(runtime.NumGoroutine())/n, 1)
	// Mocknet's streams run a goroutine per end where yamux streams run
	// none, but a yamux session runs three per connection and TLS holds
	// buffers: per connection end with the same streams both cost about
	// the same (BenchmarkConnCost), so the RSS stands for a node's. The
	// mocknet share is reported for what it is.
	mg, mb := mockCost()
	res.MockGor, res.MockMB = round(float64(mg)/n, 1), round(float64(mb)/1e6/n, 2)
	// Between collections the heap (not the stacks) grows up to twice
	// its live size at GOGC=100 before the next collection.
	res.RSSPeakMB = round(res.RSSMB+float64(ms.HeapInuse)/1e6/n, 2)
	var cats []float64
	var catBytes, conns int
	for _, sn := range live {
		c := sn.sw.Catalogue("", 0)
		cats = append(cats, float64(len(c)))
		for _, e := range c {
			catBytes += len(e.Data)
		}
		conns += len(sn.host.Network().Conns())
	}
	res.Catalogue = percentile(cats, 0.5)
	res.CatKB = round(float64(catBytes)/1e3/n, 2)
	res.Conns = round(float64(conns)/n, 1)
	res.ConnLow, res.ConnHigh = r.connLow(), r.connHigh()
	res.ConnGraceS = swarm.ConnMgrGracePeriod.Seconds()
	if r.o.ConnGrace > 0 {
		res.ConnGraceS = r.o.ConnGrace.Seconds()
	}
	if o.HeapProfile != "" {
		if err := writeHeap(o.HeapProfile); err != nil {
			return res, err
		}
	}
	r.log.Info("settled", "setup_s", res.SetupS, "rss_mb_per_node", res.RSSMB, "catalogue", res.Catalogue, "conns", res.Conns)

	// Idle traffic, once gossipsub's message cache has forgotten the
	// prefill (history of 5 heartbeats), then the announcement over the
	// same span.
	quiet := max(o.Quiet, 0)
	if quiet > 0 && !sleep(ctx, 6*time.Second) {
		return res, ctx.Err()
	}
	idle0 := r.all.snap()
	if !sleep(ctx, quiet) {
		return res, ctx.Err()
	}
	idle := r.all.snap().sub(idle0)
	quiet = max(quiet, time.Second) // (idle is zero when not measured)
	res.IdleKBs = round(float64(idle[clGossip][0]+idle[clDHT][0]+idle[clCatalogue][0])/1e3/n/quiet.Seconds(), 2)
	res.IdleGossipKBs = round(float64(idle[clGossip][0])/1e3/n/quiet.Seconds(), 2)
	if err := r.announce(ctx, &res, idle, quiet); err != nil {
		return res, err
	}
	if err := r.lookups(ctx, &res, roots, holders); err != nil {
		return res, err
	}
	if o.CPUProfile != "" {
		pprof.StopCPUProfile()
		o.CPUProfile = ""
	}
	if o.Pullers > 0 {
		if err := r.pull(ctx, &res); err != nil {
			return res, err
		}
	}
	for c, name := range classNames {
		res.Traffic[name] = round(float64(r.all[c].bytes.Load())/1e6, 1)
	}
	res.CPUS = round((cputime.Process() - cpu0).Seconds(), 1)
	res.Load = loadAvg()
	res.WallS = round(time.Since(start).Seconds(), 1)
	return res, nil
}

// build makes the mocknet hosts (not yet running a swarm).
func (r *run) build(m int) error {
	r.mn = mocknet.New()
	for i := range m {
		key, _, err := crypto.GenerateEd25519Key(cryptoRand{r.rnd})
		if err != nil {
			return fmt.Errorf("scale: node key: %w", err)
		}
		ip := net.IPv4(10, byte(i>>16), byte(i>>8), byte(i))
		a := ma.StringCast("/ip4/" + ip.String() + "/tcp/4001")
		h, err := r.mn.AddPeer(key, a)
		if err != nil {
			return fmt.Errorf("scale: mock host %d: %w", i, err)
		}
		low, high := r.connLow(), r.connHigh()
		grace := r.o.ConnGrace
		if grace <= 0 {
			grace = swarm.ConnMgrGracePeriod
		}
		up := r.o.UplinkMbps * 1e6 / 8
		sh, err := newSimHost(h, low, high, grace, up, &r.all, func(p peer.ID) time.Duration { return r.delay(i, p) })
		if err != nil {
			return fmt.Errorf("scale: connection manager: %w", err)
		}
		sn := &simNode{i: i, key: key, id: h.ID(), host: sh}
		r.nodes = append(r.nodes, sn)
		r.byID[sn.id] = sn
		r.places = append(r.places, randomPlace(r.rnd))
	}
	return nil
}

// link makes every pair of hosts able to connect (the delays are the
// streams', see simStream).
func (r *run) link() error {
	for i, a := range r.nodes {
		for j := i + 1; j < len(r.nodes); j++ {
			if _, err := r.mn.LinkPeers(a.id, r.nodes[j].id); err != nil {
				return fmt.Errorf("scale: linking hosts: %w", err)
			}
		}
	}
	return nil
}

// delay is the one-way delay from node i to peer p now: the link's own,
// jittered by ±Jitter for each piece written.
func (r *run) delay(i int, p peer.ID) time.Duration {
	b, ok := r.byID[p]
	if !ok {
		return r.o.LatencyMin
	}
	d := linkLatency(r.places[i], r.places[b.i], r.o.LatencyMin, r.o.LatencyMax)
	if r.o.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + r.o.Jitter*(2*rand.Float64()-1)))
	}
	return d
}

func (r *run) bootstrapAddrs(self int) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, b := range r.nodes[:min(r.o.Bootstraps, len(r.nodes))] {
		if b.i == self {
			continue
		}
		as, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: b.id, Addrs: b.host.Addrs()})
		if err == nil {
			out = append(out, as...)
		}
	}
	return out
}

// start runs a swarm on sn's host.
func (r *run) start(ctx context.Context, sn *simNode) error {
	sn.bs = blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	cfg := swarm.Config{
		DHTMode:    swarm.DHTServer,
		LocalOnly:  true,
		Blockstore: sn.bs,
		Validator:  validate,
		Bootstrap:  r.bootstrapAddrs(sn.i),
		Logger:     r.o.NodeLogger,
		OnAnnouncement: func(rc swarm.Received) {
			r.mu.Lock()
			w, t0 := r.watched, r.t0
			r.mu.Unlock()
			if w.Defined() && rc.Root.Equals(w) {
				sn.seen.CompareAndSwap(0, max(int64(time.Since(t0)), 1))
			}
		},
	}
	if r.o.Tune != nil {
		r.o.Tune(&cfg)
	}
	sw, err := swarm.NewWithHost(ctx, cfg, sn.host)
	if err != nil {
		return fmt.Errorf("scale: starting node %d: %w", sn.i, err)
	}
	r.mu.Lock()
	sn.sw, sn.alive = sw, true
	r.mu.Unlock()
	return nil
}

// join starts the nodes in waves of JoinWave, each wave joining the DHT
// (settle) before the next starts; it returns the share of nodes whose
// first refresh finished and the seconds from the first start to the
// last wave's settling.
func (r *run) join(ctx context.Context, nodes []*simNode) (joined, secs float64, err error) {
	w := r.o.JoinWave
	if w <= 0 {
		w = len(nodes)
	}
	t0 := time.Now()
	var ok float64
	for lo := 0; lo < len(nodes); lo += w {
		wave := nodes[lo:min(lo+w, len(nodes))]
		if err := r.startAll(ctx, wave); err != nil {
			return 0, 0, err
		}
		j, _, err := r.settle(ctx, wave)
		if err != nil {
			return 0, 0, err
		}
		ok += j * float64(len(wave))
		r.log.Info("wave joined", "nodes", lo+len(wave), "of", len(nodes), "joined", j, "s", time.Since(t0).Seconds())
	}
	return round(ok/float64(len(nodes)), 3), round(time.Since(t0).Seconds(), 1), nil
}

// startAll starts the bootstrap nodes among nodes, then the others a few
// at a time.
func (r *run) startAll(ctx context.Context, nodes []*simNode) error {
	b := 0
	for b < len(nodes) && nodes[b].i < r.o.Bootstraps {
		b++
	}
	for _, sn := range nodes[:b] {
		if err := r.start(ctx, sn); err != nil {
			return err
		}
	}
	return parallel(ctx, nodes[b:], 8, func(sn *simNode) error { return r.start(ctx, sn) })
}

// settle waits until every node has joined the DHT (its first routing
// table refresh, a lookup per bucket, is done: about a minute at 20–200
// ms), all at once as nodes that start together would, and has gossip
// peers.
func (r *run) settle(ctx context.Context, nodes []*simNode) (joined, secs float64, err error) {
	var done, ok atomic.Int64
	t0 := time.Now()
	err = parallel(ctx, nodes, len(nodes), func(sn *simNode) error {
		defer func() {
			if d := done.Add(1); d%int64(max(len(nodes)/10, 1)) == 0 {
				r.log.Info("joined the DHT", "nodes", d, "of", len(nodes), "s", time.Since(t0).Seconds())
			}
		}()
		// The bootstrap dials run in the background: wait for the first.
		for wait := 0; len(sn.host.Network().Peers()) == 0 && wait < 300; wait++ {
			if !sleep(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
		}
		// Until identify has told the DHT that its first peers speak
		// it, the table is empty and the refresh fails at once: again.
		rctx, cancel := context.WithTimeout(ctx, r.o.JoinTimeout)
		defer cancel()
		for {
			err := sn.sw.RefreshRoutingTable(rctx)
			if err == nil {
				ok.Add(1)
				return nil
			}
			if !strings.Contains(err.Error(), "failed to find any peer in table") || !sleep(rctx, 500*time.Millisecond) {
				r.log.Warn("routing table refresh failed", "node", sn.i, "err", err)
				return nil
			}
		}
	})
	if err != nil {
		return 0, 0, err
	}
	joined, secs = round(float64(ok.Load())/float64(len(nodes)), 3), round(time.Since(t0).Seconds(), 1)
	// Two gossipsub heartbeats for the meshes.
	if !sleep(ctx, 2*time.Second) {
		return 0, 0, ctx.Err()
	}
	return joined, secs, nil
}

// recordCopies is how many peers a provider record is stored on (the
// DHT's bucket size, K = 20).
const recordCopies = 20

// prefill has Authors nodes announce and provide one adapter each and
// waits for the catalogue to fill; it returns the roots and, for each, the
// peers that were sent its provider record.
func (r *run) prefill(ctx context.Context) ([]cid.Cid, []map[peer.ID]bool, error) {
	live := r.live()
	authors := r.pick(live, min(r.o.Authors, len(live)), nil)
	roots := make([]cid.Cid, len(authors))
	holders := make([]map[peer.ID]bool, len(authors))
	idx := map[*simNode]int{}
	for i, a := range authors {
		idx[a] = i
		roots[i] = r.randomCID()
	}
	var provMu sync.Mutex
	var provS []float64
	err := parallel(ctx, authors, len(authors), func(a *simNode) error {
		i := idx[a]
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		t := time.Now()
		err := a.sw.Provide(pctx, roots[i])
		cancel()
		if err != nil {
			r.log.Warn("provide failed", "author", a.i, "err", err)
		} else {
			provMu.Lock()
			provS = append(provS, time.Since(t).Seconds())
			provMu.Unlock()
		}
		signed, err := signAnn(a.key, roots[i], fmt.Sprintf("prefill-%d", i), 4096)
		if err != nil {
			return err
		}
		if err := a.sw.Remember(ctx, signed); err != nil {
			return err
		}
		return a.sw.Announce(ctx, signed)
	})
	if err != nil {
		return nil, nil, err
	}
	r.provideMed, r.provideMax = round(percentile(provS, 0.5), 2), round(percentile(provS, 1), 2)
	r.log.Info("provided", "roots", len(provS), "s_median", r.provideMed, "s_max", r.provideMax)
	// The provider records went to the K closest peers to each key (by
	// XOR distance), which the lookups' hops are counted to.
	ids := make([]peer.ID, len(live))
	for i, sn := range live {
		ids[i] = sn.id
	}
	for i, c := range roots {
		holders[i] = map[peer.ID]bool{}
		for _, p := range kb.SortClosestPeers(ids, kb.ConvertKey(string(c.Hash())))[:min(recordCopies, len(ids))] {
			holders[i][p] = true
		}
	}
	// Until (nearly) every node lists them all, or 30 s.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		full := 0
		for _, sn := range live {
			if len(sn.sw.Catalogue("", 0)) >= len(roots) {
				full++
			}
		}
		if full*100 >= len(live)*99 {
			break
		}
		if !sleep(ctx, 250*time.Millisecond) {
			return nil, nil, ctx.Err()
		}
	}
	return roots, holders, nil
}

// announce publishes the watched announcement while nodes leave and join,
// and measures how fast it reaches the live nodes.
func (r *run) announce(ctx context.Context, res *Result, idle trafficSnap, quiet time.Duration) error {
	live := r.live()
	author := r.pick(live[r.o.Bootstraps:], 1, nil)[0]
	root := r.randomCID()
	signed, err := signAnn(author.key, root, "watched", 10<<20)
	if err != nil {
		return err
	}
	// Who leaves (not a bootstrap node, not the author) and who joins.
	nLeave := 0
	if r.o.Churn > 0 {
		nLeave = int(math.Round(r.o.Churn * float64(r.o.Nodes)))
	}
	leavers := r.pick(live[r.o.Bootstraps:], nLeave, map[*simNode]bool{author: true})
	joiners := r.nodes[r.o.Nodes:]
	r.mu.Lock()
	r.watched, r.t0 = root, time.Now()
	r.mu.Unlock()
	t0 := r.t0
	snap0 := r.all.snap()
	var churn sync.WaitGroup
	var joinErr atomic.Pointer[error]
	for _, sn := range leavers {
		at := time.Duration(r.rnd.Float64() * float64(r.o.ChurnWindow))
		churn.Go(func() {
			if sleep(ctx, at) {
				r.mu.Lock()
				sn.alive = false
				r.mu.Unlock()
				_ = sn.sw.Close()
			}
		})
	}
	joinCat0 := r.all[clCatalogue].bytes.Load()
	for _, sn := range joiners {
		at := time.Duration(r.rnd.Float64() * float64(r.o.ChurnWindow))
		sn.join = true
		churn.Go(func() {
			if sleep(ctx, at) {
				sn.joinAt = time.Since(t0)
				if err := r.start(ctx, sn); err != nil {
					joinErr.Store(&err)
				}
			}
		})
	}
	author.seen.Store(1)
	if err := author.sw.Remember(ctx, signed); err != nil {
		return err
	}
	if err := author.sw.Announce(ctx, signed); err != nil {
		return fmt.Errorf("scale: announcing: %w", err)
	}
	// Watch until every live node has it (after the churn), or Observe.
	for {
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
		el := time.Since(t0)
		if el < r.o.ChurnWindow {
			continue
		}
		all := true
		for _, sn := range r.live() {
			if sn.seen.Load() == 0 {
				all = false
				break
			}
		}
		if all || el > r.o.Observe {
			break
		}
	}
	churn.Wait()
	if p := joinErr.Load(); p != nil {
		return *p
	}
	window := time.Since(t0)
	// Let the reannouncement (ReannounceDelay) land in the same window as
	// it would for gossip traffic.
	if window < quiet {
		sleep(ctx, quiet-window)
		window = quiet
	}
	traffic := r.all.snap().sub(snap0)
	live = r.live()
	var times []float64
	joinSeen, joinN := 0, 0
	for _, sn := range live {
		s := sn.seen.Load()
		// A node that joined after the announcement is timed from when
		// it started: it could not have it before.
		t := math.Inf(1)
		if s > 0 {
			t = max(time.Duration(s)-sn.joinAt, 0).Seconds()
		}
		times = append(times, t)
		if sn.join {
			joinN++
			if s > 0 {
				joinSeen++
			}
		}
	}
	sort.Float64s(times)
	reached := 0
	for _, t := range times {
		if !math.IsInf(t, 1) {
			reached++
		}
	}
	res.Left, res.Joined, res.Live = len(leavers), len(joiners), len(live)
	res.Coverage = round(float64(reached)/float64(len(live)), 4)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(times)))) - 1
		if i < 0 || math.IsInf(times[i], 1) {
			return -1
		}
		return round(times[i], 3)
	}
	res.T50, res.T90, res.T99, res.T100 = q(0.5), q(0.9), q(0.99), q(1)
	if joinN > 0 {
		res.JoinersCov = round(float64(joinSeen)/float64(joinN), 4)
		res.JoinKB = round(float64(r.all[clCatalogue].bytes.Load()-joinCat0)/1e3/float64(joinN), 1)
	}
	// Gossip over the window, less the idle rate over as long.
	scale := window.Seconds() / quiet.Seconds()
	n := float64(len(live))
	res.GossipKB = round((float64(traffic[clGossip][0])-scale*float64(idle[clGossip][0]))/1e3/n, 2)
	res.GossipMsgs = round((float64(traffic[clGossip][1])-scale*float64(idle[clGossip][1]))/n, 2)
	r.log.Info("announcement", "t50", res.T50, "t90", res.T90, "t99", res.T99, "coverage", res.Coverage, "joiners", res.JoinersCov)
	return nil
}

// lookups times DHT provider lookups of the prefilled roots from random
// live nodes, counting the hops to the first peer holding the record.
func (r *run) lookups(ctx context.Context, res *Result, roots []cid.Cid, holders []map[peer.ID]bool) error {
	live := r.live()
	res.HopsBound = int(math.Ceil(math.Log2(float64(len(live)))))
	type job struct {
		from *simNode
		k    int
	}
	jobs := make([]job, r.o.Lookups)
	for i := range jobs {
		jobs[i] = job{from: live[r.rnd.IntN(len(live))], k: r.rnd.IntN(len(roots))}
	}
	var mu sync.Mutex
	var hops, secs []float64
	found := 0
	err := parallel(ctx, jobs, 4, func(j job) error {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ectx, events := routing.RegisterForQueryEvents(lctx)
		h := newHopCounter(holders[j.k])
		done := make(chan struct{})
		go func() {
			defer close(done)
			for e := range events {
				h.event(e)
			}
		}()
		t := time.Now()
		provs, err := j.from.sw.FindProviders(ectx, roots[j.k], 1)
		el := time.Since(t).Seconds()
		cancel()
		<-done
		if err != nil || len(provs) == 0 {
			r.log.Debug("lookup found nothing", "err", err)
			return nil
		}
		hp := h.hops()
		if holders[j.k][j.from.id] {
			hp = 0
		}
		mu.Lock()
		found++
		secs = append(secs, el)
		if hp >= 0 {
			hops = append(hops, float64(hp))
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	res.Lookups, res.LookupsOK = len(jobs), found
	res.HopsMedian, res.HopsP99 = percentile(hops, 0.5), percentile(hops, 0.99)
	res.LookupMed, res.LookupP99 = round(percentile(secs, 0.5), 3), round(percentile(secs, 0.99), 3)
	r.log.Info("lookups", "found", found, "hops_median", res.HopsMedian, "hops_p99", res.HopsP99, "s_median", res.LookupMed)
	return nil
}

// hopCounter follows a DHT query's events: the peers a node first asks
// (from its routing table) are one hop away, the peers a k-hop peer names
// are k+1 hops away. The lookup's hops are those of the first peer asked
// that holds the provider record.
type hopCounter struct {
	holders map[peer.ID]bool
	depth   map[peer.ID]int
	first   int
}

func newHopCounter(holders map[peer.ID]bool) *hopCounter {
	return &hopCounter{holders: holders, depth: map[peer.ID]int{}, first: -1}
}

func (h *hopCounter) event(e *routing.QueryEvent) {
	switch e.Type {
	case routing.SendingQuery:
		d, ok := h.depth[e.ID]
		if !ok {
			d = 1
			h.depth[e.ID] = d
		}
		if h.holders[e.ID] && (h.first < 0 || d < h.first) {
			h.first = d
		}
	case routing.PeerResponse:
		d := h.depth[e.ID]
		for _, ai := range e.Responses {
			if _, ok := h.depth[ai.ID]; !ok {
				h.depth[ai.ID] = d + 1
			}
		}
	}
}

func (h *hopCounter) hops() int { return h.first }

// pull has Pullers + Background nodes fetch one PullMB adapter at once
// from a popular author, each providing it once it has it (as a node
// does after a pull), and times the Pullers.
func (r *run) pull(ctx context.Context, res *Result) error {
	live := r.live()
	author := r.pick(live, 1, nil)[0]
	data := make([]byte, r.o.PullMB<<20)
	for i := range data {
		data[i] = byte(r.rnd.Uint32())
	}
	root, err := importFile(ctx, author.bs, data)
	if err != nil {
		return err
	}
	signed, err := signAnn(author.key, root, "popular", uint64(len(data)))
	if err != nil {
		return err
	}
	if err := author.sw.Remember(ctx, signed); err != nil {
		return err
	}
	if err := author.sw.Provide(ctx, root); err != nil {
		r.log.Warn("author could not provide", "err", err)
	}
	if err := author.sw.Announce(ctx, signed); err != nil {
		return err
	}
	// The pullers have seen the announcement (gossip), as a user who
	// pulls would have.
	if !sleep(ctx, 3*time.Second) {
		return ctx.Err()
	}
	n := min(r.o.Pullers+r.o.Background, len(live)-1)
	pullers := r.pick(live, n, map[*simNode]bool{author: true})
	timed := map[*simNode]bool{}
	for _, p := range pullers[:min(r.o.Pullers, n)] {
		timed[p] = true
	}
	res.PullMB, res.Pullers, res.Background = r.o.PullMB, min(r.o.Pullers, n), n-min(r.o.Pullers, n)
	authorBlocks0 := author.host.traffic[clBlocks].bytes.Load() + author.host.traffic[clBitswap].bytes.Load()
	all0 := r.all[clBlocks].bytes.Load() + r.all[clBitswap].bytes.Load()
	pctx, cancel := context.WithTimeout(ctx, r.o.PullTimeout)
	defer cancel()
	var mu sync.Mutex
	var times []float64
	done := 0
	var wg sync.WaitGroup
	t0 := time.Now()
	for _, p := range pullers {
		wg.Go(func() {
			if err := p.sw.Fetch(pctx, root, nil, swarm.WithServeWhileFetching()); err != nil {
				r.log.Debug("pull failed", "node", p.i, "err", err)
				return
			}
			el := time.Since(t0).Seconds()
			mu.Lock()
			done++
			if timed[p] {
				times = append(times, el)
			}
			mu.Unlock()
			_ = p.sw.Provide(pctx, root)
		})
	}
	wg.Wait()
	res.PullsDone = done
	if len(times) == res.Pullers {
		res.PullMed, res.PullMax = round(percentile(times, 0.5), 2), round(percentile(times, 1), 2)
	} else {
		res.PullMed, res.PullMax = -1, -1
	}
	served := author.host.traffic[clBlocks].bytes.Load() + author.host.traffic[clBitswap].bytes.Load() - authorBlocks0
	total := r.all[clBlocks].bytes.Load() + r.all[clBitswap].bytes.Load() - all0
	if total > 0 {
		res.AuthorPart = round(float64(served)/float64(total), 3)
	}
	r.log.Info("pull", "done", done, "of", n, "median_s", res.PullMed, "max_s", res.PullMax, "author_share", res.AuthorPart)
	return nil
}

func (r *run) live() []*simNode {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*simNode
	for _, sn := range r.nodes {
		if sn.alive {
			out = append(out, sn)
		}
	}
	return out
}

// pick chooses k distinct nodes of from at random, none in not.
func (r *run) pick(from []*simNode, k int, not map[*simNode]bool) []*simNode {
	var c []*simNode
	for _, sn := range from {
		if !not[sn] {
			c = append(c, sn)
		}
	}
	r.rnd.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
	return c[:min(k, len(c))]
}

func (r *run) randomCID() cid.Cid {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(r.rnd.Uint32())
	}
	h, _ := mh.Sum(b, mh.SHA2_256, -1)
	return cid.NewCidV1(cid.DagProtobuf, h)
}

func (r *run) close() {
	var wg sync.WaitGroup
	for _, sn := range r.nodes {
		if sn.sw != nil {
			wg.Go(func() { _ = sn.sw.Close() })
		}
	}
	wg.Wait()
	if r.mn != nil {
		_ = r.mn.Close()
	}
}

// validate is the node's announcement validator (node/publish.go).
func validate(_ context.Context, _ peer.ID, data []byte) (swarm.Announcement, error) {
	s, err := protocol.Open(data)
	if err != nil {
		return swarm.Announcement{}, err
	}
	return swarm.Announcement{Root: s.Root, Base: s.Manifest.BaseFingerprint, Author: s.Author, Created: s.Created, Decoded: s}, nil
}

// simBase is the base fingerprint every simulated node runs.
const simBase = "scale-sim-base"

func signAnn(key crypto.PrivKey, root cid.Cid, name string, size uint64) ([]byte, error) {
	return protocol.Sign(protocol.Announcement{
		Root: root, Size: size, Created: time.Now(),
		Manifest: protocol.Manifest{Name: name, BaseFingerprint: simBase, BaseName: "sim", Rank: 8, Alpha: 16,
			TargetModules: []string{"q_proj", "v_proj"}, Tags: []string{"scale"}},
	}, key)
}

// importFile stores data as a UnixFS file with the store's parameters.
func importFile(ctx context.Context, bs blockstore.Blockstore, data []byte) (cid.Cid, error) {
	dag := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
	params := helpers.DagBuilderParams{Dagserv: dag, Maxlinks: store.MaxLinks, RawLeaves: true,
		CidBuilder: cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}}
	db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), store.ChunkSize))
	if err != nil {
		return cid.Undef, err
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		return cid.Undef, fmt.Errorf("scale: importing the adapter: %w", err)
	}
	_ = ctx
	return nd.Cid(), nil
}

// parallel runs f on every item, at most k at once, and returns the first error.
func parallel[T any](ctx context.Context, items []T, k int, f func(T) error) error {
	sem := make(chan struct{}, k)
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(it); err != nil {
				first.CompareAndSwap(nil, &err)
			}
		})
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return *p
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return -1
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func round(v float64, digits int) float64 {
	f := math.Pow(10, float64(digits))
	return math.Round(v*f) / f
}

// rssBytes is the process's resident set size (Linux; 0 elsewhere).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// loadAvg is the machine's one-minute load average (Linux; 0 elsewhere):
// the harness's times stretch when other work holds the cores.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// writeHeap writes a heap profile to path and a goroutine profile beside it.
func writeHeap(path string) error {
	for _, p := range []struct{ name, path string }{{"heap", path}, {"goroutine", strings.TrimSuffix(path, ".pprof") + ".goroutines.pprof"}} {
		f, err := os.Create(p.path)
		if err != nil {
			return fmt.Errorf("scale: %s profile: %w", p.name, err)
		}
		err = pprof.Lookup(p.name).WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("scale: %s profile: %w", p.name, err)
		}
	}
	return nil
}

// cryptoRand adapts the run's seeded generator to io.Reader for key
// generation (repeatable node IDs; never for real keys).
type cryptoRand struct{ r *rand.Rand }

func (c cryptoRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c.r.Uint32())
	}
	return len(p), nil
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// connLow is the nodes' connection manager low water mark: Options.ConnLow
// or swarm's default.
func (r *run) connLow() int {
	if r.o.ConnLow > 0 {
		return r.o.ConnLow
	}
	return swarm.DefaultConnMgrLow
}

// connHigh is the nodes' connection manager high water mark: Options.ConnHigh
// or swarm's default.
func (r *run) connHigh() int {
	if r.o.ConnHigh > 0 {
		return r.o.ConnHigh
	}
	return swarm.DefaultConnMgrHigh
}
