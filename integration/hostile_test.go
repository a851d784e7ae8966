package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/node"
	"orchmind/node/api"
	"orchmind/protocol"
	"orchmind/store"
	"orchmind/swarm"
)

// Hostile peers (issue 12): each test plays an attacker against nodes on
// loopback and only uses what nodes offered before the fixes, so it runs —
// and fails — on the old code too.

func hostileBase(t *testing.T) *base.Base {
	t.Helper()
	b, err := base.Random(model.Config{Dim: 64, HiddenDim: 128, Layers: 2, Heads: 4, KVHeads: 2, SeqLen: 64}, quant.Q8_0, 12)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startNodeIn is startNode with a known data folder (for the node's key).
func startNodeIn(t *testing.T, b *base.Base, boot []string) (*node.Node, string) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	n, err := node.Start(t.Context(), node.Config{DataDir: data, AdapterDir: filepath.Join(dir, "adapters"),
		Base: b, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot, APIAddr: "127.0.0.1:0", DHTServer: true, FindTimeout: 3 * time.Second,
		Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, data
}

// sign signs an announcement of root by key.
func sign(t *testing.T, key crypto.PrivKey, root cid.Cid, size uint64, created time.Time, name string, b *base.Base) []byte {
	t.Helper()
	signed, err := protocol.Sign(protocol.Announcement{Root: root, Size: size, Created: created, Manifest: protocol.Manifest{
		Name: name, Description: "hostile test", BaseFingerprint: b.Fingerprint, BaseName: b.Name, Rank: 8, Alpha: 16,
		TargetModules: []string{"q_proj"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func nodeKey(t *testing.T, dataDir string) crypto.PrivKey {
	t.Helper()
	k, err := swarm.LoadOrCreateIdentity(dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// bombCIDBuilder matches store's: CIDv1, dag-pb, sha2-256.
var bombCIDBuilder = cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}

// storeDedupBomb puts into s a folder whose one file links the same
// 1 MiB leaf refs times (its UnixFS node declaring them all, as an
// honest one would): three blocks, about 1 MiB to fetch, refs MiB to write.
func storeDedupBomb(t *testing.T, s *store.Store, refs int) cid.Cid {
	t.Helper()
	ctx := t.Context()
	data := make([]byte, store.ChunkSize)
	h, _ := mh.Sum(data, mh.SHA2_256, -1)
	leaf, err := blocks.NewBlockWithCid(data, cid.NewCidV1(cid.Raw, h))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	fsn := ft.NewFSNode(ft.TFile)
	for range refs {
		fsn.AddBlockSize(store.ChunkSize)
	}
	fd, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	file := merkledag.NodeWithData(fd)
	if err := file.SetCidBuilder(bombCIDBuilder); err != nil {
		t.Fatal(err)
	}
	for range refs {
		if err := file.AddRawLink("", &ipld.Link{Cid: leaf.Cid(), Size: store.ChunkSize}); err != nil {
			t.Fatal(err)
		}
	}
	dir := ft.EmptyDirNode()
	if err := dir.SetCidBuilder(bombCIDBuilder); err != nil {
		t.Fatal(err)
	}
	// The link says 1 MiB: a free-space check that trusts it passes.
	if err := dir.AddRawLink("adapter_model.safetensors", &ipld.Link{Cid: file.Cid(), Size: store.ChunkSize}); err != nil {
		t.Fatal(err)
	}
	if err := s.DAGService().AddMany(ctx, []ipld.Node{file, dir}); err != nil {
		t.Fatal(err)
	}
	return dir.Cid()
}

// pullFolderPeak polls the bytes under dir's .pull-* folders until stop is
// closed and returns the most seen at once.
func pullFolderPeak(dir string, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		for {
			var n int64
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".pull-") {
					n += folderBytes(filepath.Join(dir, e.Name()))
				}
			}
			peak = max(peak, n)
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return out
}

// TestPullDedupBomb: an attacker announces a "1 MiB" adapter whose DAG
// links one 1 MiB leaf 512 times. The victim fetches three blocks; before
// the fix it wrote 512 MiB out before anything objected. Now the export
// refuses it from the root's declared sizes, before writing a byte.
func TestPullDedupBomb(t *testing.T) {
	b := hostileBase(t)
	ctx := t.Context()
	attacker, adir := startNodeIn(t, b, nil)
	victim, vdir := startNodeIn(t, b, addr(attacker))
	waitFor(t, "connection", func() bool { return len(victim.Swarm().Peers()) > 0 })
	root := storeDedupBomb(t, attacker.Store(), 512)
	if err := attacker.Swarm().Announce(ctx, sign(t, nodeKey(t, adir), root, 1<<20, time.Now(), "tiny-helper", b)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the victim to see the announcement", func() bool {
		res, _ := victim.Search(ctx, api.SearchQuery{Text: "tiny-helper"})
		return len(res) > 0
	})
	stop := make(chan struct{})
	peak := pullFolderPeak(vdir, stop)
	start := time.Now()
	_, err := victim.Pull(ctx, root.String())
	close(stop)
	written := <-peak
	t.Logf("pull of the dedup bomb: %v after %s; at most %d bytes written at once", err, time.Since(start).Round(time.Millisecond), written)
	if err == nil {
		t.Fatal("the dedup bomb was pulled")
	}
	// (The text of store.ErrExportTooLarge: the test builds on the old code too.)
	if !strings.Contains(err.Error(), "export too large") {
		t.Errorf("pull error %q does not say the adapter is larger than announced", err)
	}
	if written > 2<<20 {
		t.Errorf("the victim wrote %d MiB for a DAG announced as 1 MiB", written>>20)
	}
	if _, err := os.Stat(filepath.Join(vdir, "..", "adapters", "tiny-helper")); err == nil {
		t.Error("the bomb landed in the adapter folder")
	}
}

// TestRepublishUnderAnotherName: a peer re-announces an honest adapter's
// CID under its own name. Listings are per (publisher, CID): a searcher
// sees both, each with its publisher, instead of the last one replacing
// the first.
func TestRepublishUnderAnotherName(t *testing.T) {
	b := hostileBase(t)
	ctx := t.Context()
	honest := startNode(t, b, nil)
	squatter, sdir := startNodeIn(t, b, addr(honest))
	watcher := startNode(t, b, addr(honest))
	waitFor(t, "connections", func() bool {
		return len(squatter.Swarm().Peers()) > 0 && len(watcher.Swarm().Peers()) > 0
	})
	c, err := honest.Publish(ctx, adapterFolder(t, b, 8), nil)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := cid.Decode(c)
	waitFor(t, "the watcher to see the adapter", func() bool {
		res, _ := watcher.Search(ctx, api.SearchQuery{Text: "specialist"})
		return len(res) == 1
	})
	if err := squatter.Swarm().Announce(ctx, sign(t, nodeKey(t, sdir), root, 1, time.Now(), "evil-twin", b)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the watcher to see the re-announcement", func() bool {
		res, _ := watcher.Search(ctx, api.SearchQuery{Text: "evil-twin"})
		return len(res) == 1
	})
	res, err := watcher.Search(ctx, api.SearchQuery{})
	if err != nil {
		t.Fatal(err)
	}
	byPublisher := map[string]string{}
	for _, l := range res {
		if l.CID == c {
			byPublisher[l.Publisher] = l.Name
		}
	}
	if byPublisher[honest.Swarm().ID().String()] != "specialist" || byPublisher[squatter.Swarm().ID().String()] != "evil-twin" {
		t.Fatalf("listings of %s by publisher: %v; want the honest publisher's and the squatter's each under its own name", c, byPublisher)
	}
}

// catalogueHost is an attacker: a bare libp2p host on loopback that
// answers every catalogue request with the announcements given (the
// catalogue wire format: uvarint-length frames, an empty frame at the end).
func catalogueHost(t *testing.T, anns [][]byte) peer.AddrInfo {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	h.SetStreamHandler(swarm.CatalogueProtocol, func(st network.Stream) {
		defer st.Close()
		r := bufio.NewReader(st)
		n, err := binary.ReadUvarint(r)
		if err != nil || n > 1024 {
			_ = st.Reset()
			return
		}
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			_ = st.Reset()
			return
		}
		w := bufio.NewWriter(st)
		frame := func(b []byte) {
			var hdr [binary.MaxVarintLen64]byte
			_, _ = w.Write(hdr[:binary.PutUvarint(hdr[:], uint64(len(b)))])
			_, _ = w.Write(b)
		}
		for _, a := range anns {
			frame(a)
		}
		frame(nil)
		_ = w.Flush()
	})
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// TestCatalogueFlood: an honest node's announcement sits in the victim's
// catalogue; then seven attacker hosts each serve the victim a catalogue
// of 1000 announcements by fresh keys — five dated now, two a year ahead.
// Before the fix the victim evicted the oldest Created, so the honest
// entry left its catalogue and was no longer passed on to others (while
// the node's own list of what it had seen grew without bound). Now the
// future-dated ones are refused, the flood evicts only the flooders'
// entries, and the victim still serves the honest one to a newcomer.
func TestCatalogueFlood(t *testing.T) {
	b := hostileBase(t)
	ctx := t.Context()
	honest := startNode(t, b, nil)
	victim := startNode(t, b, addr(honest))
	c, err := honest.Publish(ctx, adapterFolder(t, b, 8), nil)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := cid.Decode(c)
	inCatalogue := func(list []swarm.Received) bool {
		for _, r := range list {
			if r.Root.Equals(root) && r.Author == honest.Swarm().ID() {
				return true
			}
		}
		return false
	}
	waitFor(t, "the victim to keep the honest announcement", func() bool { return inCatalogue(victim.Swarm().Catalogue("", 0)) })

	const hosts, per = 7, swarm.MaxCatalogueEntries
	var sent atomic.Int64
	for i := range hosts {
		created := time.Now()
		if i >= 5 {
			created = created.Add(365 * 24 * time.Hour)
		}
		anns := make([][]byte, per)
		for j := range anns {
			k, _, err := crypto.GenerateEd25519Key(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			d := make([]byte, 32)
			_, _ = rand.Read(d)
			h, _ := mh.Sum(d, mh.SHA2_256, -1)
			anns[j] = sign(t, k, cid.NewCidV1(cid.DagProtobuf, h), 1<<20, created.Add(time.Duration(j)*time.Millisecond), fmt.Sprint("spam-", i, "-", j), b)
		}
		ai := catalogueHost(t, anns)
		if err := victim.Swarm().Host().Connect(ctx, ai); err != nil {
			t.Fatal(err)
		}
		sent.Add(per)
	}
	// The victim asks each attacker for its catalogue when identify says
	// it speaks the protocol: wait until the flood has settled.
	last, stable := -1, 0
	deadline := time.Now().Add(60 * time.Second)
	for stable < 10 && time.Now().Before(deadline) {
		n := len(victim.Swarm().Catalogue("", 0))
		if n == last && n > 1000 {
			stable++
		} else {
			stable = 0
		}
		last = n
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the victim keeps %d announcements after %d from the flooders", last, sent.Load())
	if last <= 1000 {
		t.Fatalf("the flood did not reach the victim (%d entries kept)", last)
	}
	if !inCatalogue(victim.Swarm().Catalogue("", 0)) {
		t.Error("the flood evicted the honest announcement from the victim's catalogue")
	}
	for _, r := range victim.Swarm().Catalogue("", 0) {
		if r.Created.After(time.Now().Add(time.Hour)) {
			t.Errorf("the victim keeps an announcement dated %s", r.Created)
			break
		}
	}
	// What the victim remembers is bounded (issue 12, item 4: a second map
	// of every announcement ever seen grew with each one served to it).
	res, err := victim.Search(ctx, api.SearchQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) > 4096+1 {
		t.Errorf("the victim's search lists %d announcements; its catalogue holds at most 4096 from peers", len(res))
	}
	found := false
	for _, l := range res {
		found = found || l.CID == c
	}
	if !found {
		t.Error("the victim's search no longer lists the honest adapter")
	}
	// What the victim passes on: a newcomer asks for its catalogue.
	newcomer := startNode(t, b, addr(victim))
	waitFor(t, "connection", func() bool { return len(newcomer.Swarm().Peers()) > 0 })
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	got, err := newcomer.Swarm().RequestCatalogue(rctx, victim.Swarm().ID(), "", swarm.MaxCatalogueEntries)
	if err != nil {
		t.Fatal(err)
	}
	if !inCatalogue(got) {
		t.Errorf("the victim's catalogue (%d entries served) no longer carries the honest announcement", len(got))
	}
}
