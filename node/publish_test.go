package node

import (
	"os"
	"strings"
	"testing"

	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/node/api"
)

// TestPublish: a folder publishes to a CID that depends on its content only
// (the same folder twice, the same CID), the node lists its own adapter
// under the base it was trained on, and folders that are no adapter are
// refused with what is wrong.
func TestPublish(t *testing.T) {
	b := tinyBase(t)
	n := startPeer(t, b, nil)
	ctx := t.Context()
	dir := adapterDir(t, b, "poems", 1)
	c1, err := n.Publish(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := n.Publish(ctx, dir, nil)
	if err != nil || c2 != c1 {
		t.Fatalf("publishing the same folder again: %s, %v (first %s)", c2, err, c1)
	}
	res, err := n.Search(ctx, api.SearchQuery{Text: "poems"})
	if err != nil || len(res) != 1 || res[0].CID != c1 || res[0].Publisher != n.Swarm().ID().String() {
		t.Fatalf("own search: %+v, %v", res, err)
	}

	other, err := base.Random(model.Config{Dim: 64, HiddenDim: 128, Layers: 3, Heads: 4, KVHeads: 2, SeqLen: 64}, quant.Q8_0, 2)
	if err != nil {
		t.Fatal(err)
	}
	// A node may share adapters of other bases; the announcement names the
	// adapter's own base, so searches by base tell them apart.
	foreign, err := n.Publish(ctx, adapterDir(t, other, "foreign", 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := n.Search(ctx, api.SearchQuery{Text: "foreign", BaseFingerprint: other.Fingerprint}); len(res) != 1 || res[0].CID != foreign {
		t.Fatalf("search by the foreign adapter's base: %+v", res)
	}
	if res, _ := n.Search(ctx, api.SearchQuery{Text: "foreign", BaseFingerprint: b.Fingerprint}); len(res) != 0 {
		t.Fatalf("the foreign adapter is listed under this node's base: %+v", res)
	}
	empty := t.TempDir()
	if _, err := n.Publish(ctx, empty, nil); err == nil || !strings.Contains(err.Error(), empty) {
		t.Fatalf("an empty folder: %v", err)
	}
	if err := os.WriteFile(empty+"/adapter_config.json", []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Publish(ctx, empty, nil); err == nil {
		t.Fatal("a broken adapter_config.json was published")
	}
}
