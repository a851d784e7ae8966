package node

import (
	"testing"

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
