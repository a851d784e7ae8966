package integration

import (
	"testing"
	"time"

	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/node/api"
	"orchmind/protocol/room"
)

// TestPrivateRoom: two nodes in a room see the adapter announced into it;
// a third node, connected to both but in another room, sees nothing it can
// read, not even the adapter's name.
func TestPrivateRoom(t *testing.T) {
	b, err := base.Random(model.Config{Dim: 64, HiddenDim: 128, Layers: 2, Heads: 4, KVHeads: 2, SeqLen: 64}, quant.Q8_0, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	a := startNode(t, b, nil)
	m := startNode(t, b, addr(a))
	o := startNode(t, b, addr(a))
	waitFor(t, "connections", func() bool { return len(m.Swarm().Peers()) > 0 && len(o.Swarm().Peers()) > 0 })
	code, _ := room.NewCode()
	other, _ := room.NewCode()
	for _, n := range []struct {
		code string
		join func() error
	}{{code, func() error { return a.JoinRoom(ctx, code) }}, {code, func() error { return m.JoinRoom(ctx, code) }}, {other, func() error { return o.JoinRoom(ctx, other) }}} {
		if err := n.join(); err != nil {
			t.Fatal(err)
		}
	}
	c, err := a.PublishRoom(ctx, adapterFolder(t, b, 4), nil, code)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the room member to see the adapter", func() bool {
		res, _ := m.Search(ctx, api.SearchQuery{Text: "specialist"})
		return len(res) == 1 && res[0].CID == c
	})
	if _, err := m.Pull(ctx, c); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if res, _ := o.Search(ctx, api.SearchQuery{}); len(res) != 0 {
		t.Fatalf("a node outside the room sees %+v", res)
	}
	if err := o.JoinRoom(ctx, "not a code"); err == nil {
		t.Fatal("a malformed room code was accepted")
	}
}
