package node

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"orchmind/engine/base"
	"orchmind/node/api"
	"orchmind/store"
)

// startAt starts a local-only node in the folder dir (data and adapters)
// that dials boot.
func startAt(t *testing.T, b *base.Base, dir string, boot []string) *Node {
	t.Helper()
	n, err := Start(t.Context(), Config{DataDir: filepath.Join(dir, "data"), AdapterDir: filepath.Join(dir, "adapters"), Base: b,
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot, APIAddr: "127.0.0.1:0", DHTServer: true, LocalOnly: true,
		FindTimeout: 2 * time.Second, Log: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestAnnouncementsSurviveRestart: a node that restarts alone still lists
// what it had seen — a peer's adapter and its own — from the announcements
// it saved, each verified again: one altered on disk is dropped.
func TestAnnouncementsSurviveRestart(t *testing.T) {
	b := tinyBase(t)
	ctx := t.Context()
	a := startPeer(t, b, nil)
	var addrs []string
	for _, m := range a.Swarm().Addrs() {
		addrs = append(addrs, m.String())
	}
	dir := t.TempDir()
	c := startAt(t, b, dir, addrs)
	eventually(t, "the nodes to connect", func() bool { return len(c.Swarm().Peers()) > 0 })
	theirs, err := a.Publish(ctx, adapterDir(t, b, "poems", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	mine, err := c.Publish(ctx, adapterDir(t, b, "recipes", 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the announcement", func() bool {
		res, _ := c.Search(ctx, api.SearchQuery{Text: "poems"})
		return len(res) == 1
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// Alone (its peer is gone), the restarted node lists both at once.
	listed := func(n *Node) map[string]string {
		res, err := n.Search(ctx, api.SearchQuery{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, l := range res {
			out[l.CID] = l.Publisher
		}
		return out
	}
	c = startAt(t, b, dir, nil)
	got := listed(c)
	if len(got) != 2 || got[theirs] != a.Swarm().ID().String() || got[mine] != c.Swarm().ID().String() {
		t.Fatalf("after a restart the node lists %v; want %s by %s and %s by itself", got, theirs, a.Swarm().ID(), mine)
	}
	// Its own stays its own: it is served first and never evicted.
	if kept, _ := c.Swarm().Kept(); len(kept) != 2 {
		t.Fatalf("%d kept", len(kept))
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// An announcement altered on disk does not verify and is dropped.
	st, err := store.Open(filepath.Join(dir, "data", "store"), store.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	saved, err := st.Announcements(ctx)
	if err != nil || len(saved) != 2 {
		t.Fatalf("%d saved, %v", len(saved), err)
	}
	for i := range saved {
		if bytes.Contains(saved[i].Data, []byte("poems")) {
			saved[i].Data = bytes.Replace(saved[i].Data, []byte("poems"), []byte("POEMS"), 1)
		}
	}
	if err := st.SaveAnnouncements(ctx, saved); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	c = startAt(t, b, dir, nil)
	if got := listed(c); len(got) != 1 || got[mine] == "" {
		t.Fatalf("with one saved announcement altered, the node lists %v; want only %s", got, mine)
	}
}
