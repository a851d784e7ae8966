package swarm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Progress reports a Fetch as it goes.
type Progress struct {
	// Blocks and Bytes count the blocks fetched from peers so far.
	Blocks, Bytes int64
	// Bitswap counts the fetched blocks that came over bitswap; the others
	// came over BlocksProtocol.
	Bitswap int64
	// Local counts blocks that were already in the blockstore (not fetched).
	Local int64
}

const (
	// fetchBatch bounds how many blocks of one DAG level are handed to
	// bitswap at once.
	fetchBatch = 256
	// fetchSlots is how many BlocksProtocol requests one provider serves
	// for a fetch at once (the next is under way while one is streaming).
	fetchSlots = 2
	// fetchMaxProviders bounds the providers one fetch asks at once.
	fetchMaxProviders = 8
	// fetchChunk bounds the CIDs of one request of a fetch.
	fetchChunk = 16
	// The DHT is a fetch's fallback for finding providers: it runs on the
	// providers it knows (the announcement's author, and the other holders
	// those name over HoldersProtocol) and asks the DHT for more only when
	// none of them is usable, when no block has arrived for
	// fetchStallSearch while blocks wait, or, when none of its providers
	// speaks HoldersProtocol (older nodes), fetchProviderSearchDelay into
	// the fetch, should blocks still wait for a free provider.
	fetchProviderSearchDelay = time.Second
	fetchStallSearch         = 2 * time.Second
	// fetchProvideEarlyBytes is how much of a DAG a fetch with
	// WithServeWhileFetching holds before it provides the root in the DHT:
	// a smaller pull (most adapters) leaves that to its caller, and the
	// peers pulling at the same time find it through the author's list of
	// holders (HoldersProtocol) instead.
	fetchProvideEarlyBytes = 32 << 20
	// fetchProviderSearchEvery is how long a fetch waits after one DHT
	// lookup of providers before the next, for as long as it runs: peers
	// that started the same pull and serve what they hold so far (see
	// WithServeWhileFetching) or that finished it show up this way.
	fetchProviderSearchEvery = 3 * time.Second
	// fetchNotHereRetry is how long a provider that answered "not here"
	// for a block is not asked for it again in this fetch: a peer still
	// fetching the DAG may have it a moment later.
	fetchNotHereRetry = 2 * time.Second
	// fetchBitswapStall is how long a fetch waits with blocks wanted over
	// bitswap and none arriving before it drops the bitswap session and
	// wants what is left in a new one (which asks every connected peer
	// afresh) and asks the connected orchmind peers over BlocksProtocol
	// too (askConnected); each restart that brought nothing waits half as
	// long again (4, 6, 9, 13.5 s … after the last block), so a block that
	// takes long on a slow link is not cut off for ever. A session whose
	// wants went to a peer that then left could otherwise wait on that
	// peer for minutes (TestFetchFromTwoProvidersOneLeavesHalfway: 1–2 runs
	// in 100 stalled past its 20 s; with bitswap restarts alone, in ~700
	// runs 7 recovered after one to three of them, in 4–13.6 s, and one
	// still ran past 20 s: new sessions too can stall on the remaining
	// peer, for a reason inside bitswap not found;
	// TestFetchAsksConnectedPeersWhenBitswapStalls).
	fetchBitswapStall = 4 * time.Second
	// fetchServingChunk replaces fetchChunk in a fetch that serves what
	// it holds while it runs: the blocks not yet asked for stay queued
	// for whichever provider is free first, so that peers that join the
	// pull (other pullers, found in the DHT) take a share at once rather
	// than the first provider holding most of the DAG in long requests.
	fetchServingChunk = 2
	// writeBatchBytes is the most bytes of fetched blocks that wait for
	// the writer while it is busy; past it the fetch waits too.
	writeBatchBytes = 8 << 20
	// commitBytes is how many bytes of fetched blocks a stagedStore's
	// writer holds uncommitted (written, not yet synced) before it
	// commits them: an adapter of up to 16 MiB is synced once, at the
	// end (its writeback starts as each block is written), and a crash
	// costs at most that much fetched again.
	commitBytes = 16 << 20
)

// Fetch makes sure the whole DAG under root is in the blockstore, fetching
// what is missing from peers that have it. It asks the peers known to hold
// root — the authors of its announcements and, if the fetch is not done
// within a second (or there are no such peers), providers found in the DHT,
// looked up again every 3 s while the fetch runs — over BlocksProtocol,
// several at once and each for many blocks per request; whatever they cannot
// give (a provider that leaves, lies, or does not speak the protocol) is
// fetched with bitswap from any peer that has it, and when bitswap brings
// nothing for a few seconds, asked of the connected orchmind peers over
// BlocksProtocol as well. Every received block is hash-checked against its
// CID before it is stored, so a peer cannot make us store wrong data, and a
// peer that sends wrong bytes is banned (see BadPeers). Verified blocks are
// stored by a writer goroutine while the fetch goes on (see startWriter), in
// batches each synced to disk before its blocks are reported; Fetch returns
// once all are. Blocks already present are not fetched again, so a Fetch
// interrupted by a restart resumes where it stopped (blocks not yet
// committed then are fetched again). progress, if not nil, is called after
// each stored block, from Fetch's goroutine. Only dag-pb and raw blocks are
// understood.
func (s *Swarm) Fetch(ctx context.Context, root cid.Cid, progress func(Progress), opts ...FetchOption) error {
	if !root.Defined() {
		return errors.New("swarm: fetch: empty CID")
	}
	switch root.Type() {
	case cid.DagProtobuf, cid.Raw:
	default:
		return fmt.Errorf("swarm: fetch %s: unsupported codec %#x (only dag-pb and raw)", root, root.Type())
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	f := &fetcher{s: s, ctx: ctx, root: root, bs: s.cfg.Blockstore, progress: progress,
		known: map[peer.ID]bool{}, failed: map[peer.ID]bool{}, newProv: make(chan struct{}, 1)}
	f.putVerified, _ = f.bs.(verifiedPutter)
	// The blockservice writes blocks fetched over bitswap itself and only
	// logs a failed write (the fetch then just misses blocks); watch the
	// store so a full disk stops the fetch at once and is reported as
	// what it is.
	pf, watch := f.bs.(putFailureCounter)
	var n0 uint64
	if watch {
		n0, _ = pf.PutFailures()
	}
	f.fail = func(err error) error {
		if watch {
			if n, perr := pf.PutFailures(); n > n0 {
				cancel(fmt.Errorf("storing fetched blocks failed: %w", perr))
			}
		}
		return fetchErr(ctx, root, err)
	}
	if watch {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				case <-t.C:
					if n, err := pf.PutFailures(); n > n0 {
						cancel(fmt.Errorf("storing fetched blocks failed: %w", err))
						return
					}
				}
			}
		}()
	}
	var fo fetchOptions
	for _, o := range opts {
		o(&fo)
	}
	f.sink, f.early = fo.sink, fo.early
	f.commitBytes, f.chunk = commitBytes, fetchChunk
	if fo.serve {
		f.chunk = fetchServingChunk
		f.serve = &sync.Once{}
		f.shared = map[string]blocks.Block{}
		s.fetchingBlks.startRoot(root)
		defer s.fetchingBlks.endRoot(root)
		defer f.unshare()
	}
	if fo.maxBytes > 0 {
		f.maxBytes = fo.maxBytes + fo.maxBytes/64 + 1<<20
	}
	for _, ai := range fo.providers {
		if len(ai.Addrs) > 0 {
			s.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, 10*time.Minute)
		}
		f.addProvider(ai.ID)
	}
	for _, r := range s.catalog.byRoot(root) {
		f.addProvider(r.Author)
	}
	stopWriter := f.startWriter()
	defer stopWriter()
	f.holderOnly, f.from = map[peer.ID]bool{}, map[peer.ID]int{}
	f.holding = make(chan struct{})
	holdersDone := make(chan struct{})
	go func() { defer close(holdersDone); f.holdersLoop(f.holding) }()
	defer func() { cancel(nil); <-holdersDone }()
	var dhtOnce sync.Once
	f.searchDHT = func() { dhtOnce.Do(func() { f.searched.Store(true); go f.findProviders() }) }
	f.dhtDue = make(chan struct{})
	f.lastBlock.Store(time.Now().UnixNano())
	stopDue := f.watchDHTDue()
	defer stopDue()

	visited := cid.NewSet()
	visited.Add(root)
	level := []cid.Cid{root}
	for len(level) > 0 {
		var next []cid.Cid
		for start := 0; start < len(level); start += fetchBatch {
			batch := level[start:min(start+fetchBatch, len(level))]
			links, err := f.level(batch)
			if err != nil {
				return err
			}
			for _, c := range links {
				if visited.Visit(c) {
					next = append(next, c)
				}
			}
		}
		level = next
	}
	// Wait for the last writes: Fetch returns once every block is stored.
	for f.writing || len(f.batch) > 0 || f.unstored > 0 {
		f.final = true
		f.kick()
		select {
		case d := <-f.written:
			if err := f.stored(d); err != nil {
				return err
			}
		case <-ctx.Done():
			return f.fail(ctx.Err())
		}
	}
	if st, err := s.bswap.Stat(); err == nil {
		first, fromFirst := f.firstSource()
		s.log.Debug("fetched", "root", root.String(), "blocks", f.pr.Blocks, "over_bitswap", f.pr.Bitswap, "local", f.pr.Local, "bytes", f.pr.Bytes,
			"bitswap_dup_blocks", st.DupBlksReceived, "bitswap_dup_bytes", st.DupDataReceived,
			"sources", len(f.from), "first_provider", first, "blocks_from_first", fromFirst)
	}
	return nil
}

// ErrTooLarge is wrapped by Fetch errors when a DAG is larger than
// WithMaxBytes allows.
var ErrTooLarge = errors.New("the DAG is larger than expected")

// FetchOption adjusts a Fetch.
type FetchOption func(*fetchOptions)

type fetchOptions struct {
	maxBytes  int64
	providers []peer.AddrInfo
	sink      func(blocks.Block)
	early     bool // sink gets fetched blocks on arrival, before they are stored
	serve     bool // WithServeWhileFetching
}

// WithServeWhileFetching makes Fetch provide root in the DHT as soon as
// its first fetched blocks are stored, rather than leaving that to the
// caller once the whole DAG is in: other peers pulling the same DAG then
// find this one (Fetch looks for providers again every few seconds) and
// take from it the blocks it already holds — it answers "not here" for
// the others, and they ask elsewhere — so the load of a popular pull
// spreads over its pullers instead of all falling on the author. Blocks
// are committed to the store every 2 MiB instead of 16 MiB so that they
// can be served sooner, and each request asks for at most 2 blocks so
// that the others wait for whichever provider is free first. If the
// fetch fails, the provider record stays until it expires and this node
// answers "not here" for what it lacks.
func WithServeWhileFetching() FetchOption {
	return func(o *fetchOptions) { o.serve = true }
}

// WithBlocks hands every block Fetch fetches (each checked against its
// CID), and every dag-pb block it reads from the blockstore, to f, from
// Fetch's goroutine once the block is stored: a caller about to read the
// DAG can keep them instead of reading them back.
func WithBlocks(f func(blocks.Block)) FetchOption {
	return func(o *fetchOptions) { o.sink, o.early = f, false }
}

// WithVerifiedBlocks is WithBlocks, except that f gets each block fetched
// over BlocksProtocol as soon as its bytes are checked against its CID,
// before it is stored (it may not be in the blockstore yet, and if the
// fetch fails it may never be): for a caller that writes the DAG out
// beside the fetch and uses the result only once Fetch has returned
// without an error, when every block is stored.
func WithVerifiedBlocks(f func(blocks.Block)) FetchOption {
	return func(o *fetchOptions) { o.sink, o.early = f, true }
}

// WithMaxBytes bounds the bytes of blocks a Fetch takes from peers (the
// DAG's expected size, such as an announcement's, plus room for the dag-pb
// nodes: n/64 + 1 MiB): a DAG whose root's links claim more is refused at
// once, and the fetch stops as soon as more has arrived. The links' sizes
// come from whoever made the DAG, so they only ever lower what is
// fetched, never raise the bound.
func WithMaxBytes(n int64) FetchOption {
	return func(o *fetchOptions) { o.maxBytes = n }
}

// WithProviders adds peers known to hold the DAG (found by the caller, for
// example with FindProviders) to those Fetch asks first.
func WithProviders(ps ...peer.AddrInfo) FetchOption {
	return func(o *fetchOptions) { o.providers = append(o.providers, ps...) }
}

// verifiedPutter is implemented by blockstores that can store blocks the
// caller has already hash-checked without hashing them again (store.Store).
type verifiedPutter interface {
	PutManyVerified(ctx context.Context, bs []blocks.Block) error
}

// spaceChecker is implemented by blockstores that can tell ahead whether
// a number of bytes fits (store.Store).
type spaceChecker interface{ CheckSpace(need int64) error }

// putFailureCounter is implemented by blockstores that count failed writes
// (store.Store).
type putFailureCounter interface{ PutFailures() (uint64, error) }

// fetcher is one Fetch under way.
type fetcher struct {
	s           *Swarm
	ctx         context.Context
	root        cid.Cid
	bs          blockstore.Blockstore
	putVerified verifiedPutter
	progress    func(Progress)
	sink        func(blocks.Block)
	early       bool // sink is called on arrival (WithVerifiedBlocks)
	pr          Progress
	maxBytes    int64                   // of blocks from peers (0: no bound); see WithMaxBytes
	commitBytes int64                   // see commitBytes and WithServeWhileFetching
	chunk       int                     // fetchChunk or fetchServingChunk
	serve       *sync.Once              // registers as a holder, provides root (WithServeWhileFetching)
	holding     chan struct{}           // closed once this node holds blocks to serve (holdersLoop)
	provideOnce sync.Once               // provideEarly
	shared      map[string]blocks.Block // in s.fetchingBlks, not yet reported stored
	got         int64                   // bytes of blocks from peers so far
	fail        func(error) error
	searchDHT   func()             // starts findProviders (once)
	searched    atomic.Bool        // searchDHT ran
	dhtDue      chan struct{}      // closed when the DHT should be asked (watchDHTDue)
	lastBlock   atomic.Int64       // when a block last arrived (unix ns)
	holdersOK   atomic.Bool        // a provider answered a holders request
	sess        ipld.NodeGetter    // bitswap session, made when first needed
	sessCancel  context.CancelFunc // ends sess (see fetchBitswapStall)

	// Fetched blocks are written by one writer goroutine while the fetch
	// goes on: batch collects the blocks that arrive while it is busy
	// (group commit), and it takes them all when it is free.
	batch      []blocks.Block
	batchBytes int
	writing    bool           // the writer has a batch
	unstored   int            // blocks given to the writer, not reported stored yet
	final      bool           // all blocks are in: the writer commits what it holds
	toWrite    chan writeReq  // to the writer
	written    chan writeDone // from the writer

	mu     sync.Mutex
	provs  []peer.ID        // peers said to hold root, in the order found
	known  map[peer.ID]bool // provs as a set
	failed map[peer.ID]bool // providers not asked again in this fetch
	// holderOnly are providers named by another's holders list: they are
	// not asked for holders themselves.
	holderOnly map[peer.ID]bool
	from       map[peer.ID]int // blocks received over BlocksProtocol, per provider (Fetch's goroutine)
	newProv    chan struct{}   // a provider was added
}

// addProvider adds p to the peers asked over BlocksProtocol.
func (f *fetcher) addProvider(p peer.ID) {
	if p == "" || p == f.s.host.ID() || f.s.audit.banned(p) {
		return
	}
	f.mu.Lock()
	if f.known[p] {
		f.mu.Unlock()
		return
	}
	f.known[p] = true
	f.provs = append(f.provs, p)
	f.mu.Unlock()
	select {
	case f.newProv <- struct{}{}:
	default:
	}
}

// askConnected adds the connected peers that speak BlocksProtocol to the
// providers asked directly: a bitswap session that stalled (see
// fetchBitswapStall) may stall again on the same peers, while those that
// are orchmind nodes can be asked for the blocks themselves. A peer that
// lacks them answers "not here" and is asked again only after
// fetchNotHereRetry; they are not asked for holders lists.
func (f *fetcher) askConnected() {
	for _, p := range f.s.host.Network().Peers() {
		if ok, err := f.s.host.Peerstore().SupportsProtocols(p, BlocksProtocol); err != nil || len(ok) == 0 {
			continue
		}
		f.addHolderOnly(p)
	}
}

// addHolderOnly adds p to the providers, as one not asked for holders
// lists itself (unless it was a provider already): a holder another named,
// or a connected peer asked after a bitswap stall.
func (f *fetcher) addHolderOnly(p peer.ID) {
	f.mu.Lock()
	if !f.known[p] {
		f.holderOnly[p] = true
	}
	f.mu.Unlock()
	f.addProvider(p)
}

// findProviders adds the DHT's providers of root as they are found, and
// looks again every fetchProviderSearchEvery until the fetch ends: peers
// pulling the same DAG provide it while they fetch or once they are done.
func (f *fetcher) findProviders() {
	for {
		if f.s.dht.RoutingTable().Size() > 0 {
			for ai := range f.s.dht.FindProvidersAsync(f.ctx, f.root, 20) {
				if ai.ID == f.s.host.ID() {
					continue
				}
				if len(ai.Addrs) > 0 {
					f.s.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, 10*time.Minute)
				}
				f.addProvider(ai.ID)
			}
		}
		t := time.NewTimer(fetchProviderSearchEvery)
		select {
		case <-f.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// fetchEvent is a block that arrived, or the end of a request.
type fetchEvent struct {
	blk    blocks.Block
	stored bool // fetched over bitswap: the blockservice stored it

	done     bool // a request ended
	bitswap  bool // ... the bitswap one
	gen      int  // the bitswap session's generation (see fetchBitswapStall)
	from     peer.ID
	chunk    []cid.Cid
	missing  []cid.Cid
	answered int
	err      error
}

type cidState uint8

const (
	stQueued cidState = iota
	stAsked
	stHave
)

// level gets the blocks cs (in the store or from peers) and returns the
// links of those that are dag-pb nodes.
func (f *fetcher) level(cs []cid.Cid) ([]cid.Cid, error) {
	ctx := f.ctx
	var links []cid.Cid
	state := make(map[cid.Cid]cidState, len(cs))
	var queue []cid.Cid
	for _, c := range cs {
		has, err := f.bs.Has(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("swarm: fetch %s: checking the blockstore: %w", f.root, err)
		}
		if !has {
			state[c] = stQueued
			queue = append(queue, c)
			continue
		}
		f.pr.Local++
		if c.Type() == cid.DagProtobuf {
			b, err := f.bs.Get(ctx, c)
			if err != nil {
				return nil, fmt.Errorf("swarm: fetch %s: reading block %s: %w", f.root, c, err)
			}
			ls, err := f.links(b)
			if err != nil {
				return nil, err
			}
			links = append(links, ls...)
			if f.sink != nil {
				f.sink(b)
			}
		}
		if f.progress != nil {
			f.progress(f.pr)
		}
	}
	pending := len(queue)
	if pending == 0 {
		return links, nil
	}
	// Each fetch asks for the blocks in its own random order, so that
	// peers pulling the same DAG at once hold different blocks to give
	// each other (see WithServeWhileFetching).
	rand.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan fetchEvent, 16)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	notHere := map[cid.Cid]map[peer.ID]time.Time{} // when providers said they lack a CID
	onBitswap := map[cid.Cid]bool{}                // wanted from a bitswap session too
	busy := map[peer.ID]int{}
	inflight := 0
	retryTimer := time.NewTimer(time.Hour)
	defer retryTimer.Stop()
	bitswaps := 0
	// The bitswap session's generation and the context of its getters in
	// this level; a stalled session is dropped for a new one
	// (fetchBitswapStall).
	bsGen := 0
	genCtx, genCancel := context.WithCancel(lctx)
	defer func() { genCancel() }()
	stallAfter, stallFrom := fetchBitswapStall, time.Now() // stallFrom: the last block or new wants
	stallTimer := time.NewTimer(time.Hour)
	defer stallTimer.Stop()

	// take removes up to n queued CIDs that p has not said it lacks.
	take := func(p peer.ID, n int) []cid.Cid {
		var chunk, rest []cid.Cid
		for _, c := range queue {
			if state[c] != stQueued {
				continue
			}
			if len(chunk) < n && time.Since(notHere[c][p]) >= fetchNotHereRetry {
				chunk = append(chunk, c)
				state[c] = stAsked
				continue
			}
			rest = append(rest, c)
		}
		queue = rest
		return chunk
	}
	queued := func() int {
		n := 0
		for _, c := range queue {
			if state[c] == stQueued {
				n++
			}
		}
		return n
	}
	usable := func() []peer.ID {
		f.mu.Lock()
		defer f.mu.Unlock()
		provs := make([]peer.ID, 0, len(f.provs))
		for _, p := range f.provs {
			if !f.failed[p] && !f.s.audit.banned(p) {
				provs = append(provs, p)
			}
		}
		return provs
	}
	assign := func() {
		provs := usable()
		if len(provs) > fetchMaxProviders {
			provs = provs[:fetchMaxProviders]
		}
		// Small requests (WithServeWhileFetching) leave blocks queued for
		// providers that join; with one provider there is nobody to
		// leave them to yet, and each request is a stream of its own, so
		// requests grow — but to no more than an eighth of what is left
		// per slot: the holders a popular pull finds a moment later (the
		// author's list) still get most of the DAG to serve. (Up to
		// fetchChunk at once put 80% of a 10 MB pull by 110 peers on its
		// author.)
		chunk := f.chunk
		if len(provs) == 1 {
			chunk = max(f.chunk, min(fetchChunk, len(queue)/(4*fetchSlots)))
		}
		for slot := 0; slot < fetchSlots && len(queue) > 0; slot++ {
			for _, p := range provs {
				if busy[p] > slot || len(queue) == 0 {
					continue
				}
				n := min(chunk, max(1, (len(queue)+fetchSlots*len(provs)-1)/(fetchSlots*len(provs))))
				chunk := take(p, n)
				if len(chunk) == 0 {
					continue
				}
				busy[p]++
				inflight++
				wg.Go(func() {
					missing, answered, err := f.s.requestBlocks(lctx, p, chunk, func(b blocks.Block) error {
						select {
						case events <- fetchEvent{blk: b, from: p}:
							return nil
						case <-lctx.Done():
							return lctx.Err()
						}
					})
					select {
					case events <- fetchEvent{done: true, from: p, chunk: chunk, missing: missing, answered: answered, err: err}:
					case <-lctx.Done():
					}
				})
			}
		}
	}
	// toBitswap wants every queued CID from a bitswap session too; they
	// stay queued, so a provider found meanwhile can still be asked.
	toBitswap := func() {
		var want []cid.Cid
		for _, c := range queue {
			if state[c] == stQueued && !onBitswap[c] {
				want = append(want, c)
				onBitswap[c] = true
			}
		}
		if len(want) == 0 {
			return
		}
		if f.sess == nil {
			sctx, scancel := context.WithCancel(ctx)
			f.sess = merkledag.WrapSession(blockservice.NewSession(sctx, f.s.bserv))
			f.sessCancel = scancel
		}
		bitswaps++
		stallFrom = time.Now()
		f.s.audit.want(want)
		gen, sess, gctx := bsGen, f.sess, genCtx
		wg.Go(func() {
			var err error
			got := 0
			for opt := range sess.GetMany(gctx, want) {
				if opt.Err != nil {
					err = opt.Err
					break
				}
				got++
				b, berr := blocks.NewBlockWithCid(opt.Node.RawData(), opt.Node.Cid())
				if berr != nil {
					err = berr
					break
				}
				select {
				case events <- fetchEvent{blk: b, stored: true}:
				case <-lctx.Done():
					return
				}
			}
			if err == nil && got != len(want) {
				err = fmt.Errorf("%d of %d blocks not received", len(want)-got, len(want))
			}
			select {
			case events <- fetchEvent{done: true, bitswap: true, gen: gen, err: err}:
			case <-lctx.Done():
			}
		})
	}
	// restartBitswap drops a stalled session: its getters end (their
	// errors are ignored, being of an older generation) and the CIDs still
	// queued are wanted again from a new session.
	restartBitswap := func() {
		f.s.log.Debug("no block over bitswap for a while; wanting the rest from a new session",
			"root", f.root.String(), "waited", stallAfter.String(), "pending", pending)
		genCancel()
		genCtx, genCancel = context.WithCancel(lctx)
		f.sessCancel()
		bsGen++
		f.sess = nil
		for c := range onBitswap {
			if state[c] == stQueued {
				delete(onBitswap, c)
			}
		}
		stallAfter += stallAfter / 2 // from the same stallFrom: restarts at 4, 6, 9, 13.5 s …
		from := stallFrom
		toBitswap()
		stallFrom = from
		f.askConnected()
	}

	// handle applies one event; it returns an error that ends the fetch.
	handle := func(e fetchEvent) error {
		if !e.done {
			c := e.blk.Cid()
			if state[c] == stHave {
				return nil // already came from another peer
			}
			state[c] = stHave
			pending--
			f.got += int64(len(e.blk.RawData()))
			now := time.Now()
			f.lastBlock.Store(now.UnixNano())
			stallAfter, stallFrom = fetchBitswapStall, now
			if f.maxBytes > 0 && f.got > f.maxBytes {
				return fmt.Errorf("swarm: fetch %s: %w: more than %s arrived, past what was expected of it; stopped",
					f.root, ErrTooLarge, humanize.IBytes(uint64(f.maxBytes)))
			}
			ls, err := f.links(e.blk)
			if err != nil {
				return err
			}
			links = append(links, ls...)
			if e.from != "" {
				f.from[e.from]++
			}
			if e.stored {
				f.pr.Blocks++
				f.pr.Bitswap++
				f.pr.Bytes += int64(len(e.blk.RawData()))
				if f.sink != nil {
					f.sink(e.blk)
				}
				if f.progress != nil {
					f.progress(f.pr)
				}
				return nil
			}
			if f.early && f.sink != nil {
				f.sink(e.blk)
			}
			if f.serve != nil {
				f.share(e.blk)
			}
			f.batch = append(f.batch, e.blk)
			f.batchBytes += len(e.blk.RawData())
			return nil
		}
		if e.bitswap {
			bitswaps--
			if e.err != nil && pending > 0 && e.gen == bsGen {
				return f.fail(e.err)
			}
			return nil
		}
		busy[e.from]--
		inflight--
		if e.err != nil {
			f.s.log.Debug("a provider's blocks exchange failed; asking others", "peer", e.from.String(), "err", e.err)
			f.mu.Lock()
			f.failed[e.from] = true
			f.mu.Unlock()
		}
		now := time.Now()
		for _, c := range e.missing {
			if notHere[c] == nil {
				notHere[c] = map[peer.ID]time.Time{}
			}
			notHere[c][e.from] = now
		}
		for _, c := range e.chunk {
			if state[c] == stAsked {
				state[c] = stQueued
				queue = append(queue, c)
			}
		}
		return nil
	}
	for {
		if pending == 0 {
			// Not waiting for the writes: the next level's requests go
			// out while they are under way.
			f.kick()
			return links, nil
		}
		assign()
		// More providers are looked up in the DHT when there are none to
		// ask, or when, a while into the fetch, blocks are still waiting
		// for a provider to be free: a small DAG that the author streams
		// at once needs no lookup.
		var due <-chan struct{}
		if !f.searched.Load() {
			if len(usable()) == 0 {
				f.searchDHT()
			} else if queued() > 0 {
				select {
				case <-f.dhtDue:
					f.searchDHT()
				default:
					due = f.dhtDue
				}
			}
		}
		if inflight == 0 {
			toBitswap()
		}
		// Blocks that every free provider said it lacks are asked again
		// once fetchNotHereRetry has passed.
		var retry <-chan time.Time
		if len(notHere) > 0 && queued() > 0 {
			retryTimer.Reset(fetchNotHereRetry / 2)
			retry = retryTimer.C
		}
		// Wants that sit in a bitswap session with nothing arriving are
		// handed to a new session after stallAfter.
		var stall <-chan time.Time
		if bitswaps > 0 {
			wait := stallAfter - time.Since(stallFrom)
			if wait <= 0 {
				restartBitswap()
				continue
			}
			stallTimer.Reset(wait)
			stall = stallTimer.C
		}
		// While the writer is busy and a full batch waits, no more blocks
		// are taken: that holds the providers back to the disk's pace.
		evs := events
		if f.writing && f.batchBytes >= writeBatchBytes {
			evs = nil
		}
		var e fetchEvent
		select {
		case e = <-evs:
		case d := <-f.written:
			if err := f.stored(d); err != nil {
				return nil, err
			}
			continue
		case <-f.newProv:
			continue
		case <-due:
			continue
		case <-retry:
			continue
		case <-stall:
			continue
		case <-ctx.Done():
			return nil, f.fail(ctx.Err())
		}
		if err := handle(e); err != nil {
			return nil, err
		}
		// Group commit: take what else has arrived, then hand it all to
		// the writer if it is free (else it waits for the next batch).
	drain:
		for f.batchBytes < writeBatchBytes {
			select {
			case e = <-events:
				if err := handle(e); err != nil {
					return nil, err
				}
			default:
				break drain
			}
		}
		f.kick()
	}
}

// stagedWriter stores blocks in two steps (store.BlockWriter): Add
// starts writing a block's bytes to disk without waiting, Commit makes
// everything added durable and present (synced) and returns it.
type stagedWriter = interface {
	Add(ctx context.Context, b blocks.Block) error
	Commit(ctx context.Context) ([]blocks.Block, error)
	Pending() int64
	Close()
}

// stagedStore is implemented by blockstores that have a stagedWriter
// (store.Store).
type stagedStore interface{ NewStagedWriter() stagedWriter }

// writeReq is a batch of fetched blocks for the writer; final: no more
// will come, commit everything.
type writeReq struct {
	batch []blocks.Block
	final bool
}

// writeDone is what the writer has stored (synced) since it last
// reported, or the error that stopped it.
type writeDone struct {
	stored []blocks.Block
	err    error
}

// startWriter starts the goroutine that stores the fetched blocks; stop
// ends it once its current batch is done. With a stagedStore each batch
// is added at once (the disk starts on it while more arrive) and
// committed — synced, and only then reported stored — once commitBytes
// are pending or the fetch has all its blocks: a few syncs per fetch
// instead of one per batch. Otherwise each batch is one synced
// PutManyVerified.
func (f *fetcher) startWriter() (stop func()) {
	f.toWrite = make(chan writeReq)
	f.written = make(chan writeDone, 1) // one request at a time: never blocks
	var sw stagedWriter
	if ss, ok := f.bs.(stagedStore); ok {
		sw = ss.NewStagedWriter()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if sw != nil {
			defer sw.Close() // gives up what was not committed
		}
		for req := range f.toWrite {
			if sw == nil {
				f.written <- writeDone{req.batch, f.put(req.batch)}
				continue
			}
			var err error
			for _, b := range req.batch {
				if err = sw.Add(f.ctx, b); err != nil {
					break
				}
			}
			var stored []blocks.Block
			if err == nil && (req.final || sw.Pending() >= f.commitBytes) {
				stored, err = sw.Commit(f.ctx)
			}
			if err == nil {
				f.notify(stored)
			}
			f.written <- writeDone{stored, f.writeErr(err)}
		}
	}()
	return func() { close(f.toWrite); <-done }
}

// put stores one batch of fetched blocks, synced; the writer calls it.
func (f *fetcher) put(batch []blocks.Block) error {
	var err error
	if f.putVerified != nil {
		err = f.putVerified.PutManyVerified(f.ctx, batch)
	} else {
		err = f.bs.PutMany(f.ctx, batch)
	}
	if err == nil {
		f.notify(batch)
	}
	return f.writeErr(err)
}

// notify tells bitswap about stored blocks.
func (f *fetcher) notify(stored []blocks.Block) {
	if len(stored) == 0 {
		return
	}
	if err := f.s.bswap.NotifyNewBlocks(f.ctx, stored...); err != nil {
		f.s.log.Debug("telling bitswap about fetched blocks", "err", err)
	}
}

func (f *fetcher) writeErr(err error) error {
	if err == nil {
		return nil
	}
	if f.ctx.Err() != nil {
		return fetchErr(f.ctx, f.root, err)
	}
	return fmt.Errorf("swarm: fetch %s stopped: storing fetched blocks failed: %w; what arrived before is kept and a new pull resumes from there", f.root, err)
}

// kick hands the waiting blocks to the writer if it is free (and, once
// the fetch has all its blocks, asks it to commit what it holds).
func (f *fetcher) kick() {
	if f.writing || len(f.batch) == 0 && !(f.final && f.unstored > 0) {
		return
	}
	f.toWrite <- writeReq{f.batch, f.final}
	f.writing = true
	f.unstored += len(f.batch)
	f.batch, f.batchBytes = nil, 0 // the writer and bitswap keep the slice given
}

// stored takes a report back from the writer: the blocks in it are on
// disk and are reported (progress, sink); the next batch goes to the
// writer.
func (f *fetcher) stored(d writeDone) error {
	f.writing = false
	if d.err != nil {
		return d.err
	}
	f.unstored -= len(d.stored)
	if f.serve != nil {
		f.unshareStored(d.stored)
	}
	for _, b := range d.stored {
		f.pr.Blocks++
		f.pr.Bytes += int64(len(b.RawData()))
		if f.sink != nil && !f.early {
			f.sink(b)
		}
		if f.progress != nil {
			f.progress(f.pr)
		}
	}
	f.kick()
	return nil
}

// links returns the links of a dag-pb block (none for raw). At the root it
// first checks that the DAG fits in the store.
func (f *fetcher) links(b blocks.Block) ([]cid.Cid, error) {
	switch b.Cid().Type() {
	case cid.Raw:
		return nil, nil
	case cid.DagProtobuf:
	default:
		return nil, fmt.Errorf("swarm: fetch %s: block %s has codec %#x (only dag-pb and raw)", f.root, b.Cid(), b.Cid().Type())
	}
	nd, err := merkledag.DecodeProtobufBlock(b)
	if err != nil {
		return nil, fmt.Errorf("swarm: fetch %s: block %s is not valid dag-pb: %w", f.root, b.Cid(), err)
	}
	var out []cid.Cid
	var size uint64
	for _, l := range nd.Links() {
		out = append(out, l.Cid)
		size += l.Size
	}
	if b.Cid().Equals(f.root) && size > 0 && f.pr.Local == 0 {
		// A dag-pb root's links carry the sizes of their subtrees (as
		// their maker claims them): refuse more than the bound, and check
		// the space before fetching them.
		if f.maxBytes > 0 && size > uint64(f.maxBytes) {
			return nil, fmt.Errorf("swarm: fetch %s: %w: its links claim %s, more than the %s expected of it",
				f.root, ErrTooLarge, humanize.IBytes(size), humanize.IBytes(uint64(f.maxBytes)))
		}
		if sc, ok := f.bs.(spaceChecker); ok {
			if err := sc.CheckSpace(int64(size)); err != nil {
				return nil, fmt.Errorf("swarm: fetch %s (%s): %w", f.root, humanize.IBytes(size), err)
			}
		}
	}
	return out, nil
}

func fetchErr(ctx context.Context, root cid.Cid, err error) error {
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		return fmt.Errorf("swarm: fetch %s stopped: %w; what arrived is kept and a new pull resumes from there", root, cause)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("swarm: fetch %s stopped before all blocks arrived (%v); what arrived is kept and a new Fetch resumes from there: %w", root, err, ctx.Err())
	}
	if ipld.IsNotFound(err) {
		return fmt.Errorf("swarm: fetch %s: no peer had a block (%v); is any provider online?", root, err)
	}
	return fmt.Errorf("swarm: fetch %s: %w", root, err)
}

// provideEarly provides root in the DHT while the fetch goes on
// (WithServeWhileFetching, once it holds fetchProvideEarlyBytes); its
// blocks are served as they arrive.
func (f *fetcher) provideEarly() {
	if err := f.s.Provide(f.ctx, f.root); err != nil {
		f.s.log.Debug("providing a DAG while fetching it", "root", f.root.String(), "err", err)
	}
}
