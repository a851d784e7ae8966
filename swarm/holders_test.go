package swarm

import (
	"bufio"
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gatedStore holds every write until gate is closed: a fetch into it
// holds the blocks it has verified in memory only.
type gatedStore struct {
	blockstore.Blockstore
	gate chan struct{}
}

func (g *gatedStore) Put(ctx context.Context, b blocks.Block) error {
	return g.PutMany(ctx, []blocks.Block{b})
}

func (g *gatedStore) PutMany(ctx context.Context, bs []blocks.Block) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Blockstore.PutMany(ctx, bs)
}

// TestFetchFindsHoldersThroughAuthor: B pulls a DAG from its author A
// with WithServeWhileFetching while nothing it fetches can be stored yet
// (its store holds every write back); A then names B to C as a holder
// (HoldersProtocol), and C, which A can give only the DAG's inner nodes,
// fetches every leaf from B — served from B's memory, since B's store has
// none of them yet. All three are DHT clients, so no DHT provider record
// can exist: the holders exchange is C's only way to B.
func TestFetchFindsHoldersThroughAuthor(t *testing.T) {
	root, blks := buildDAG(t, 12, 64<<10, 4)
	dhtClient := func(c *Config) { c.DHTMode = DHTClient }
	a := newTestNode(t, dhtClient)
	putAll(t, a.cfg.Blockstore, blks)
	gate := make(chan struct{})
	bStore := &gatedStore{Blockstore: memBlockstore(), gate: gate}
	b := newTestNode(t, func(c *Config) { dhtClient(c); c.Blockstore = bStore })
	c := newTestNode(t, dhtClient)
	for _, s := range []*Swarm{b, c} {
		if err := s.Connect(t.Context(), addrInfo(a)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	bDone := make(chan error, 1)
	go func() { bDone <- b.Fetch(ctx, root, nil, WithProviders(addrInfo(a)), WithServeWhileFetching()) }()
	release := sync.OnceFunc(func() { close(gate) })
	defer release()

	eventually(t, 15*time.Second, "B to hold every block in memory", func() bool {
		for _, blk := range blks {
			if b.fetchingBlks.get(blk.Cid()) == nil {
				return false
			}
		}
		return true
	})
	eventually(t, 15*time.Second, "A to name B as a holder", func() bool {
		hs, err := c.askHolders(ctx, a.ID(), root, false)
		return err == nil && slices.ContainsFunc(hs, func(ai peer.AddrInfo) bool { return ai.ID == b.ID() && len(ai.Addrs) > 0 })
	})
	// Now A keeps only the inner nodes: the leaves must come from B.
	var leaves []cid.Cid
	for _, blk := range blks {
		if blk.Cid().Type() == cid.Raw {
			leaves = append(leaves, blk.Cid())
			if err := a.cfg.Blockstore.DeleteBlock(ctx, blk.Cid()); err != nil {
				t.Fatal(err)
			}
		}
	}
	var last Progress
	if err := c.Fetch(ctx, root, func(p Progress) { last = p }, WithProviders(addrInfo(a)), WithServeWhileFetching()); err != nil {
		t.Fatalf("C's fetch, with A holding only the inner nodes and B found through A: %v", err)
	}
	checkAll(t, c.cfg.Blockstore, blks)
	if last.Bitswap != 0 {
		t.Errorf("%d blocks came over bitswap; all should have come from B over BlocksProtocol", last.Bitswap)
	}
	for _, l := range leaves {
		if has, _ := bStore.Blockstore.Has(ctx, l); has {
			t.Fatalf("B's store holds %s already: the test meant B to serve from memory", l)
		}
	}
	release()
	if err := <-bDone; err != nil {
		t.Fatalf("B's fetch: %v", err)
	}
	checkAll(t, b.cfg.Blockstore, blks)
	if n := len(b.fetchingBlks.blks); n != 0 {
		t.Errorf("B still holds %d fetched blocks in memory after its fetch ended", n)
	}
}

// TestHoldersOnlyForServedRoots: a node that neither holds nor fetches a
// DAG names no holders for it and lists nobody who registers for it.
func TestHoldersOnlyForServedRoots(t *testing.T) {
	a := newTestNode(t, nil)
	b := newTestNode(t, nil)
	if err := b.Connect(t.Context(), addrInfo(a)); err != nil {
		t.Fatal(err)
	}
	root := randomCID(t)
	if hs, err := b.askHolders(t.Context(), a.ID(), root, true); err != nil || len(hs) != 0 {
		t.Fatalf("asking a node that lacks the DAG: %v, %v; want no holders and no error", hs, err)
	}
	if got := a.holders.list(string(root.Hash()), time.Now()); len(got) != 0 {
		t.Fatalf("A recorded %v as holders of a DAG it does not serve", got)
	}
}

func TestHolderTableBounds(t *testing.T) {
	ht := newHolderTable()
	now := time.Now()
	ids := make([]peer.ID, maxHolders+3)
	for i := range ids {
		ids[i] = peer.ID(string(rune('a' + i)))
		ht.add("r", ids[i], now.Add(time.Duration(i)*time.Millisecond))
	}
	got := ht.list("r", now.Add(time.Second))
	if len(got) != maxHolders || got[0] != ids[len(ids)-1] || slices.Contains(got, ids[0]) {
		t.Fatalf("holders %v: want the %d most recent, newest first", got, maxHolders)
	}
	ht.add("r", ids[3], now.Add(time.Minute)) // again: moves to the front, not listed twice
	if got := ht.list("r", now.Add(time.Minute)); got[0] != ids[3] || len(got) != maxHolders {
		t.Fatalf("after a second registration: %v", got)
	}
	if got := ht.list("r", now.Add(time.Minute+holderTTL+time.Second)); len(got) != 0 {
		t.Fatalf("expired holders still listed: %v", got)
	}
	for i := range maxHolderRoots + 10 {
		ht.add(string(rune(1000+i)), ids[0], now.Add(time.Duration(i)*time.Second))
	}
	if n := len(ht.roots); n != maxHolderRoots {
		t.Fatalf("%d DAGs remembered; at most %d allowed", n, maxHolderRoots)
	}
}

func TestHoldersWire(t *testing.T) {
	a := newTestNode(t, nil)
	ids := []peer.ID{a.ID()}
	addrs := func(peer.ID) []ma.Multiaddr {
		return []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1"), ma.StringCast("/ip4/127.0.0.1/tcp/2"),
			ma.StringCast("/ip4/127.0.0.1/tcp/3"), ma.StringCast("/ip4/127.0.0.1/tcp/4"), ma.StringCast("/ip4/127.0.0.1/tcp/5")}
	}
	var buf bytes.Buffer
	if err := writeHoldersAnswer(&buf, ids, addrs); err != nil {
		t.Fatal(err)
	}
	got, err := readHoldersAnswer(bufio.NewReader(&buf))
	if err != nil || len(got) != 1 || got[0].ID != a.ID() || len(got[0].Addrs) != maxHolderAddrs {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	// Too many holders, a bad peer ID, a cut answer: errors, not panics.
	for _, bad := range [][]byte{{maxHolders + 1}, {1, 3, 'a', 'b', 'c', 0}, {2, 0}} {
		if _, err := readHoldersAnswer(bufio.NewReader(bytes.NewReader(bad))); err == nil {
			t.Errorf("answer %x accepted", bad)
		}
	}
	root := randomCID(t)
	buf.Reset()
	if err := writeHoldersRequest(&buf, root, holderFlagServing); err != nil {
		t.Fatal(err)
	}
	c, flags, err := readHoldersRequest(bufio.NewReader(&buf))
	if err != nil || !c.Equals(root) || flags != holderFlagServing {
		t.Fatalf("request round trip: %v %d %v", c, flags, err)
	}
	if _, _, err := readHoldersRequest(bufio.NewReader(bytes.NewReader(root.Bytes()[:4]))); err == nil {
		t.Error("a cut request was accepted")
	}
}

// FuzzHoldersAnswer reads HoldersProtocol answers from arbitrary bytes: no
// panic, one-line errors, at most maxHolders peers with at most
// maxHolderAddrs addresses each.
func FuzzHoldersAnswer(f *testing.F) {
	id, err := peer.Decode("12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	_ = writeHoldersAnswer(&buf, []peer.ID{id, id}, func(peer.ID) []ma.Multiaddr {
		return []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")}
	})
	f.Add(buf.Bytes())
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readHoldersAnswer(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			oneLine(t, err)
			return
		}
		if len(got) > maxHolders {
			t.Fatalf("%d holders accepted", len(got))
		}
		for _, ai := range got {
			if len(ai.Addrs) > maxHolderAddrs {
				t.Fatalf("%d addresses accepted for one holder", len(ai.Addrs))
			}
		}
	})
}
