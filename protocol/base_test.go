package protocol

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	mh "github.com/multiformats/go-multihash"
)

func TestBaseAnnouncementRoundTripAndDomains(t *testing.T) {
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := mh.Sum([]byte("base"), mh.SHA2_256, -1)
	root := cid.NewCidV1(cid.DagProtobuf, h)
	a := BaseAnnouncement{Root: root, Name: "stories260K", Arch: "llama", Fingerprint: "sha256:abc", ShapeID: "sha256:def",
		Size: 1 << 20, Created: time.Now()}
	env, err := SignBase(a, key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenBase(env)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != a.Name || s.Fingerprint != a.Fingerprint || !s.Root.Equals(root) || s.Size != a.Size || s.Arch != "llama" {
		t.Fatalf("round trip: %+v", s.BaseAnnouncement)
	}
	// A base announcement is never an adapter one, and the other way round.
	if _, err := Open(env); err == nil {
		t.Fatal("a base announcement opened as an adapter announcement")
	}
	ad, err := Sign(Announcement{Root: root, Created: time.Now(), Manifest: Manifest{Name: "x", BaseFingerprint: "sha256:abc", Rank: 4, Alpha: 8}}, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBase(ad); err == nil {
		t.Fatal("an adapter announcement opened as a base announcement")
	}
	// The adapter domain's signature over a base payload does not verify.
	forged, err := encMode.Marshal(wireEnvelope{Payload: s.Payload, PublicKey: s.PublicKey, Signature: mustSign(t, key, domainBytes(SignatureDomain, s.Payload))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBase(forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("base payload signed under the adapter domain: %v", err)
	}
	// Altered field.
	bad := a
	bad.Name = ""
	if _, err := SignBase(bad, key); err == nil || !strings.Contains(err.Error(), "name") {
		t.Fatalf("empty name: %v", err)
	}
}

func mustSign(t *testing.T, k crypto.PrivKey, b []byte) []byte {
	sig, err := k.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}
