package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"orchmind/adapters"
	"orchmind/node/api"
)

// TestSearch: a peer's announcements reach the other node, whose search
// filters them by text and base and honours the limit; Peers lists the
// connection.
func TestSearch(t *testing.T) {
	b := tinyBase(t)
	a, c := pair(t, b)
	ctx := t.Context()
	poems, err := a.Publish(ctx, adapterDir(t, b, "poems", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	recipes, err := a.Publish(ctx, adapterDir(t, b, "recipes", 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "both announcements", func() bool {
		res, _ := c.Search(ctx, api.SearchQuery{})
		return len(res) == 2
	})
	res, err := c.Search(ctx, api.SearchQuery{Text: "poems"})
	if err != nil || len(res) != 1 || res[0].CID != poems || res[0].Publisher != a.Swarm().ID().String() || res[0].BaseFingerprint != b.Fingerprint {
		t.Fatalf("search poems: %+v, %v", res, err)
	}
	if res, _ := c.Search(ctx, api.SearchQuery{Text: "RECIPES"}); len(res) != 1 || res[0].CID != recipes {
		t.Fatalf("search is not case-blind: %+v", res)
	}
	if res, _ := c.Search(ctx, api.SearchQuery{BaseFingerprint: "sha256:none"}); len(res) != 0 {
		t.Fatalf("another base's search found %+v", res)
	}
	if res, _ := c.Search(ctx, api.SearchQuery{Limit: 1}); len(res) != 1 {
		t.Fatalf("limit 1 gave %d", len(res))
	}
	peers, err := c.Peers(ctx)
	if err != nil || len(peers) != 1 || peers[0].ID != a.Swarm().ID().String() || len(peers[0].Addrs) == 0 {
		t.Fatalf("peers: %+v, %v", peers, err)
	}
}

// TestListingIsTheManifest: the announced fields of a folder's orchmind.json
// reach another node's search listing unchanged — one type (adapters.
// Announced, protocol.Manifest) from the folder through the signed
// announcement to the API's JSON, under orchmind.json's own keys.
func TestListingIsTheManifest(t *testing.T) {
	b := tinyBase(t)
	a, c := pair(t, b)
	ctx := t.Context()
	dir := adapterDir(t, b, "lyrics", 3)
	man, err := adapters.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	man.Language, man.License, man.Tags, man.TrainLossAfter = "pt-BR", "CC-BY-4.0", []string{"music", "pt"}, 0.25
	raw, _ := json.Marshal(man)
	if err := os.WriteFile(filepath.Join(dir, adapters.ManifestFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cid, err := a.Publish(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []api.Listing
	eventually(t, "the announcement", func() bool {
		got, _ = c.Search(ctx, api.SearchQuery{Text: "lyrics"})
		return len(got) == 1
	})
	want := man.Announce()
	if got[0].CID != cid || !reflect.DeepEqual(got[0].Announced, want) {
		t.Fatalf("listed %+v, want %+v", got[0].Announced, want)
	}
	// The API's JSON has orchmind.json's keys with orchmind.json's values.
	var listing, file map[string]any
	lb, _ := json.Marshal(got[0])
	_ = json.Unmarshal(lb, &listing)
	_ = json.Unmarshal(raw, &file)
	for _, k := range []string{"name", "description", "tags", "language", "base_name", "base_fingerprint", "rank", "alpha", "target_modules", "license"} {
		if !reflect.DeepEqual(listing[k], file[k]) {
			t.Errorf("listing %s = %v, orchmind.json has %v", k, listing[k], file[k])
		}
	}
}
