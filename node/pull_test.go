package node

import (
	"bytes"
	"errors"
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

// TestPullAdapterAccept: with accept, the pull reads the fetched folder once,
// in full, and accept's check replaces the node's base check; a refusal
// keeps nothing (no folder, no pin).
func TestPullAdapterAccept(t *testing.T) {
	b := tinyBase(t)
	a, c := pair(t, b)
	ctx := t.Context()
	cid, err := a.Publish(ctx, adapterDir(t, b, "poems", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the announcement", func() bool {
		res, _ := c.Search(ctx, api.SearchQuery{Text: "poems"})
		return len(res) == 1
	})
	_, err = c.PullAdapter(ctx, cid, func(*adapters.Adapter, *adapters.Manifest) error { return errors.New("not this one") })
	if err == nil || !strings.Contains(err.Error(), "not this one") {
		t.Fatalf("refused pull: %v", err)
	}
	if ents, _ := os.ReadDir(c.cfg.AdapterDir); len(ents) != 0 {
		t.Fatalf("a refused pull left %d folders in the adapters folder", len(ents))
	}
	if pins, _ := c.Store().Pins(ctx); len(pins) != 0 {
		t.Fatalf("a refused pull pinned %v", pins)
	}
	calls, params := 0, 0
	dir, err := c.PullAdapter(ctx, cid, func(ad *adapters.Adapter, man *adapters.Manifest) error {
		calls++
		for _, p := range ad.Pairs {
			params += len(p.A) + len(p.B)
		}
		if man == nil || man.Name != "poems" {
			return errors.New("no manifest")
		}
		return nil
	})
	if err != nil || calls != 1 || params == 0 || filepath.Base(dir) != "poems" {
		t.Fatalf("pull: %s, %v; accept called %d times with %d parameters", dir, err, calls, params)
	}
}
