package swarm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

func TestCatalogueOnJoin(t *testing.T) {
	nodes := line(t, 2, nil)
	for _, n := range nodes {
		eventually(t, 5*time.Second, "catalogue topic peers", func() bool {
			return len(n.gossip.topics[CatalogueTopic].ListPeers()) > 0
		})
	}
	key := hostKey(t, nodes[0])
	roots := []cid.Cid{randomCID(t), randomCID(t), randomCID(t)}
	bases := []string{"base-a", "base-b", "base-a"}
	now := time.Now()
	for i := range roots {
		ann := signTestAnn(t, key, roots[i], bases[i], now.Add(time.Duration(i)*time.Second))
		if err := nodes[0].Announce(t.Context(), ann); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "node 1 catalogue", func() bool { return len(nodes[1].Catalogue("", 0)) == 3 })

	// A late joiner connected only to node 1 learns all three by asking.
	rec := &receiver{}
	late := newTestNode(t, func(c *Config) { c.OnAnnouncement = rec.on })
	if err := late.Connect(t.Context(), addrInfo(nodes[1])); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "late joiner's catalogue", func() bool { return len(late.Catalogue("", 0)) == 3 })
	got := late.Catalogue("", 0)
	for i, r := range got { // newest first
		if want := roots[len(roots)-1-i]; r.Root != want {
			t.Fatalf("catalogue entry %d is %s, want %s (newest first)", i, r.Root, want)
		}
	}
	onlyA := late.Catalogue("base-a", 0)
	if len(onlyA) != 2 || onlyA[0].Base != "base-a" || onlyA[1].Base != "base-a" {
		t.Fatalf("base filter: %+v", onlyA)
	}
	if r := rec.roots(); len(r) != 3 {
		t.Fatalf("OnAnnouncement saw %d announcements, want 3", len(r))
	}

	// Asking explicitly with a filter and a limit.
	resp, err := late.RequestCatalogue(t.Context(), nodes[1].ID(), "base-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp) != 1 || resp[0].Root != roots[2] {
		t.Fatalf("filtered request: %+v", resp)
	}

	// Forged announcements never enter a catalogue.
	bad := signTestAnn(t, key, randomCID(t), "base-a", now)
	bad[len(bad)-5] ^= 1
	if err := nodes[1].Remember(t.Context(), bad); err == nil {
		t.Fatal("Remember accepted a forged announcement")
	}
}

// buildDAG makes a two-level dag-pb DAG over n random raw leaves of size
// bytes each; it returns the root and every block.
func buildDAG(t testing.TB, n, size, fanout int) (cid.Cid, []blocks.Block) {
	t.Helper()
	builder := cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}
	var all []blocks.Block
	root := merkledag.NodeWithData([]byte("root"))
	root.SetCidBuilder(builder)
	for start := 0; start < n; start += fanout {
		mid := merkledag.NodeWithData([]byte(fmt.Sprint("mid", start)))
		mid.SetCidBuilder(builder)
		for i := start; i < min(start+fanout, n); i++ {
			data := make([]byte, size)
			_, _ = rand.Read(data)
			leaf := merkledag.NewRawNode(data)
			all = append(all, leaf)
			if err := mid.AddNodeLink(fmt.Sprint(i), leaf); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, mid)
		if err := root.AddNodeLink(fmt.Sprint("m", start), mid); err != nil {
			t.Fatal(err)
		}
	}
	all = append(all, root)
	return root.Cid(), all
}

func putAll(t *testing.T, bs blockstore.Blockstore, blks []blocks.Block) {
	t.Helper()
	if err := bs.PutMany(t.Context(), blks); err != nil {
		t.Fatal(err)
	}
}

// checkAll asserts that bs holds every block with the right bytes.
func checkAll(t *testing.T, bs blockstore.Blockstore, blks []blocks.Block) {
	t.Helper()
	for _, b := range blks {
		got, err := bs.Get(t.Context(), b.Cid())
		if err != nil {
			t.Fatalf("block %s missing after fetch: %v", b.Cid(), err)
		}
		if !bytes.Equal(got.RawData(), b.RawData()) {
			t.Fatalf("block %s has wrong bytes", b.Cid())
		}
	}
}

func TestFetchFromTwoProvidersOneLeavesHalfway(t *testing.T) {
	root, blks := buildDAG(t, 48, 32<<10, 16)
	a := newTestNode(t, nil)
	b := newTestNode(t, nil)
	putAll(t, a.cfg.Blockstore, blks)
	putAll(t, b.cfg.Blockstore, blks)
	c := newTestNode(t, nil)
	for _, p := range []*Swarm{a, b} {
		if err := c.Connect(t.Context(), addrInfo(p)); err != nil {
			t.Fatal(err)
		}
	}
	var once sync.Once
	var last Progress
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err := c.Fetch(ctx, root, func(p Progress) {
		last = p
		if p.Blocks >= int64(len(blks)/2) {
			once.Do(func() { _ = a.Close() })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fetched %d blocks, %d bytes in %v; provider A closed halfway", last.Blocks, last.Bytes, time.Since(start))
	if last.Blocks != int64(len(blks)) || last.Local != 0 {
		t.Fatalf("progress %+v, want %d fetched blocks", last, len(blks))
	}
	// Neither provider announced the DAG nor provides it in the DHT: the
	// blocks came over bitswap, as from any IPFS node — at least the half
	// before A left; should bitswap stall after that, the rest may come
	// from B over BlocksProtocol (TestFetchAsksConnectedPeersWhenBitswapStalls).
	if last.Bitswap < int64(len(blks)/2) {
		t.Fatalf("progress %+v: %d blocks did not come over bitswap", last, last.Blocks-last.Bitswap)
	}
	checkAll(t, c.cfg.Blockstore, blks)

	// A second fetch finds everything local and asks nobody.
	if err := c.Fetch(ctx, root, func(p Progress) { last = p }); err != nil {
		t.Fatal(err)
	}
	if last.Blocks != 0 || last.Local != int64(len(blks)) {
		t.Fatalf("second fetch progress %+v, want all %d local", last, len(blks))
	}
}

// TestFetchAsksConnectedPeersWhenBitswapStalls: a connected orchmind peer
// holds the DAG but its bitswap gives nothing (as a session stalled on a
// peer sees it) and nobody announced or provides it; once bitswap has
// brought nothing for fetchBitswapStall the fetch asks its connected peers
// over BlocksProtocol and gets everything from there.
func TestFetchAsksConnectedPeersWhenBitswapStalls(t *testing.T) {
	root, blks := buildDAG(t, 24, 16<<10, 8)
	b := newTestNode(t, func(c *Config) { c.bitswapServes = func(peer.ID, cid.Cid) bool { return false } })
	putAll(t, b.cfg.Blockstore, blks)
	c := newTestNode(t, nil)
	if err := c.Connect(t.Context(), addrInfo(b)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	var last Progress
	if err := c.Fetch(ctx, root, func(p Progress) { last = p }); err != nil {
		t.Fatalf("fetch with bitswap stalled on the only peer that holds the DAG: %v", err)
	}
	took := time.Since(start)
	t.Logf("fetched %d blocks in %v", last.Blocks, took)
	if last.Blocks != int64(len(blks)) || last.Bitswap != 0 {
		t.Fatalf("progress %+v, want all %d blocks over BlocksProtocol", last, len(blks))
	}
	if took < fetchBitswapStall {
		t.Fatalf("fetched in %v, before bitswap could have stalled (%v): the peer was asked another way", took, fetchBitswapStall)
	}
	checkAll(t, c.cfg.Blockstore, blks)
}

func TestFetchResumesAfterRestartAndFindsProvidersInDHT(t *testing.T) {
	root, blks := buildDAG(t, 40, 16<<10, 8)
	// provider — middle — fetcher: the fetcher is not connected to the
	// provider and must find it through the DHT.
	nodes := line(t, 2, nil)
	prov, middle := nodes[0], nodes[1]
	putAll(t, prov.cfg.Blockstore, blks)
	eventually(t, 5*time.Second, "routing table", func() bool { return prov.dht.RoutingTable().Size() > 0 })
	if err := prov.Provide(t.Context(), root); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	store := memBlockstore()
	mod := func(c *Config) { c.DataDir = dir; c.Blockstore = store; c.Bootstrap = middle.Addrs() }
	c1 := newTestNode(t, mod)
	eventually(t, 5*time.Second, "bootstrap", func() bool { return c1.isConnected(middle.ID()) })
	ctx, cancel := context.WithCancel(t.Context())
	stopAt := int64(len(blks) / 3)
	err := c1.Fetch(ctx, root, func(p Progress) {
		if p.Blocks >= stopAt {
			cancel()
		}
	})
	cancel()
	if err == nil {
		t.Fatal("interrupted fetch reported success")
	}
	t.Logf("interrupted: %v", err)
	_ = c1.Close()
	have := 0
	for _, b := range blks {
		if ok, _ := store.Has(t.Context(), b.Cid()); ok {
			have++
		}
	}
	if have < int(stopAt) || have == len(blks) {
		t.Fatalf("after the interruption the store holds %d of %d blocks", have, len(blks))
	}

	c2 := newTestNode(t, mod) // restart on the same store
	eventually(t, 5*time.Second, "bootstrap", func() bool { return c2.isConnected(middle.ID()) })
	var last Progress
	fctx, fcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer fcancel()
	if err := c2.Fetch(fctx, root, func(p Progress) { last = p }); err != nil {
		t.Fatal(err)
	}
	if last.Local < int64(have) || last.Blocks+last.Local != int64(len(blks)) {
		t.Fatalf("resumed fetch progress %+v; %d of %d blocks were already local", last, have, len(blks))
	}
	t.Logf("resumed: %d blocks local, %d fetched", last.Local, last.Blocks)
	checkAll(t, store, blks)
}

func TestFetchRefusesWrongBlocks(t *testing.T) {
	root, blks := buildDAG(t, 4, 1024, 4)
	// A liar serves other bytes under every CID of the DAG.
	liar := newTestNode(t, nil)
	for _, b := range blks {
		fake, err := blocks.NewBlockWithCid(bytes.Repeat([]byte{0xAA}, len(b.RawData())), b.Cid())
		if err != nil {
			t.Fatal(err)
		}
		if err := liar.cfg.Blockstore.Put(t.Context(), fake); err != nil {
			t.Fatal(err)
		}
	}
	c := newTestNode(t, nil)
	if err := c.Connect(t.Context(), addrInfo(liar)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := c.Fetch(ctx, root, nil); err == nil {
		t.Fatal("fetch from a peer serving wrong bytes succeeded")
	}
	keys, err := c.cfg.Blockstore.AllKeysChan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var stored []cid.Cid
	for k := range keys {
		stored = append(stored, k)
	}
	if len(stored) != 0 {
		t.Fatalf("the fetcher stored %d blocks from the liar: %v", len(stored), stored)
	}
	// The liar is detected, scored down and cut off.
	bad, ok := c.BadPeers()[liar.ID()]
	if !ok || bad.Blocks == 0 {
		t.Fatalf("the liar is not among the bad peers: %v", c.BadPeers())
	}
	if sc := c.audit.score(liar.ID()); sc > GraylistThreshold {
		t.Fatalf("the liar's application score is %g, want <= the graylist threshold %g", sc, GraylistThreshold)
	}
	eventually(t, 5*time.Second, "the liar to be disconnected", func() bool { return !c.isConnected(liar.ID()) })
	if err := c.Connect(t.Context(), addrInfo(liar)); err == nil {
		t.Fatal("the fetcher reconnected to a banned peer")
	}
	t.Logf("liar sent %d bad blocks; banned until %s", bad.Blocks, bad.Last.Add(BanDuration).Format(time.TimeOnly))

	honest := newTestNode(t, nil)
	putAll(t, honest.cfg.Blockstore, blks)
	if err := c.Connect(t.Context(), addrInfo(honest)); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel2()
	if err := c.Fetch(ctx2, root, nil); err != nil {
		t.Fatal(err)
	}
	checkAll(t, c.cfg.Blockstore, blks)
}

// TestCatalogueOnBootstrap: a node started with a bootstrap peer learns that
// peer's catalogue, every time. Its DHT dials the bootstrap peer while the
// node is still starting, so asking only on new connections (or before the
// peer's handler is registered) loses the exchange in most runs.
func TestCatalogueOnBootstrap(t *testing.T) {
	a := newTestNode(t, nil)
	ann := signTestAnn(t, hostKey(t, a), randomCID(t), "base-a", time.Now())
	if err := a.Remember(t.Context(), ann); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		b := newTestNode(t, func(c *Config) { c.Bootstrap = a.Addrs() })
		eventually(t, 5*time.Second, fmt.Sprintf("joiner %d to learn the catalogue", i), func() bool { return len(b.Catalogue("", 0)) == 1 })
		_ = b.Close()
	}
}

// TestBlocksProtocolTwoProvidersOneLeavesHalfway: a fetch told of two
// providers gets the DAG from both over BlocksProtocol, many blocks per
// request; when one closes halfway its unanswered blocks go to the other,
// and nothing needs bitswap.
func TestBlocksProtocolTwoProvidersOneLeavesHalfway(t *testing.T) {
	root, blks := buildDAG(t, 64, 64<<10, 16)
	a := newTestNode(t, nil)
	b := newTestNode(t, nil)
	putAll(t, a.cfg.Blockstore, blks)
	putAll(t, b.cfg.Blockstore, blks)
	c := newTestNode(t, nil)
	var once sync.Once
	var last, atClose Progress
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := c.Fetch(ctx, root, func(p Progress) {
		last = p
		if p.Blocks >= int64(len(blks)/2) {
			once.Do(func() { atClose = p; _ = a.Close() })
		}
	}, WithProviders(addrInfo(a), addrInfo(b)))
	if err != nil {
		t.Fatal(err)
	}
	if last.Blocks != int64(len(blks)) || last.Bitswap != 0 || last.Local != 0 {
		t.Fatalf("progress %+v, want all %d blocks over BlocksProtocol", last, len(blks))
	}
	if atClose.Blocks == 0 || atClose.Blocks == last.Blocks {
		t.Fatalf("provider A was closed at %+v, not part-way", atClose)
	}
	checkAll(t, c.cfg.Blockstore, blks)
	t.Logf("A closed after %d of %d blocks; B sent the rest", atClose.Blocks, last.Blocks)
}

// TestBlocksProtocolRefusesLiar: a provider that serves other bytes under
// a DAG's CIDs over BlocksProtocol is caught at its first block, banned,
// and nothing of it is stored; the honest provider then serves the DAG.
func TestBlocksProtocolRefusesLiar(t *testing.T) {
	root, blks := buildDAG(t, 8, 64<<10, 4)
	liar := newTestNode(t, nil)
	for _, b := range blks {
		fake, err := blocks.NewBlockWithCid(bytes.Repeat([]byte{0x5A}, len(b.RawData())), b.Cid())
		if err != nil {
			t.Fatal(err)
		}
		if err := liar.cfg.Blockstore.Put(t.Context(), fake); err != nil {
			t.Fatal(err)
		}
	}
	c := newTestNode(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if err := c.Fetch(ctx, root, nil, WithProviders(addrInfo(liar))); err == nil {
		t.Fatal("fetch from a liar succeeded")
	}
	if bad, ok := c.BadPeers()[liar.ID()]; !ok || bad.Blocks == 0 {
		t.Fatalf("the liar is not among the bad peers: %v", c.BadPeers())
	}
	if has, _ := c.cfg.Blockstore.Has(t.Context(), root); has {
		t.Fatal("the liar's root block was stored")
	}
	eventually(t, 5*time.Second, "the liar to be cut off", func() bool { return !c.isConnected(liar.ID()) })

	honest := newTestNode(t, nil)
	putAll(t, honest.cfg.Blockstore, blks)
	var last Progress
	ctx2, cancel2 := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel2()
	if err := c.Fetch(ctx2, root, func(p Progress) { last = p }, WithProviders(addrInfo(liar), addrInfo(honest))); err != nil {
		t.Fatal(err)
	}
	if last.Bitswap != 0 {
		t.Fatalf("progress %+v: the honest provider's blocks should come over BlocksProtocol", last)
	}
	checkAll(t, c.cfg.Blockstore, blks)
}

// TestBlocksWire: requests and answers round-trip; malformed ones are
// refused.
func TestBlocksWire(t *testing.T) {
	cs := []cid.Cid{randomCID(t), randomCID(t)}
	var buf bytes.Buffer
	if err := writeBlockRequest(&buf, cs); err != nil {
		t.Fatal(err)
	}
	got, err := readBlockRequest(bufio.NewReader(&buf))
	if err != nil || len(got) != 2 || !got[0].Equals(cs[0]) || !got[1].Equals(cs[1]) {
		t.Fatalf("request round trip: %v %v", got, err)
	}
	for name, raw := range map[string][]byte{
		"no CIDs":   {0},
		"too many":  binary.AppendUvarint(nil, MaxBlocksPerRequest+1),
		"not a CID": {1, 3, 'a', 'b', 'c'},
		"cut short": {2, 3},
	} {
		if _, err := readBlockRequest(bufio.NewReader(bytes.NewReader(raw))); err == nil {
			t.Errorf("%s: request accepted", name)
		}
	}
	var ans bytes.Buffer
	w := bufio.NewWriter(&ans)
	for _, d := range [][]byte{[]byte("block"), nil, {}} {
		if err := writeBlockAnswer(w, d); err != nil {
			t.Fatal(err)
		}
	}
	_ = w.Flush()
	r := bufio.NewReader(&ans)
	for i, want := range [][]byte{[]byte("block"), nil, {}} {
		d, err := readBlockAnswer(r)
		if err != nil || !bytes.Equal(d, want) || (d == nil) != (want == nil) {
			t.Fatalf("answer %d: %q %v, want %q", i, d, err, want)
		}
	}
	big := append([]byte{1}, binary.AppendUvarint(nil, maxBlockSize+1)...)
	if _, err := readBlockAnswer(bufio.NewReader(bytes.NewReader(big))); err == nil {
		t.Fatal("an answer over the block size limit was accepted")
	}
	if _, err := readBlockAnswer(bufio.NewReader(bytes.NewReader([]byte{7}))); err == nil {
		t.Fatal("a bad answer flag was accepted")
	}
}

// TestBlocksProtocolPerPeerLimit: a peer gets at most maxServingPerPeer
// answers streamed at once; one more request is refused until one of them
// ends.
func TestBlocksProtocolPerPeerLimit(t *testing.T) {
	_, blks := buildDAG(t, 16, 1<<20, 16)
	srv := newTestNode(t, nil)
	putAll(t, srv.cfg.Blockstore, blks)
	c := newTestNode(t, nil)
	if err := c.Connect(t.Context(), addrInfo(srv)); err != nil {
		t.Fatal(err)
	}
	var want []cid.Cid
	for _, b := range blks[:16] {
		want = append(want, b.Cid())
	}
	open := func() network.Stream {
		t.Helper()
		st, err := c.host.NewStream(t.Context(), srv.ID(), BlocksProtocol)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeBlockRequest(st, want); err != nil {
			t.Fatal(err)
		}
		_ = st.CloseWrite()
		return st
	}
	// Answers nobody reads: 16 MiB each, more than a stream's window, so
	// the server stays busy with them.
	var held []network.Stream
	for range maxServingPerPeer {
		held = append(held, open())
	}
	serving := func() int {
		srv.servingMu.Lock()
		defer srv.servingMu.Unlock()
		return srv.servingPeer[c.ID()]
	}
	eventually(t, 5*time.Second, "the server to be answering all of them", func() bool { return serving() == maxServingPerPeer })
	extra := open()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := readBlockAnswer(bufio.NewReader(extra)); err == nil {
		t.Fatal("a request over the per-peer limit was answered")
	}
	for _, st := range held {
		_ = st.Reset()
	}
	eventually(t, 5*time.Second, "the answers to end", func() bool { return serving() == 0 })
	again := open()
	defer again.Close()
	d, err := readBlockAnswer(bufio.NewReader(again))
	if err != nil || !bytes.Equal(d, blks[0].RawData()) {
		t.Fatalf("a request once the others ended: %v", err)
	}
}

// TestCatalogueAfterReconnect: a peer that went away is asked for its
// catalogue again when it is back (here: restarted with the same key), and
// what it learned meanwhile (not over gossip) arrives.
func TestCatalogueAfterReconnect(t *testing.T) {
	a := newTestNode(t, nil)
	dir := t.TempDir()
	b := newTestNode(t, func(c *Config) { c.DataDir = dir })
	// Remember does not gossip: a learns these only by asking b.
	if err := b.Remember(t.Context(), signTestAnn(t, hostKey(t, b), randomCID(t), "base-a", time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(t.Context(), addrInfo(a)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a to learn b's catalogue", func() bool { return len(a.Catalogue("", 0)) == 1 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a to see b leave", func() bool { return !a.isConnected(b.ID()) })
	b2 := newTestNode(t, func(c *Config) { c.DataDir = dir })
	if b2.ID() != b.ID() {
		t.Fatal("the restarted node has another peer ID")
	}
	if err := b2.Remember(t.Context(), signTestAnn(t, hostKey(t, b2), randomCID(t), "base-a", time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := b2.Connect(t.Context(), addrInfo(a)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a to learn the returning peer's new announcement", func() bool { return len(a.Catalogue("", 0)) == 2 })
}
