package integration

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/swarm"
)

// TestPeerServingCorruptBlocks: a peer that provides an adapter's CID but
// serves other bytes under every block is detected, its blocks are
// refused, it is scored down and cut off; the same pull then completes from
// the honest publisher, byte for byte.
func TestPeerServingCorruptBlocks(t *testing.T) {
	b, err := base.Random(model.Config{Dim: 64, HiddenDim: 128, Layers: 2, Heads: 4, KVHeads: 2, SeqLen: 64}, quant.Q8_0, 5)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pub := startNode(t, b, nil)
	src := adapterFolder(t, b, 8)
	want, _ := os.ReadFile(filepath.Join(src, adapters.SafetensorsFile))
	cs, err := pub.Publish(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := cid.Decode(cs)

	// The liar holds every block of the adapter with its bytes flipped (a
	// plain blockstore that does not check what it is given).
	lies := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	n := 0
	err = pub.Store().Walk(ctx, root, func(c cid.Cid, _ int) error {
		blk, err := pub.Store().Get(ctx, c)
		if err != nil {
			return err
		}
		data := bytes.Clone(blk.RawData())
		for i := range data {
			data[i] ^= 0x5A
		}
		fake, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			return err
		}
		n++
		return lies.Put(ctx, fake)
	})
	if err != nil {
		t.Fatal(err)
	}
	liar, err := swarm.New(ctx, swarm.Config{
		DataDir:     t.TempDir(),
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		DHTMode:     swarm.DHTServer,
		LocalOnly:   true,
		Blockstore:  lies,
		Logger:      slog.New(slog.DiscardHandler),
		Validator: func(context.Context, peer.ID, []byte) (swarm.Announcement, error) {
			return swarm.Announcement{}, errors.New("the liar accepts nothing")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { liar.Close() })
	var liarAddrs []string
	for _, a := range liar.Addrs() {
		liarAddrs = append(liarAddrs, a.String())
	}

	// The victim knows only the liar, who provides the CID in the DHT.
	victim, dir := startNodeQuota(t, b, liarAddrs, 0)
	waitFor(t, "the victim to connect to the liar", func() bool {
		return victim.Swarm().Host().Network().Connectedness(liar.ID()) == network.Connected
	})
	// Connected is not yet in the routing table (identify comes first):
	// provide once the liar's DHT knows the victim.
	var perr error
	waitFor(t, "the liar to provide the CID", func() bool {
		perr = liar.Provide(ctx, root)
		return perr == nil || !errors.Is(perr, swarm.ErrNoPeers)
	})
	if perr != nil {
		t.Fatal(perr)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := victim.Pull(pctx, cs); err == nil {
		t.Fatal("a pull served only by a liar succeeded")
	}
	bad, ok := victim.Swarm().BadPeers()[liar.ID()]
	if !ok {
		t.Fatalf("the liar was not detected (bad peers: %v)", victim.Swarm().BadPeers())
	}
	if has, _ := victim.Store().Has(ctx, root); has {
		t.Fatal("the victim stored the liar's root block")
	}
	checkStoreConsistent(t, victim.Store())
	noPartialFolders(t, dir)
	waitFor(t, "the liar to be cut off", func() bool {
		return victim.Swarm().Host().Network().Connectedness(liar.ID()) != network.Connected
	})
	if err := victim.Swarm().Connect(ctx, peer.AddrInfo{ID: liar.ID(), Addrs: liar.Addrs()}); err == nil {
		t.Fatal("the victim reconnected to a banned liar")
	}
	t.Logf("liar (%d fake blocks on offer) caught after %d bad blocks", n, bad.Blocks)

	// The honest publisher serves the same CID: the pull completes.
	if err := victim.Swarm().Connect(ctx, peer.AddrInfo{ID: pub.Swarm().ID(), Addrs: pub.Swarm().Addrs()}); err != nil {
		t.Fatal(err)
	}
	got, err := victim.Pull(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(got, adapters.SafetensorsFile))
	if err != nil || !bytes.Equal(data, want) {
		t.Fatalf("the adapter pulled after the liar differs from the published one (%v)", err)
	}
}
