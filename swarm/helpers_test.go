package swarm

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
)

// testAnn is a stand-in signed announcement for these tests: JSON body
// signed with the author's libp2p key. The real format lives in protocol/.
type testAnn struct {
	Root    string `json:"root"`
	Base    string `json:"base"`
	Author  string `json:"author"`
	Created int64  `json:"created"`
	Sig     []byte `json:"sig,omitempty"`
}

func signTestAnn(t testing.TB, key crypto.PrivKey, root cid.Cid, base string, created time.Time) []byte {
	t.Helper()
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	a := testAnn{Root: root.String(), Base: base, Author: id.String(), Created: created.UnixMilli()}
	body, _ := json.Marshal(a)
	a.Sig, err = key.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(a)
	return out
}

func testValidator(_ context.Context, _ peer.ID, data []byte) (Announcement, error) {
	var a testAnn
	if err := json.Unmarshal(data, &a); err != nil {
		return Announcement{}, err
	}
	sig := a.Sig
	a.Sig = nil
	body, _ := json.Marshal(a)
	author, err := peer.Decode(a.Author)
	if err != nil {
		return Announcement{}, err
	}
	pub, err := author.ExtractPublicKey()
	if err != nil {
		return Announcement{}, err
	}
	ok, err := pub.Verify(body, sig)
	if err != nil || !ok {
		return Announcement{}, errors.New("bad signature")
	}
	root, err := cid.Decode(a.Root)
	if err != nil {
		return Announcement{}, err
	}
	return Announcement{Root: root, Base: a.Base, Author: author, Created: time.UnixMilli(a.Created)}, nil
}

// hostKey reads a node's key back from its data directory.
func hostKey(t testing.TB, s *Swarm) crypto.PrivKey {
	t.Helper()
	k, err := LoadOrCreateIdentity(s.cfg.DataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func memBlockstore() blockstore.Blockstore {
	return blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
}

func testLogger() *slog.Logger {
	if os.Getenv("SWARM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newTestNode starts a local-only node (no port mapping, mDNS, AutoNAT,
// relays or hole punching) on 127.0.0.1 (TCP), DHT server mode. mod may
// adjust the config.
func newTestNode(t testing.TB, mod func(*Config)) *Swarm {
	t.Helper()
	cfg := Config{
		DataDir:            t.TempDir(),
		ListenAddrs:        []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		DHTMode:            DHTServer,
		LocalOnly:          true,
		Blockstore:         memBlockstore(),
		Validator:          testValidator,
		ScoreInspectPeriod: 100 * time.Millisecond,
		Logger:             testLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func addrInfo(s *Swarm) peer.AddrInfo {
	return peer.AddrInfo{ID: s.ID(), Addrs: s.Host().Addrs()}
}

// line starts n nodes and connects node i to node i+1.
func line(t *testing.T, n int, mod func(*Config)) []*Swarm {
	t.Helper()
	nodes := make([]*Swarm, n)
	for i := range nodes {
		nodes[i] = newTestNode(t, mod)
	}
	for i := 0; i+1 < n; i++ {
		if err := nodes[i].Connect(t.Context(), addrInfo(nodes[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// eventually polls cond every 20 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randomCID(t testing.TB) cid.Cid {
	t.Helper()
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	h, err := mh.Sum(b, mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h)
}
