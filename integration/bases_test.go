package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/node"
	"orchmind/node/api"
	"orchmind/protocol"
	"orchmind/store"
	"orchmind/swarm"

	"github.com/ipfs/go-cid"
)

// fileBase loads the base model file at path as a node runs it (stored
// types, byte tokenizer of the random test bases).
func fileBase(t *testing.T, path string) *base.Base {
	t.Helper()
	m, _, err := model.Load(path, model.AsStored)
	if err != nil {
		t.Fatal(err)
	}
	return &base.Base{Path: path, Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), Model: m,
		Tok: base.ByteTokenizer{}, Train: base.ByteTokenizer{}, Type: quant.Q8_0,
		Fingerprint: model.Fingerprint(m), ShapeID: model.ShapeID(m)}
}

// startAt starts a node on the data folder root (kept across restarts).
func startAt(t *testing.T, root string, b *base.Base, boot []string, share bool) *node.Node {
	t.Helper()
	n, err := node.Start(t.Context(), node.Config{DataDir: filepath.Join(root, "data"), AdapterDir: filepath.Join(root, "adapters"),
		ModelsDir: filepath.Join(root, "models"), Base: b, ShareBase: share, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot,
		APIAddr: "127.0.0.1:0", DHTServer: true, LocalOnly: true, FindTimeout: 3 * time.Second, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// plug loads the adapter folder dir into n's registry through the API.
func plug(t *testing.T, n *node.Node, dir string) {
	t.Helper()
	body, _ := json.Marshal(api.LoadRequest{Path: filepath.Base(dir)})
	resp, err := http.Post(n.URL()+"/api/adapters/load", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("plugging %s: %d %v", dir, resp.StatusCode, out)
	}
}

// TestBaseOverSwarm: node A runs a base model from its file and shares it
// (imported by reference); B and C run another base. B sees that an
// adapter A publishes is for a base that peers have, pulls the base and
// the adapter together (--with-base), restarts on the pulled base and
// plugs the adapter. C then pulls the base by fingerprint from A and B at
// once (both serve blocks of it, counted on their side), checks its
// fingerprint, restarts on it, pulls and plugs the adapter.
func TestBaseOverSwarm(t *testing.T) {
	ctx := t.Context()
	tmp := t.TempDir()
	rnd, err := base.Random(model.Config{Dim: 256, HiddenDim: 512, Layers: 10, Heads: 8, KVHeads: 4, SeqLen: 64}, quant.Q8_0, 11)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(tmp, "a", "models", "tiny-base.gguf")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := model.WriteGGUF(file, rnd.Model, "tiny-base", model.AsStored, nil, nil); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(file)
	if len(want) < 4<<20 {
		t.Fatalf("the base file is only %d bytes; the test needs several 1 MiB blocks", len(want))
	}
	bA := fileBase(t, file)
	fp := bA.Fingerprint
	other, err := base.Random(model.Config{Dim: 64, HiddenDim: 128, Layers: 2, Heads: 4, KVHeads: 2, SeqLen: 64}, quant.Q8_0, 12)
	if err != nil {
		t.Fatal(err)
	}

	a := startAt(t, filepath.Join(tmp, "a"), bA, nil, true)
	waitFor(t, "A to share its base", func() bool { h, _ := a.HeldBases(); return len(h) == 1 })
	if used := a.Store().Used(); used > 256<<10 {
		t.Fatalf("A's store holds %d bytes after sharing a %d-byte base: it was copied, not referenced", used, len(want))
	}
	c, err := a.Publish(ctx, adapterFolder(t, bA, 4), nil)
	if err != nil {
		t.Fatal(err)
	}

	bRoot := filepath.Join(tmp, "b")
	b := startAt(t, bRoot, other, addr(a), false)
	waitFor(t, "B to see the adapter and its base on peers", func() bool {
		res, _ := b.Search(ctx, api.SearchQuery{Text: "specialist"})
		return len(res) == 1 && res[0].CID == c && res[0].BaseWhere == node.BaseOnPeers
	})
	if res, _ := a.Search(ctx, api.SearchQuery{Text: "specialist"}); len(res) != 1 || res[0].BaseWhere != node.BaseHere {
		t.Fatalf("A's search: %+v, want base here", res)
	}
	// Without --with-base the pull says where the base is and how to get it.
	if _, _, err := b.PullWithBase(ctx, c, false, nil); err == nil || !strings.Contains(err.Error(), "--with-base") || !strings.Contains(err.Error(), fp) {
		t.Fatalf("pull of an adapter whose base is missing: %v", err)
	}
	dirB, baseB, err := b.PullWithBase(ctx, c, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(baseB); !bytes.Equal(got, want) {
		t.Fatal("B's pulled base differs from A's file")
	}
	if m, _, err := model.Load(baseB, model.AsStored); err != nil || model.Fingerprint(m) != fp {
		t.Fatalf("B's pulled base: %v", err)
	}
	if used := b.Store().Used(); used > folderBytes(dirB)+64<<10 {
		t.Fatalf("B's store holds %d bytes, the adapter %d: copies of the base were kept after it was written out", used, folderBytes(dirB))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = startAt(t, bRoot, fileBase(t, baseB), addr(a), false)
	plug(t, b, dirB)
	waitFor(t, "B to announce its base again", func() bool { return len(a.Swarm().KnownBases(fp)) == 1 })

	// C pulls the base by fingerprint from A and B at once.
	cRoot := filepath.Join(tmp, "c")
	cn := startAt(t, cRoot, other, append(addr(a), addr(b)...), false)
	waitFor(t, "C to connect to A and B", func() bool { return len(cn.Swarm().Peers()) >= 2 })
	provs, err := cn.BaseProviders(ctx, fp)
	if err != nil || len(provs) != 2 {
		t.Fatalf("C finds %d providers of the base (%v), want A and B", len(provs), err)
	}
	aBlocks0, _ := a.Store().RefReads()
	bBlocks0, _ := b.Store().RefReads()
	start := time.Now()
	baseC, err := cn.PullBase(ctx, "fp:"+fp)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	aBlocks, _ := a.Store().RefReads()
	bBlocks, _ := b.Store().RefReads()
	t.Logf("C pulled the %d-byte base in %s: %d blocks served by A, %d by B (from their files)", len(want), took.Round(time.Millisecond), aBlocks-aBlocks0, bBlocks-bBlocks0)
	if aBlocks == aBlocks0 || bBlocks == bBlocks0 {
		t.Fatalf("blocks came from A: %d, from B: %d; want both", aBlocks-aBlocks0, bBlocks-bBlocks0)
	}
	if got, _ := os.ReadFile(baseC); !bytes.Equal(got, want) {
		t.Fatal("C's pulled base differs")
	}
	// Pulling it again does nothing: it is held.
	if again, err := cn.PullBase(ctx, fp); err != nil || again != baseC {
		t.Fatalf("second pull: %s %v", again, err)
	}
	if err := cn.Close(); err != nil {
		t.Fatal(err)
	}
	cn = startAt(t, cRoot, fileBase(t, baseC), append(addr(a), addr(b)...), false)
	waitFor(t, "C to see the adapter", func() bool {
		res, _ := cn.Search(ctx, api.SearchQuery{Text: "specialist"})
		return len(res) == 1 && res[0].BaseWhere == node.BaseHere
	})
	dirC, err := cn.Pull(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	plug(t, cn, dirC)

	// A changed base file is refused to peers, not served.
	if err := os.WriteFile(file, append(want[:len(want):len(want)], 0), 0o644); err != nil {
		t.Fatal(err)
	}
	held, _ := a.HeldBases()
	root, err := cid.Decode(held[0].Root)
	if err != nil {
		t.Fatal(err)
	}
	nd, err := a.Store().DAGService().Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range nd.Links() {
		if _, err := a.Store().Get(ctx, l.Cid); !errors.Is(err, store.ErrFileChanged) {
			t.Fatalf("A's base file changed, its block %s: %v; want it refused", l.Cid, err)
		}
	}
}

// TestBaseLiarRefused: a peer announces a base file under a fingerprint
// that is not the file's. The pull fetches it (every block matches its
// CID), then the fingerprint check of the assembled file refuses it:
// nothing is written into the models folder.
func TestBaseLiarRefused(t *testing.T) {
	ctx := t.Context()
	tmp := t.TempDir()
	rnd, err := base.Random(model.Config{Dim: 64, HiddenDim: 128, Layers: 2, Heads: 4, KVHeads: 2, SeqLen: 64}, quant.Q8_0, 21)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(tmp, "l", "real.gguf")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := model.WriteGGUF(file, rnd.Model, "real", model.AsStored, nil, nil); err != nil {
		t.Fatal(err)
	}
	liarRoot := filepath.Join(tmp, "l")
	liar := startAt(t, liarRoot, rnd, nil, false)
	h, err := liar.ShareBase(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := cid.Decode(h.Root)
	key, err := swarm.LoadOrCreateIdentity(filepath.Join(liarRoot, "data"), nil)
	if err != nil {
		t.Fatal(err)
	}
	fake := "sha256:" + strings.Repeat("ab", 32)
	signed, err := protocol.SignBase(protocol.BaseAnnouncement{Root: root, Name: "famous-model", Arch: "llama", Fingerprint: fake,
		Size: uint64(h.Size), Created: time.Now()}, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := liar.Swarm().AnnounceBase(ctx, signed); err != nil {
		t.Fatal(err)
	}
	victimRoot := filepath.Join(tmp, "v")
	v := startAt(t, victimRoot, rnd, addr(liar), false)
	waitFor(t, "connection", func() bool { return len(v.Swarm().Peers()) > 0 })
	_, err = v.PullBase(ctx, fake)
	if err == nil || !strings.Contains(err.Error(), "fingerprint") || !strings.Contains(err.Error(), rnd.Fingerprint) {
		t.Fatalf("pull of a base announced under a false fingerprint: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(victimRoot, "models")); len(ents) != 0 {
		t.Fatalf("the models folder holds %d entries after a refused pull", len(ents))
	}
	if pinned, _ := v.Store().IsPinned(ctx, root); pinned {
		t.Fatal("the refused base stays pinned in the victim's store")
	}
	if held, _ := v.HeldBases(); len(held) != 0 {
		t.Fatalf("the victim holds %v", held)
	}
}

// TestBasePullFigures measures a base pull over loopback: sharing by
// reference, a pull from one provider and a pull from two. Set
// ORCHMIND_BASE_FIGURES=1 to run it (about 64 MB written a few times).
func TestBasePullFigures(t *testing.T) {
	if os.Getenv("ORCHMIND_BASE_FIGURES") == "" {
		t.Skip("set ORCHMIND_BASE_FIGURES=1 to measure base pulls")
	}
	ctx := t.Context()
	tmp := t.TempDir()
	rnd, err := base.Random(model.Config{Dim: 512, HiddenDim: 1536, Layers: 18, Heads: 8, KVHeads: 4, SeqLen: 64}, quant.Q8_0, 31)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(tmp, "a", "models", "big.gguf")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := model.WriteGGUF(file, rnd.Model, "big", model.AsStored, nil, nil); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(file)
	mb := float64(st.Size()) / (1 << 20)
	a := startAt(t, filepath.Join(tmp, "a"), rnd, nil, false)
	t0 := time.Now()
	h, err := a.ShareBase(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("share %.0f MB by reference (fingerprint + import): %s; store holds %d KB", mb, time.Since(t0).Round(time.Millisecond), a.Store().Used()>>10)
	b := startAt(t, filepath.Join(tmp, "b"), rnd, addr(a), false)
	waitFor(t, "B connects", func() bool { return len(b.Swarm().Peers()) > 0 })
	t0 = time.Now()
	if _, err := b.PullBase(ctx, h.Fingerprint); err != nil {
		t.Fatal(err)
	}
	d := time.Since(t0)
	t.Logf("pull from 1 provider: %s (%.0f MB/s, fetch + write + fingerprint + re-import)", d.Round(time.Millisecond), mb/d.Seconds())
	c := startAt(t, filepath.Join(tmp, "c"), rnd, append(addr(a), addr(b)...), false)
	waitFor(t, "C connects", func() bool { return len(c.Swarm().Peers()) >= 2 })
	a0, _ := a.Store().RefReads()
	b0, _ := b.Store().RefReads()
	t0 = time.Now()
	if _, err := c.PullBase(ctx, h.Fingerprint); err != nil {
		t.Fatal(err)
	}
	d = time.Since(t0)
	a1, _ := a.Store().RefReads()
	b1, _ := b.Store().RefReads()
	t.Logf("pull from 2 providers: %s (%.0f MB/s); blocks from A %d, from B %d", d.Round(time.Millisecond), mb/d.Seconds(), a1-a0, b1-b0)
}
