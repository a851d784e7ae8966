package swarm

import (
	"context"
	"testing"
	"time"
)

func testBaseValidator(data []byte) (BaseInfo, error) {
	a, err := testValidator(context.Background(), "", data)
	if err != nil {
		return BaseInfo{}, err
	}
	return BaseInfo{Root: a.Root, Fingerprint: a.Base, Author: a.Author, Created: a.Created, Data: data}, nil
}

// TestBasesExchange: a base announced by A reaches a node two hops away
// by gossip and a node that connects later by asking; a peer answers for
// itself only, filtered by fingerprint; a node announces only its own.
func TestBasesExchange(t *testing.T) {
	ctx := t.Context()
	nodes := line(t, 3, nil)
	for _, n := range nodes {
		if err := n.EnableBases(testBaseValidator); err != nil {
			t.Fatal(err)
		}
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	if err := a.EnableBases(testBaseValidator); err == nil {
		t.Fatal("EnableBases twice accepted")
	}
	root := randomCID(t)
	signed := signTestAnn(t, hostKey(t, a), root, "fp-tiny", time.Now())
	if err := b.AnnounceBase(ctx, signed); err == nil {
		t.Fatal("B announced a base signed by A")
	}
	// Let the meshes form before publishing.
	eventually(t, 5*time.Second, "the bases mesh", func() bool { return len(b.MeshPeers(BasesTopic)) >= 2 })
	if err := a.AnnounceBase(ctx, signed); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "C to learn A's base by gossip", func() bool {
		k := c.KnownBases("fp-tiny")
		return len(k) == 1 && k[0].Author == a.ID() && k[0].Root.Equals(root)
	})
	if got, err := b.RequestBases(ctx, a.ID(), "fp-tiny"); err != nil || len(got) != 1 {
		t.Fatalf("asking A for fp-tiny: %d, %v", len(got), err)
	}
	if got, err := b.RequestBases(ctx, a.ID(), "fp-other"); err != nil || len(got) != 0 {
		t.Fatalf("asking A for another base: %d, %v", len(got), err)
	}
	// A node that connects later asks on identify.
	d := newTestNode(t, nil)
	if err := d.EnableBases(testBaseValidator); err != nil {
		t.Fatal(err)
	}
	if err := d.Connect(ctx, addrInfo(a)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "D to learn A's base by asking", func() bool { return len(d.KnownBases("")) == 1 })
	// Withdrawn: A answers no more.
	a.WithdrawBase(root)
	if got, err := d.RequestBases(ctx, a.ID(), ""); err != nil || len(got) != 0 {
		t.Fatalf("after WithdrawBase: %d, %v", len(got), err)
	}
}
