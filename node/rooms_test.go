package node

import (
	"testing"
	"time"

	"orchmind/node/api"
	"orchmind/protocol/room"
)

// TestRooms: an adapter published into a room reaches the member, not the
// connected outsider; a malformed code is refused.
func TestRooms(t *testing.T) {
	b := tinyBase(t)
	a, member := pair(t, b)
	var addrs []string
	for _, m := range a.Swarm().Addrs() {
		addrs = append(addrs, m.String())
	}
	outsider := startPeer(t, b, addrs)
	eventually(t, "the outsider to connect", func() bool { return len(outsider.Swarm().Peers()) > 0 })
	ctx := t.Context()
	code, err := room.NewCode()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{a, member} {
		if err := n.JoinRoom(ctx, code); err != nil {
			t.Fatal(err)
		}
	}
	if err := outsider.JoinRoom(ctx, "not a room code"); err == nil {
		t.Fatal("a malformed room code was accepted")
	}
	cid, err := a.PublishRoom(ctx, adapterDir(t, b, "secret", 3), nil, code)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the member to see the room's adapter", func() bool {
		res, _ := member.Search(ctx, api.SearchQuery{Text: "secret"})
		return len(res) == 1 && res[0].CID == cid
	})
	time.Sleep(500 * time.Millisecond) // time enough for the outsider to have seen it too, if it could
	if res, _ := outsider.Search(ctx, api.SearchQuery{Text: "secret"}); len(res) != 0 {
		t.Fatalf("the outsider sees the room's adapter: %+v", res)
	}
	if _, err := outsider.PublishRoom(ctx, adapterDir(t, b, "x", 4), nil, "not a room code"); err == nil {
		t.Fatal("publishing with a malformed room code worked")
	}
}
