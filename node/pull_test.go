package node

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/adapters"
	"orchmind/node/api"
)

// TestPull: the second node pulls what the first published, byte for byte,
// into its adapters folder under the adapter's name; a second pull of the
// same CID reuses that folder; bad CIDs fail with what to do.
func TestPull(t *testing.T) {
	b := tinyBase(t)
	a, c := pair(t, b)
	ctx := t.Context()
	src := adapterDir(t, b, "poems", 1)
	cid, err := a.Publish(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the announcement", func() bool {
		res, _ := c.Search(ctx, api.SearchQuery{Text: "poems"})
		return len(res) == 1
	})
	dir, err := c.Pull(ctx, cid)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != "poems" || filepath.Dir(dir) != c.cfg.AdapterDir {
		t.Fatalf("pulled into %s, want %s/poems", dir, c.cfg.AdapterDir)
	}
	for _, f := range []string{adapters.SafetensorsFile, "adapter_config.json"} {
		want, _ := os.ReadFile(filepath.Join(src, f))
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s differs from the published one (%v)", f, err)
		}
	}
	again, err := c.Pull(ctx, cid)
	if err != nil || again != dir {
		t.Fatalf("second pull: %s, %v (first %s)", again, err, dir)
	}
	if _, err := c.Pull(ctx, "bafy-not-a-cid"); err == nil || !strings.Contains(err.Error(), "not a CID") {
		t.Fatalf("bad CID: %v", err)
	}
}
