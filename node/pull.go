package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"orchmind/adapters"
	"orchmind/node/api"
	"orchmind/store"
	"orchmind/swarm"
)

// Pull is PullAdapter with the node's own base check: it returns the
// folder the adapter was written to.
func (n *Node) Pull(ctx context.Context, c string) (string, error) {
	return n.PullAdapter(ctx, c, nil)
}

// PullAdapter fetches the adapter with root c from the swarm — from its
// announcement's author, reached by peer ID, or else from providers found
// in the DHT (see swarm.Fetch) — with every block hash-checked on arrival,
// writes it out (linking the files the fetch stored in file packs of their
// own, see store.ExportFolder), reads the folder once — checks that it is
// a usable adapter (adapters.CheckFolder: every check of ReadFolder,
// without reading the tensors back) for this node's base, or, when accept
// is given, reads it in full and lets accept check it instead —, pins it,
// moves it into the adapter folder under its manifest name, and provides
// it in the DHT (after a pause of up to 3 s) so that others can fetch it
// from here too.
func (n *Node) PullAdapter(ctx context.Context, c string, accept api.Accept) (string, error) {
	return n.pull(ctx, c, accept, false)
}

// pull is PullAdapter; otherBase keeps an adapter made for another base
// than this node's (PullWithBase, which has fetched that base).
func (n *Node) pull(ctx context.Context, c string, accept api.Accept, otherBase bool) (string, error) {
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
	// Fetch, then write the folder out: the fetch stores each large file
	// in a file pack of its own, which the export links into the folder
	// instead of writing the bytes a second time (see store's
	// filepack.go); files it cannot link it copies from the store, whose
	// blocks were checked against their CIDs as they arrived.
	if err := n.sw.Fetch(ctx, root, nil, swarm.WithProviders(provs...), swarm.WithMaxBytes(limit), swarm.WithServeWhileFetching()); err != nil {
		if errors.Is(err, store.ErrStoreFull) || errors.Is(err, store.ErrDiskFull) || errors.Is(err, swarm.ErrTooLarge) {
			return "", fmt.Errorf("pull %s: %w", root, err)
		}
		return "", fmt.Errorf("pull %s: %w (no provider answered? check `orchmind peers`)", root, err)
	}
	mark(&tFetch)
	if err := n.store.ExportFolder(ctx, root, got, store.WithMaxBytes(limit)); err != nil {
		return "", fmt.Errorf("pull %s: %w", root, err)
	}
	mark(&tExport)
	man, err := n.readPulled(root, got, accept, otherBase)
	if err != nil {
		return "", err
	}
	name := "adapter-" + root.String()[len(root.String())-8:]
	if man != nil && adapters.ValidName(man.Name) {
		name = man.Name
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
	// Serve it onward: other nodes find this one in the DHT from a moment
	// on (and those pulling at the same time, through the author already).
	n.provideAfterPull(root)
	n.log.Info("pulled", "root", root.String(), "dir", dst, "find", tFind, "fetch", tFetch, "export", tExport, "read", tRead, "pin", tPin)
	return dst, nil
}

// readPulled reads the fetched folder dir once and checks it: without
// accept, every check of ReadFolder without reading the 10 MB of tensors
// back (only the manifest is used) and that it is for this node's base;
// with accept, in full, and accept's check instead. otherBase skips the
// base check (an adapter kept for a node started on its own base).
func (n *Node) readPulled(root cid.Cid, dir string, accept api.Accept, otherBase bool) (*adapters.Manifest, error) {
	if accept != nil {
		a, man, err := adapters.ReadFolder(dir, adapters.SafetensorsCodec{})
		if err != nil {
			return nil, fmt.Errorf("pull %s: the fetched folder is not a usable adapter: %w", root, err)
		}
		if err := accept(a, man); err != nil {
			return nil, fmt.Errorf("pull %s: %w", root, err)
		}
		return man, nil
	}
	man, err := adapters.CheckFolder(dir, adapters.SafetensorsCodec{})
	if err != nil {
		return nil, fmt.Errorf("pull %s: the fetched folder is not a usable adapter: %w", root, err)
	}
	b := n.cfg.Base
	if !otherBase && man != nil && man.BaseFingerprint != "" && man.BaseFingerprint != b.Fingerprint && man.BaseShapeFingerprint != b.ShapeID {
		return nil, fmt.Errorf("pull %s: adapter %q is for base %s (%s) but this node runs %s (%s): start a node with that base to use it",
			root, man.Name, man.BaseName, man.BaseFingerprint, b.Name, b.Fingerprint)
	}
	return man, nil
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
			n.sw.LearnAddrs(ai, 10*time.Minute)
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
		if n.sw.Connected(s.Author) {
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
