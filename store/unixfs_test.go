package store

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// genBytes returns n deterministic pseudo-random bytes (64-bit LCG, top byte).
func genBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := seed
	for i := range b {
		x = x*6364136223846793005 + 1442695040888963407
		b[i] = byte(x >> 56)
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixedFolder writes the folder whose root CID is pinned below.
func fixedFolder(t testing.TB) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "adapter_config.json"), []byte(`{"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]}`+"\n"))
	writeFile(t, filepath.Join(dir, "adapter_model.safetensors"), genBytes(2*ChunkSize+12345, 1))
	writeFile(t, filepath.Join(dir, "orchmind.json"), genBytes(5000, 2))
	return dir
}

// fixedRoot is the root CID of fixedFolder, computed once with this code and
// matching kubo's `ipfs add -r --cid-version=1 --raw-leaves
// --chunker=size-1048576` (see TestKuboCrossCheck). If this test fails, the
// chunking or DAG layout changed and every published adapter would get a new
// CID: do not update it lightly.
const fixedRoot = "bafybeiczfjiwtqzilxp2wdreptx4vwf2fq2mm7gx7rllkx3tegqh632gba"

func TestFixedFolderCID(t *testing.T) {
	ctx := context.Background()
	dir := fixedFolder(t)
	got, err := HashFolder(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != fixedRoot {
		t.Fatalf("root CID of the fixed folder is %s, want %s: the UnixFS import parameters changed", got, fixedRoot)
	}
	// Modes and times do not matter.
	if err := os.Chmod(filepath.Join(dir, "orchmind.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if again, _ := HashFolder(ctx, dir); again.String() != fixedRoot {
		t.Fatal("file mode changed the root CID")
	}
	s := openTest(t, t.TempDir(), Options{})
	root, err := s.ImportFolder(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if root.String() != fixedRoot {
		t.Fatalf("ImportFolder gave %s, HashFolder %s", root, fixedRoot)
	}
	// Structure: dag-pb directory, raw leaves, the big file split in 3 chunks.
	var raw, pb, total int
	if err := s.Walk(ctx, root, func(c cid.Cid, size int) error {
		if c.Version() != 1 {
			t.Errorf("CID %s is not v1", c)
		}
		switch c.Type() {
		case cid.Raw:
			raw++
			if size > ChunkSize {
				t.Errorf("leaf of %d bytes", size)
			}
		case cid.DagProtobuf:
			pb++
		}
		total += size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if raw != 5 || pb != 2 {
		t.Fatalf("%d raw and %d dag-pb blocks, want 5 and 2 (3 chunks + 2 small files; file node + directory)", raw, pb)
	}
}

func TestExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	src := fixedFolder(t)
	writeFile(t, filepath.Join(src, "sub", "empty.txt"), nil)
	writeFile(t, filepath.Join(src, "sub", "deeper", "note.md"), []byte("# note\n"))
	root, err := s.ImportFolder(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "exported")
	if err := s.ExportFolder(ctx, root, out); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"adapter_config.json", "adapter_model.safetensors", "orchmind.json", "sub/empty.txt", "sub/deeper/note.md"} {
		want, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, rel))
		if err != nil {
			t.Fatalf("exported %s: %v", rel, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("exported %s differs", rel)
		}
	}
	// Exporting onto a non-empty folder is refused and leaves it alone.
	if err := s.ExportFolder(ctx, root, out); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("export onto a full folder = %v", err)
	}
	// No temporary folders left behind.
	ents, _ := os.ReadDir(filepath.Dir(out))
	if len(ents) != 1 {
		t.Fatalf("export left %d entries beside the result", len(ents))
	}
	// Symlinks are refused on import.
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportFolder(ctx, src); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("import with a symlink = %v", err)
	}
}

// TestExportRefusesTraversal builds directories whose entry names try to
// escape the export folder and checks that nothing is written anywhere.
func TestExportRefusesTraversal(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	leaf := rawBlock(t, []byte("owned"))
	if err := s.Put(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../evil", "..", "a/b", `a\b`, "", "."} {
		dirNode := ft.EmptyDirNode()
		if err := dirNode.SetCidBuilder(cidBuilder); err != nil {
			t.Fatal(err)
		}
		// Add the link by hand (the directory builder would refuse it).
		if err := dirNode.AddRawLink(name, &ipld.Link{Cid: leaf.Cid(), Size: 5}); err != nil {
			t.Fatal(err)
		}
		if err := s.DAGService().Add(ctx, dirNode); err != nil {
			t.Fatal(err)
		}
		base := t.TempDir()
		out := filepath.Join(base, "x", "out")
		err := s.ExportFolder(ctx, dirNode.Cid(), out)
		if err == nil || !strings.Contains(err.Error(), "refusing") {
			t.Fatalf("name %q: ExportFolder = %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(base, "x", "evil")); err == nil {
			t.Fatalf("name %q escaped the folder", name)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("name %q: the output folder exists after a refused export", name)
		}
	}
}

// TestKuboCrossCheck compares the fixed folder's CID with kubo's when an
// `ipfs` binary is given in ORCHMIND_IPFS (it is not needed otherwise).
func TestKuboCrossCheck(t *testing.T) {
	bin := os.Getenv("ORCHMIND_IPFS")
	if bin == "" {
		t.Skip("set ORCHMIND_IPFS=/path/to/ipfs (kubo) to cross-check the root CID")
	}
	dir := fixedFolder(t)
	env := append(os.Environ(), "IPFS_PATH="+t.TempDir())
	initCmd := exec.Command(bin, "init", "--empty-repo")
	initCmd.Env = env
	if out, err := initCmd.CombinedOutput(); err != nil {
		t.Fatalf("ipfs init: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "add", "-r", "-Q", "--only-hash", "--cid-version=1", "--raw-leaves", "--chunker=size-1048576", dir)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ipfs add: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != fixedRoot {
		t.Fatalf("kubo gives %s, orchmind %s", got, fixedRoot)
	}
	// Nested folders and an empty file.
	writeFile(t, filepath.Join(dir, "sub", "empty.txt"), nil)
	writeFile(t, filepath.Join(dir, "sub", "deeper", "note.md"), []byte("# note\n"))
	cmd = exec.Command(bin, "add", "-r", "-Q", "--only-hash", "--cid-version=1", "--raw-leaves", "--chunker=size-1048576", dir)
	cmd.Env = env
	if out, err = cmd.CombinedOutput(); err != nil {
		t.Fatalf("ipfs add: %v\n%s", err, out)
	}
	ours, err := HashFolder(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != ours.String() {
		t.Fatalf("nested folder: kubo gives %s, orchmind %s", got, ours)
	}
}
