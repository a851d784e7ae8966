package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"orchmind/engine/model"
	"orchmind/internal/atomicfile"
	"orchmind/node/api"
	"orchmind/protocol"
	"orchmind/swarm"
)

// BasesFile (in the data folder) lists the base model files this node
// holds and announces: each imported into the store by reference, with
// its signed announcement.
const BasesFile = "bases.json"

// Where a base model is, as search shows it for each adapter.
const (
	BaseHere    = "here"    // this node runs it or holds its file
	BaseOnPeers = "peers"   // a peer announced it
	BaseNowhere = "nowhere" // nobody known holds it
)

// HeldBase is one base file this node holds and announces.
type HeldBase struct {
	Path        string `json:"path"`
	Name        string `json:"name"`
	Arch        string `json:"arch"`
	Fingerprint string `json:"fingerprint"`
	ShapeID     string `json:"shape_id,omitempty"`
	Size        int64  `json:"size"`
	Root        string `json:"root"`
	Signed      []byte `json:"signed"`
}

// heldBases guards BasesFile (one node per data folder: the store's lock).
type heldBases struct {
	mu sync.Mutex
}

func validateBase(data []byte) (swarm.BaseInfo, error) {
	s, err := protocol.OpenBase(data)
	if err != nil {
		return swarm.BaseInfo{}, err
	}
	return swarm.BaseInfo{Root: s.Root, Fingerprint: s.Fingerprint, Author: s.Author, Created: s.Created, Decoded: s, Data: data}, nil
}

// startBases enables the base announcements of the swarm, announces again
// the bases recorded in BasesFile whose files are unchanged, and, with
// Config.ShareBase, shares the running base's file in the background.
func (n *Node) startBases(ctx context.Context) error {
	if err := n.sw.EnableBases(validateBase); err != nil {
		return err
	}
	cleanBasePartials(n.cfg.ModelsDir, time.Now(), n.log)
	held, err := n.HeldBases()
	if err != nil {
		n.log.Warn("reading the list of held bases; not announcing them", "err", err)
	}
	shared := map[string]int64{} // path → size of the held bases announced
	for _, h := range held {
		if st, err := os.Stat(h.Path); err != nil || st.Size() != h.Size {
			n.log.Warn("a base file this node held is gone or changed; not announcing it", "path", h.Path)
			continue
		}
		if err := n.sw.AnnounceBase(ctx, h.Signed); err != nil {
			n.log.Warn("announcing a held base", "path", h.Path, "err", err)
			continue
		}
		if root, err := cid.Decode(h.Root); err == nil {
			n.provide(root)
			if has, _ := n.store.Has(ctx, root); has {
				shared[h.Path] = h.Size
			}
		}
	}
	if n.cfg.ShareBase && n.cfg.Base.Path != "" {
		abs, _ := filepath.Abs(n.cfg.Base.Path)
		if st, err := os.Stat(n.cfg.Base.Path); err == nil && st.Mode().IsRegular() && shared[abs] != st.Size() {
			// Not yet shared (or changed since): import and announce it. A
			// base shared at an earlier start was announced above, without
			// hashing its gigabytes again (every block read to serve it is
			// checked against its CID, so a changed file is never served).
			n.bg.Go(func() {
				var err error
				if b := n.cfg.Base; b.Type == model.AsStored && b.Model != nil {
					// Held as stored: its fingerprint is the file's; no second load.
					_, err = n.shareLoaded(n.bgCtx(), b.Path, b.Model)
				} else {
					_, err = n.ShareBase(n.bgCtx(), b.Path)
				}
				if err != nil && !n.closed() {
					n.log.Warn("sharing the base model with peers", "path", n.cfg.Base.Path, "err", err)
				}
			})
		}
	}
	return nil
}

// bgCtx is a context that ends when the node closes.
func (n *Node) bgCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-n.done; cancel() }()
	return ctx
}

// HeldBases lists the base files this node holds and announces.
func (n *Node) HeldBases() ([]HeldBase, error) {
	n.held.mu.Lock()
	defer n.held.mu.Unlock()
	return n.readHeld()
}

func (n *Node) readHeld() ([]HeldBase, error) {
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, BasesFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []HeldBase
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): delete it and share the bases again", BasesFile, err)
	}
	return out, nil
}

func (n *Node) recordHeld(h HeldBase) error {
	n.held.mu.Lock()
	defer n.held.mu.Unlock()
	list, err := n.readHeld()
	if err != nil {
		return err
	}
	list = append(list[:0:0], list...)
	kept := list[:0]
	for _, x := range list {
		if x.Path != h.Path {
			kept = append(kept, x)
		}
	}
	kept = append(kept, h)
	b, err := json.MarshalIndent(kept, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(n.cfg.DataDir, BasesFile), b, 0o600)
}

// ShareBase imports the base model file at path into the store by
// reference (not copied), signs and announces it to peers (name,
// architecture, fingerprint of the file as stored, size, root CID),
// provides it in the DHT and records it so it is announced again at the
// next start. The file must stay as it is: a changed file is refused to
// peers block by block.
func (n *Node) ShareBase(ctx context.Context, path string) (*HeldBase, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	m, _, err := model.Load(abs, model.AsStored)
	if err != nil {
		return nil, fmt.Errorf("share base %s: %w", path, err)
	}
	return n.shareLoaded(ctx, abs, m)
}

func (n *Node) shareLoaded(ctx context.Context, path string, m *model.Model) (*HeldBase, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	root, err := n.store.ImportFileRef(ctx, abs)
	if err != nil {
		return nil, fmt.Errorf("share base %s: %w", abs, err)
	}
	name := strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	if n.cfg.Base != nil && n.cfg.Base.Path == abs && n.cfg.Base.Name != "" {
		name = n.cfg.Base.Name
	}
	if len(name) > protocol.MaxBaseNameLen {
		name = name[:protocol.MaxBaseNameLen]
	}
	a := protocol.BaseAnnouncement{Root: root, Name: name, Arch: m.Config.ArchName(), Fingerprint: model.Fingerprint(m),
		ShapeID: model.ShapeID(m), Size: uint64(st.Size()), Created: time.Now()}
	signed, err := protocol.SignBase(a, n.key)
	if err != nil {
		return nil, fmt.Errorf("share base %s: %w", abs, err)
	}
	h := HeldBase{Path: abs, Name: name, Arch: a.Arch, Fingerprint: a.Fingerprint, ShapeID: a.ShapeID, Size: st.Size(),
		Root: root.String(), Signed: signed}
	if err := n.recordHeld(h); err != nil {
		return nil, fmt.Errorf("share base %s: recording it: %w", abs, err)
	}
	if err := n.sw.AnnounceBase(ctx, signed); err != nil {
		return nil, fmt.Errorf("share base %s: %w", abs, err)
	}
	n.provide(root)
	n.log.Info("sharing a base model", "path", abs, "fingerprint", a.Fingerprint, "root", root.String(), "bytes", st.Size())
	return &h, nil
}

// BaseWhere says where the base with this fingerprint is: BaseHere (this
// node runs it or holds its file), BaseOnPeers (a peer announced it) or
// BaseNowhere.
func (n *Node) BaseWhere(fp string) string {
	if fp == "" {
		return BaseNowhere
	}
	if n.cfg.Base != nil && n.cfg.Base.Fingerprint == fp {
		return BaseHere
	}
	if held, _ := n.HeldBases(); len(held) > 0 {
		for _, h := range held {
			if h.Fingerprint == fp {
				return BaseHere
			}
		}
	}
	if len(n.sw.KnownBases(fp)) > 0 {
		return BaseOnPeers
	}
	return BaseNowhere
}

// BaseProviders asks every connected peer which of them hold the base
// with fingerprint fp (at most FindTimeout), adds what was heard
// before, and returns the announcements by root, the root most peers hold
// first.
func (n *Node) BaseProviders(ctx context.Context, fp string) ([]swarm.BaseInfo, error) {
	if fp == "" {
		return nil, errors.New("no base fingerprint given")
	}
	actx, cancel := context.WithTimeout(ctx, min(n.cfg.FindTimeout, 10*time.Second))
	defer cancel()
	var mu sync.Mutex
	byAuthor := map[peer.ID]swarm.BaseInfo{}
	add := func(infos []swarm.BaseInfo) {
		mu.Lock()
		defer mu.Unlock()
		for _, i := range infos {
			if i.Fingerprint == fp && i.Author != n.sw.ID() {
				if old, ok := byAuthor[i.Author]; !ok || i.Created.After(old.Created) {
					byAuthor[i.Author] = i
				}
			}
		}
	}
	add(n.sw.KnownBases(fp))
	var wg sync.WaitGroup
	for _, p := range n.sw.Peers() {
		wg.Go(func() {
			got, err := n.sw.RequestBases(actx, p, fp)
			if err != nil {
				n.log.Debug("asking a peer for a base", "peer", p.String(), "err", err)
			}
			add(got)
		})
	}
	wg.Wait()
	count := map[string]int{}
	var out []swarm.BaseInfo
	for _, i := range byAuthor {
		count[i.Root.KeyString()]++
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool {
		ca, cb := count[out[a].Root.KeyString()], count[out[b].Root.KeyString()]
		if ca != cb {
			return ca > cb
		}
		return out[a].Author < out[b].Author
	})
	return out, nil
}

// PullBase fetches the base model file with fingerprint fp from the peers
// that announce it — from all of them at once (the fetch splits the blocks
// across them), each block checked against its CID — writes it to a
// temporary file in the models folder, checks the fingerprint of the
// assembled file, syncs it and renames it into place as
// <name>.<ext>, then keeps it in the store by reference (the fetched
// copies are freed) and announces it, so that others can fetch it from
// here too. A base already held is not fetched again. It returns the path.
func (n *Node) PullBase(ctx context.Context, fp string) (string, error) {
	return n.pullBase(ctx, fp, nil)
}

var _ api.BaseService = (*Node)(nil)

// pullBase is PullBase, reporting the fetch's progress.
func (n *Node) pullBase(ctx context.Context, fp string, progress func(swarm.Progress)) (string, error) {
	fp = strings.TrimPrefix(strings.TrimSpace(fp), "fp:")
	if held, err := n.HeldBases(); err == nil {
		for _, h := range held {
			if h.Fingerprint == fp {
				if st, err := os.Stat(h.Path); err == nil && st.Size() == h.Size {
					return h.Path, nil
				}
			}
		}
	}
	infos, err := n.BaseProviders(ctx, fp)
	if err != nil {
		return "", fmt.Errorf("pull base %s: %w", fp, err)
	}
	if len(infos) == 0 {
		return "", fmt.Errorf("pull base %s: no connected peer holds it (asked %d peers): ask someone who has it to run a node with it, or pull it by name (ollama:NAME, hf:ORG/REPO)", fp, len(n.sw.Peers()))
	}
	root := infos[0].Root
	var provs []peer.AddrInfo
	var size uint64
	var name string
	for _, i := range infos {
		if !i.Root.Equals(root) {
			continue
		}
		s := i.Decoded.(*protocol.SignedBase)
		size = max(size, s.Size)
		if name == "" {
			name = s.Name
		}
		provs = append(provs, peer.AddrInfo{ID: i.Author})
	}
	dir := n.cfg.ModelsDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pull base %s: %w", fp, err)
	}
	t0 := time.Now()
	var tFetch, tExport, tCheck, tImport time.Duration
	mark := func(d *time.Duration) { *d = time.Since(t0); t0 = time.Now() }
	unlock := n.store.PinLock(ctx)
	n.log.Info("pulling a base model", "fingerprint", fp, "root", root.String(), "bytes", size, "providers", len(provs))
	err = n.sw.Fetch(ctx, root, progress, swarm.WithProviders(provs...), swarm.WithMaxBytes(int64(size)))
	if err == nil {
		// Pinned while the file is written and checked; the import by
		// reference below replaces the copies.
		err = n.store.PinHeld(ctx, root)
	}
	unlock.Unlock(ctx)
	if err != nil {
		return "", fmt.Errorf("pull base %s: %w", fp, err)
	}
	mark(&tFetch)
	kept := false
	defer func() {
		if !kept {
			// Refused or failed: the fetched copies go at the next GC.
			if err := n.store.Unpin(context.WithoutCancel(ctx), root); err != nil {
				n.log.Warn("unpinning a refused base", "root", root.String(), "err", err)
			}
		}
	}()
	tmp, err := os.CreateTemp(dir, ".base-*.partial")
	if err != nil {
		return "", fmt.Errorf("pull base %s: %w", fp, err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	os.Remove(tmpPath) // ExportFile creates it
	defer os.Remove(tmpPath)
	if err := n.store.ExportFile(ctx, root, tmpPath); err != nil {
		return "", fmt.Errorf("pull base %s: %w", fp, err)
	}
	if st, err := os.Stat(tmpPath); err != nil || uint64(st.Size()) != size {
		return "", fmt.Errorf("pull base %s: the assembled file is not the %d bytes announced", fp, size)
	}
	mark(&tExport)
	m, _, err := model.Load(tmpPath, model.AsStored)
	if err != nil {
		return "", fmt.Errorf("pull base %s: the fetched file is not a usable model: %w", fp, err)
	}
	if got := model.Fingerprint(m); got != fp {
		return "", fmt.Errorf("pull base %s: the fetched file has fingerprint %s: its announcers lied or hold another file; nothing was kept", fp, got)
	}
	mark(&tCheck)
	dst, err := placeBase(dir, name, fp)
	if err != nil {
		return "", fmt.Errorf("pull base %s: %w", fp, err)
	}
	// A hard link never replaces a file that appeared meanwhile; where
	// links are not supported, rename.
	if err := os.Link(tmpPath, dst); err == nil {
		_ = os.Remove(tmpPath)
	} else if errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("pull base %s: %s appeared while the base was being pulled; pull again", fp, dst)
	} else if err := os.Rename(tmpPath, dst); err != nil {
		return "", fmt.Errorf("pull base %s: %w", fp, err)
	}
	kept = true
	syncDir(dir)
	h, err := n.shareLoaded(ctx, dst, m)
	if err != nil {
		return dst, err
	}
	if h.Root != root.String() {
		return dst, fmt.Errorf("pull base %s: the file imported as %s, not %s as announced", fp, h.Root, root)
	}
	// The fetched copies are dead now: give their pack space back.
	if err := n.store.Reclaim(ctx); err != nil {
		n.log.Warn("reclaiming the space of a pulled base's copies", "err", err)
	}
	mark(&tImport)
	n.log.Info("pulled a base model", "path", dst, "fingerprint", fp, "providers", len(provs),
		"fetch", tFetch, "write", tExport, "fingerprint_check", tCheck, "import_by_reference", tImport)
	// The pin of the fetch is the pin of the import: nothing to undo.
	return dst, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// placeBase picks the file name of a pulled base in dir: <name>.gguf, or
// <name>-<fingerprint prefix>.gguf when that is taken.
func placeBase(dir, name, fp string) (string, error) {
	name = strings.Trim(unsafeName.ReplaceAllString(name, "_"), "._")
	if name == "" {
		name = "base"
	}
	short := strings.TrimPrefix(fp, "sha256:")
	if len(short) > 12 {
		short = short[:12]
	}
	for _, cand := range []string{name + ".gguf", name + "-" + short + ".gguf"} {
		p := filepath.Join(dir, cand)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s and %s-%s.gguf already exist in %s: move one away", name+".gguf", name, short, dir)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// adapterBase returns the base fingerprint and name that root's
// announcements give.
func (n *Node) adapterBase(root cid.Cid) (fp, name string) {
	for _, s := range n.announced(root) {
		if s.Manifest.BaseFingerprint != "" {
			return s.Manifest.BaseFingerprint, s.Manifest.BaseName
		}
	}
	return "", ""
}

// PullWithBase pulls the adapter c like Pull. When its announcement names
// a base this node does not run: without withBase it fails, saying where
// the base is and how to fetch it (`--with-base`, or `orchmind model pull
// fp:<fingerprint>`); with withBase it first pulls the base from the
// peers that hold it (PullBase), then the adapter, kept in the adapter
// folder for a node started with that base. basePath is the pulled
// base's file ("" when none was needed). accept checks an adapter for
// this node's base as in PullAdapter.
func (n *Node) PullWithBase(ctx context.Context, c string, withBase bool, accept api.Accept) (dir, basePath string, err error) {
	root, err := cid.Decode(strings.TrimSpace(c))
	if err != nil {
		return "", "", fmt.Errorf("pull: %q is not a CID: %w", c, err)
	}
	fp, bname := n.adapterBase(root)
	if fp == "" || fp == n.cfg.Base.Fingerprint {
		dir, err := n.PullAdapter(ctx, c, accept)
		return dir, "", err
	}
	if !withBase {
		where := n.BaseWhere(fp)
		switch where {
		case BaseHere:
			return "", "", fmt.Errorf("pull %s: %w: the adapter is for base %s (%s), which this computer holds but this node does not run: start a node with it to use the adapter", root, api.ErrBaseMissing, bname, fp)
		case BaseOnPeers:
			return "", "", fmt.Errorf("pull %s: %w: the adapter is for base %s (%s), which peers have: pull again with --with-base to fetch both, or run `orchmind model pull fp:%s`", root, api.ErrBaseMissing, bname, fp, fp)
		}
		return "", "", fmt.Errorf("pull %s: %w: the adapter is for base %s (%s), which no known peer holds: get that base first", root, api.ErrBaseMissing, bname, fp)
	}
	basePath, err = n.PullBase(ctx, fp)
	if err != nil {
		return "", "", err
	}
	dir, err = n.pull(ctx, c, nil, true)
	return dir, basePath, err
}

// cleanBasePartials removes the temporary files of base pulls that were
// killed (.base-*.partial untouched for an hour: a pull under way writes
// its file continuously, and other nodes may share the models folder).
func cleanBasePartials(dir string, now time.Time, log *slog.Logger) {
	matches, _ := filepath.Glob(filepath.Join(dir, ".base-*.partial"))
	for _, p := range matches {
		if st, err := os.Stat(p); err == nil && now.Sub(st.ModTime()) > time.Hour {
			if err := os.Remove(p); err == nil {
				log.Info("removed the file of an interrupted base pull", "path", p)
			}
		}
	}
}
