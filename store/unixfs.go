package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/dustin/go-humanize"
	"github.com/ipfs/boxo/blockservice"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"orchmind/internal/atomicfile"
)

// UnixFS import parameters (see doc.go). Changing any of them changes every
// adapter's root CID.
const (
	// ChunkSize is the fixed chunk size of file data: 1 MiB.
	ChunkSize = 1 << 20
	// MaxLinks is the widest a file's balanced DAG node gets (kubo's default,
	// helpers.DefaultLinksPerBlock historically).
	MaxLinks = 174
	// MaxFolderEntries bounds the files and folders of one import or export.
	MaxFolderEntries = 10000
	// MaxFolderDepth bounds folder nesting of one import or export.
	MaxFolderDepth = 16
)

// cidBuilder makes CIDv1 sha2-256 CIDs (dag-pb for UnixFS nodes; raw leaves
// get the raw codec from the importer).
var cidBuilder = cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.SHA2_256}

// ImportFolder imports the files under dir as a UnixFS directory (see doc.go
// for the exact parameters), pins it and returns its root CID. Symbolic links
// and special files are refused. The result depends only on the names and
// contents of the files, not on their modes or times.
func (s *Store) ImportFolder(ctx context.Context, dir string) (cid.Cid, error) {
	unlock := s.PinLock(ctx)
	defer unlock.Unlock(ctx)
	n := 0
	nd, err := importDir(ctx, s.importDAG, dir, 0, &n)
	if err != nil {
		return cid.Undef, fmt.Errorf("store: importing %s: %w", dir, err)
	}
	root := nd.Cid()
	if err := s.pinLocked(ctx, root); err != nil {
		return cid.Undef, err
	}
	s.log.Info("imported folder", "dir", dir, "root", root, "entries", n)
	return root, nil
}

// HashFolder computes the root CID ImportFolder would give dir without
// storing anything.
func HashFolder(ctx context.Context, dir string) (cid.Cid, error) {
	n := 0
	nd, err := importDir(ctx, discardDAG{}, dir, 0, &n)
	if err != nil {
		return cid.Undef, fmt.Errorf("store: hashing %s: %w", dir, err)
	}
	return nd.Cid(), nil
}

func importDir(ctx context.Context, dag ipld.DAGService, dir string, depth int, count *int) (ipld.Node, error) {
	if depth > MaxFolderDepth {
		return nil, fmt.Errorf("%s: folders nested deeper than %d", dir, MaxFolderDepth)
	}
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	d, err := uio.NewDirectory(dag, uio.WithCidBuilder(cidBuilder))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		*count++
		if *count > MaxFolderEntries {
			return nil, fmt.Errorf("more than %d files and folders", MaxFolderEntries)
		}
		name := e.Name()
		if err := checkName(name); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, name)
		var child ipld.Node
		switch {
		case e.Type().IsRegular():
			child, err = importFile(dag, p)
		case e.IsDir():
			child, err = importDir(ctx, dag, p, depth+1, count)
		default:
			return nil, fmt.Errorf("%s is a %s, not a regular file or folder; adapter folders may hold only files and folders", p, e.Type())
		}
		if err != nil {
			return nil, err
		}
		if err := d.AddChild(ctx, name, child); err != nil {
			return nil, fmt.Errorf("adding %s: %w", p, err)
		}
	}
	nd, err := d.GetNode()
	if err != nil {
		return nil, err
	}
	if err := dag.Add(ctx, nd); err != nil {
		return nil, err
	}
	return nd, nil
}

func importFile(dag ipld.DAGService, path string) (ipld.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	params := helpers.DagBuilderParams{
		Dagserv:    dag,
		Maxlinks:   MaxLinks,
		RawLeaves:  true,
		CidBuilder: cidBuilder,
	}
	db, err := params.New(chunker.NewSizeSplitter(f, ChunkSize))
	if err != nil {
		return nil, err
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		return nil, fmt.Errorf("importing %s: %w", path, err)
	}
	return nd, nil
}

// checkName refuses names that could escape the folder or are not portable.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("refusing the entry name %q", name)
	case strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("refusing the entry name %q: it contains a path separator or NUL", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("refusing the entry name %q: not valid UTF-8", name)
	case len(name) > 255:
		return fmt.Errorf("refusing an entry name of %d bytes (limit 255)", len(name))
	}
	return nil
}

// ExportFolder writes the UnixFS directory root into dir, which must not
// exist yet (or be an empty folder). Every block is read with Get, so the
// files are made of bytes checked against their CIDs, and each file's
// length is checked against the size its UnixFS node records. Before a
// byte is written the folders and file nodes are read and checked (entry
// names, counts, depth, and the total their UnixFS nodes declare against
// WithMaxBytes and the free disk space); while writing, every byte is
// counted — a block linked a thousand times counts a thousand times — and
// the export stops at the first byte past a file's declared size or past
// the WithMaxBytes cap. The files are written into a temporary folder
// beside dir, synced, and only then renamed to dir, so dir either appears
// complete and verified or not at all. Entry names with path separators,
// "." or ".." are refused.
func (s *Store) ExportFolder(ctx context.Context, root cid.Cid, dir string, opts ...ExportOption) error {
	return s.exportFolder(ctx, s.dag, root, dir, opts)
}

// ExportFolderFrom is ExportFolder taking the blocks that have gives
// (blocks the caller holds and has checked against their CIDs, such as
// those a fetch just received) from there instead of reading them back
// from the store; the others are read with Get as ExportFolder does.
func (s *Store) ExportFolderFrom(ctx context.Context, root cid.Cid, dir string, have func(cid.Cid) (blocks.Block, bool), opts ...ExportOption) error {
	src := held{s, have}
	return s.exportFolder(ctx, merkledag.NewDAGService(blockservice.New(src, offline.Exchange(src))), root, dir, opts)
}

// ErrExportTooLarge is wrapped by export errors when a DAG declares, or
// would write, more bytes than the export may (WithMaxBytes).
var ErrExportTooLarge = errors.New("export too large")

// ExportOption adjusts ExportFolder and ExportFolderFrom.
type ExportOption func(*exportOptions)

type exportOptions struct {
	maxBytes int64
}

// WithMaxBytes caps the bytes of file data an export may write, counted
// per reference: a DAG that links one block many times (a "dedup bomb",
// small to fetch and huge to write out) is refused before anything is
// written if its file nodes declare more, and stopped at the first byte
// past n if they lie. n ≤ 0 means no cap.
func WithMaxBytes(n int64) ExportOption {
	return func(o *exportOptions) { o.maxBytes = n }
}

// held is the store as a blockstore whose Get first asks have.
type held struct {
	*Store
	have func(cid.Cid) (blocks.Block, bool)
}

func (h held) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	if b, ok := h.have(c); ok {
		return b, nil
	}
	return h.Store.Get(ctx, c)
}

func (s *Store) exportFolder(ctx context.Context, dag ipld.DAGService, root cid.Cid, dir string, opts []ExportOption) error {
	var o exportOptions
	for _, f := range opts {
		f(&o)
	}
	if fi, err := os.Lstat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("store: cannot export %s to %s: a file is in the way", root, dir)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("store: cannot export to %s: %w", dir, err)
		}
		if len(ents) > 0 {
			return fmt.Errorf("store: cannot export %s to %s: the folder exists and is not empty; choose a new folder", root, dir)
		}
		if err := os.Remove(dir); err != nil {
			return fmt.Errorf("store: cannot export to %s: %w", dir, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: cannot export to %s: %w", dir, err)
	}
	nd, err := dag.Get(ctx, root)
	if err != nil {
		return fmt.Errorf("store: exporting %s: reading the root: %w", root, err)
	}
	// Check the whole folder structure before writing anything.
	plan := exportPlan{max: o.maxBytes}
	if err := plan.dir(ctx, dag, nd, 0); err != nil {
		return fmt.Errorf("store: exporting %s: %w", root, err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("store: creating %s: %w", parent, err)
	}
	if free, err := diskFree(parent); err == nil && free < uint64(plan.bytes)+DiskMargin {
		return fmt.Errorf("store: exporting %s: %w: its files come to %s (plus %s working space) but %s is free in %s; free some space",
			root, ErrDiskFull, humanize.IBytes(uint64(plan.bytes)), humanize.IBytes(DiskMargin), humanize.IBytes(free), parent)
	}
	tmp, err := os.MkdirTemp(parent, ".orchmind-export-*")
	if err != nil {
		return fmt.Errorf("store: creating a temporary folder in %s: %w", parent, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	n := 0
	b := &exportBudget{max: o.maxBytes}
	if err := s.exportDir(ctx, dag, nd, tmp, 0, &n, b); err != nil {
		return fmt.Errorf("store: exporting %s: %w", root, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("store: moving the export into %s: %w", dir, err)
	}
	ok = true
	if err := atomicfile.SyncDir(parent); err != nil {
		return fmt.Errorf("store: syncing %s: %w", parent, err)
	}
	return nil
}

// exportPlan is the check of a DAG's folders and file nodes that runs
// before an export writes anything: names, entry count, depth, and the
// sum of the file sizes the UnixFS nodes declare (every reference
// counted), against max.
type exportPlan struct {
	max     int64
	entries int
	bytes   int64
}

func (p *exportPlan) dir(ctx context.Context, dag ipld.DAGService, nd ipld.Node, depth int) error {
	if depth > MaxFolderDepth {
		return fmt.Errorf("folders nested deeper than %d", MaxFolderDepth)
	}
	d, err := uio.NewDirectoryFromNode(dag, nd)
	if err != nil {
		return fmt.Errorf("%s is not a UnixFS folder: %w", nd.Cid(), err)
	}
	names := map[string]bool{}
	return d.ForEachLink(ctx, func(l *ipld.Link) error {
		p.entries++
		if p.entries > MaxFolderEntries {
			return fmt.Errorf("more than %d files and folders", MaxFolderEntries)
		}
		if err := checkName(l.Name); err != nil {
			return err
		}
		if names[l.Name] {
			return fmt.Errorf("refusing a folder that names %q twice", l.Name)
		}
		names[l.Name] = true
		child, err := l.GetNode(ctx, dag)
		if err != nil {
			return fmt.Errorf("%s: %w", l.Name, err)
		}
		if isDir(child) {
			return p.dir(ctx, dag, child, depth+1)
		}
		size, err := fileSize(child)
		if err != nil {
			return fmt.Errorf("%s: %w", l.Name, err)
		}
		if size > uint64(math.MaxInt64-p.bytes) {
			return fmt.Errorf("%w: %s declares %d bytes", ErrExportTooLarge, l.Name, size)
		}
		p.bytes += int64(size)
		if p.max > 0 && p.bytes > p.max {
			return fmt.Errorf("%w: its files declare more than the %s allowed (%s at %s); refusing to write it out",
				ErrExportTooLarge, humanize.IBytes(uint64(p.max)), humanize.IBytes(size), l.Name)
		}
		return nil
	})
}

// fileSize is the size a file node declares (the length of a raw leaf).
func fileSize(nd ipld.Node) (uint64, error) {
	switch nd := nd.(type) {
	case *merkledag.RawNode:
		return uint64(len(nd.RawData())), nil
	case *merkledag.ProtoNode:
		fsn, err := ft.FSNodeFromBytes(nd.Data())
		if err != nil {
			return 0, fmt.Errorf("not a UnixFS node: %w", err)
		}
		switch fsn.Type() {
		case ft.TFile, ft.TRaw:
			return fsn.FileSize(), nil
		}
		return 0, fmt.Errorf("UnixFS node of type %s is neither a file nor a folder", fsn.Type())
	}
	return 0, fmt.Errorf("unsupported node type %T", nd)
}

// exportBudget counts the bytes an export has written, against max.
type exportBudget struct {
	max     int64
	written int64
}

func (s *Store) exportDir(ctx context.Context, dag ipld.DAGService, nd ipld.Node, dir string, depth int, count *int, b *exportBudget) error {
	if depth > MaxFolderDepth {
		return fmt.Errorf("folders nested deeper than %d", MaxFolderDepth)
	}
	d, err := uio.NewDirectoryFromNode(dag, nd)
	if err != nil {
		return fmt.Errorf("%s is not a UnixFS folder: %w", nd.Cid(), err)
	}
	err = d.ForEachLink(ctx, func(l *ipld.Link) error {
		*count++
		if *count > MaxFolderEntries {
			return fmt.Errorf("more than %d files and folders", MaxFolderEntries)
		}
		if err := checkName(l.Name); err != nil {
			return err
		}
		child, err := l.GetNode(ctx, dag)
		if err != nil {
			return fmt.Errorf("%s: %w", l.Name, err)
		}
		p := filepath.Join(dir, l.Name)
		if isDir(child) {
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			return s.exportDir(ctx, dag, child, p, depth+1, count, b)
		}
		return s.exportFile(ctx, dag, child, p, b)
	})
	if err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}

func isDir(nd ipld.Node) bool {
	pn, ok := nd.(*merkledag.ProtoNode)
	if !ok {
		return false
	}
	fsn, err := ft.FSNodeFromBytes(pn.Data())
	if err != nil {
		return false
	}
	return fsn.IsDir()
}

func (s *Store) exportFile(ctx context.Context, dag ipld.DAGService, nd ipld.Node, path string, b *exportBudget) error {
	// A file stored in a file pack of its own is linked, not written
	// (filepack.go), within the same limits.
	// b is nil for a single file exported without a limit (ExportFile).
	if size, err := fileSize(nd); err == nil && (b == nil || b.max <= 0 || b.written+int64(size) <= b.max) {
		linked, err := s.linkFile(nd, path)
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		if linked {
			if b != nil {
				b.written += int64(size)
			}
			return nil
		}
	}
	r, err := uio.NewDagReader(ctx, nd, dag)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(&writebackWriter{f: f, size: int64(r.Size()), budget: b, name: filepath.Base(path)}, r)
	if err == nil && uint64(n) != r.Size() {
		err = fmt.Errorf("%s: wrote %d bytes of %d", filepath.Base(path), n, r.Size())
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writebackWriter writes to f and starts the writeback of each write at
// once (see startWriteback), so that when an export runs beside a fetch
// most of a file is on disk by the time its fsync comes.
// It refuses a write past the file's declared size or past the export's
// budget.
type writebackWriter struct {
	f      *os.File
	off    int64
	size   int64 // the size the file's UnixFS node declares
	budget *exportBudget
	name   string
}

func (w *writebackWriter) Write(p []byte) (int, error) {
	if w.off+int64(len(p)) > w.size {
		return 0, fmt.Errorf("%s: its blocks hold more than the %d bytes its UnixFS node declares", w.name, w.size)
	}
	if b := w.budget; b != nil {
		if b.max > 0 && b.written+int64(len(p)) > b.max {
			return 0, fmt.Errorf("%w: writing %s would pass the %s allowed; refusing to write more", ErrExportTooLarge, w.name, humanize.IBytes(uint64(b.max)))
		}
		b.written += int64(len(p))
	}
	n, err := w.f.Write(p)
	if n > 0 {
		startWriteback(w.f, w.off, int64(n))
		w.off += int64(n)
	}
	return n, err
}

// discardDAG is a DAG service that keeps nothing: used to compute CIDs.
type discardDAG struct{}

func (discardDAG) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	return nil, ipld.ErrNotFound{Cid: c}
}

func (d discardDAG) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	ch := make(chan *ipld.NodeOption, len(cs))
	for _, c := range cs {
		ch <- &ipld.NodeOption{Err: ipld.ErrNotFound{Cid: c}}
	}
	close(ch)
	return ch
}

func (discardDAG) Add(context.Context, ipld.Node) error        { return nil }
func (discardDAG) AddMany(context.Context, []ipld.Node) error  { return nil }
func (discardDAG) Remove(context.Context, cid.Cid) error       { return nil }
func (discardDAG) RemoveMany(context.Context, []cid.Cid) error { return nil }
