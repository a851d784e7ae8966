package protocol

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// testKey returns a deterministic ed25519 key for seed.
func testKey(t testing.TB, seed byte) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testRoot(t testing.TB, s string) cid.Cid {
	t.Helper()
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.DagProtobuf, h)
}

func testAnnouncement(t testing.TB) Announcement {
	return Announcement{
		Root: testRoot(t, "adapter"),
		Manifest: Manifest{
			Name:            "pirate-talk",
			Description:     "Talks like a pirate.\nTrained on fortunes.",
			Tags:            []string{"fun", "pt-BR"},
			Language:        "pt-BR",
			BaseFingerprint: "sha256:0123456789abcdef",
			BaseName:        "stories260K",
			Rank:            8,
			Alpha:           16,
			TargetModules:   []string{"q_proj", "v_proj"},
			Metrics:         map[string]float64{"eval_loss": 1.25, "train_loss": 0.5},
			License:         "MIT",
		},
		Size:    123456,
		Created: time.UnixMilli(1_790_000_000_123),
	}
}

func TestSignOpenRoundTrip(t *testing.T) {
	key := testKey(t, 1)
	a := testAnnouncement(t)
	data, err := Sign(a, key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(data)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	if s.Author != id {
		t.Fatalf("author %s, want %s", s.Author, id)
	}
	if s.Version != (Version{VersionMajor, VersionMinor}) {
		t.Fatalf("version %v", s.Version)
	}
	if !s.Root.Equals(a.Root) || s.Size != a.Size || !s.Created.Equal(a.Created) {
		t.Fatalf("decoded %+v, want %+v", s.Announcement, a)
	}
	m := s.Manifest
	if m.Name != a.Manifest.Name || m.Description != a.Manifest.Description || m.Alpha != 16 || m.Rank != 8 ||
		strings.Join(m.Tags, ",") != "fun,pt-BR" || strings.Join(m.TargetModules, ",") != "q_proj,v_proj" ||
		m.Metrics["eval_loss"] != 1.25 || m.BaseFingerprint != a.Manifest.BaseFingerprint || m.License != "MIT" {
		t.Fatalf("manifest %+v", m)
	}
	// Deterministic: signing again gives the same bytes (ed25519 is deterministic).
	again, err := Sign(a, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Fatal("two encodings of the same announcement differ")
	}
	// Map iteration order must not matter.
	a.Manifest.Metrics = map[string]float64{"train_loss": 0.5, "eval_loss": 1.25}
	again, _ = Sign(a, key)
	if !bytes.Equal(again, data) {
		t.Fatal("metrics order changed the encoding")
	}
}

// envelope decodes data into its wire parts for tampering.
func envelope(t *testing.T, data []byte) (wireEnvelope, wirePayload) {
	t.Helper()
	var env wireEnvelope
	if err := cbor.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	var p wirePayload
	if err := cbor.Unmarshal(env.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return env, p
}

func reencode(t *testing.T, env wireEnvelope, p any) []byte {
	t.Helper()
	var err error
	if p != nil {
		env.Payload, err = encMode.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := encMode.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTamperedFieldFailsVerify(t *testing.T) {
	key := testKey(t, 2)
	data, err := Sign(testAnnouncement(t), key)
	if err != nil {
		t.Fatal(err)
	}
	tamper := map[string]func(p *wirePayload){
		"name":  func(p *wirePayload) { p.Manifest.Name = "pirate-talk2" },
		"size":  func(p *wirePayload) { p.Size++ },
		"root":  func(p *wirePayload) { p.Root = testRoot(t, "other").Bytes() },
		"base":  func(p *wirePayload) { p.Manifest.BaseFingerprint = "sha256:ffff" },
		"alpha": func(p *wirePayload) { p.Manifest.Alpha = 32 },
		"metric": func(p *wirePayload) {
			p.Manifest.Metrics = map[string]float64{"eval_loss": 0.01, "train_loss": 0.5}
		},
		"created": func(p *wirePayload) { p.Created++ },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			env, p := envelope(t, data)
			f(&p)
			bad := reencode(t, env, p)
			s, err := Decode(bad)
			if err != nil {
				t.Fatalf("tampered announcement should still decode: %v", err)
			}
			if err := Verify(s); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify = %v, want ErrBadSignature", err)
			}
		})
	}
	t.Run("signature bit", func(t *testing.T) {
		env, _ := envelope(t, data)
		env.Signature[0] ^= 1
		if _, err := Open(reencode(t, env, nil)); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Open = %v, want ErrBadSignature", err)
		}
	})
}

func TestWrongKeyFails(t *testing.T) {
	key, other := testKey(t, 3), testKey(t, 4)
	data, err := Sign(testAnnouncement(t), key)
	if err != nil {
		t.Fatal(err)
	}
	// Re-sign the same payload with another key but keep the claimed author.
	env, _ := envelope(t, data)
	sig, err := other.Sign(domainBytes(SignatureDomain, env.Payload))
	if err != nil {
		t.Fatal(err)
	}
	env.Signature = sig
	if _, err := Open(reencode(t, env, nil)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("signature by another key: Open = %v, want ErrBadSignature", err)
	}
	// Swap in the other public key too: now the signature matches the key,
	// but the key is not the author's.
	env.PublicKey, _ = crypto.MarshalPublicKey(other.GetPublic())
	_, err = Open(reencode(t, env, nil))
	if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "claims author") {
		t.Fatalf("author/key mismatch: Open = %v", err)
	}
	// Non-ed25519 keys are refused for signing.
	sk, _, err := crypto.GenerateSecp256k1Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(testAnnouncement(t), sk); err == nil {
		t.Fatal("secp256k1 key accepted for signing")
	}
}

func TestLimits(t *testing.T) {
	key := testKey(t, 5)
	cases := map[string]func(a *Announcement){
		"description too long": func(a *Announcement) { a.Manifest.Description = strings.Repeat("x", MaxDescriptionLen+1) },
		"too many tags": func(a *Announcement) {
			a.Manifest.Tags = nil
			for i := range MaxTags + 1 {
				a.Manifest.Tags = append(a.Manifest.Tags, "t"+string(rune('A'+i)))
			}
		},
		"tag too long":       func(a *Announcement) { a.Manifest.Tags = []string{strings.Repeat("t", MaxTagLen+1)} },
		"duplicate tag":      func(a *Announcement) { a.Manifest.Tags = []string{"a", "a"} },
		"empty name":         func(a *Announcement) { a.Manifest.Name = "" },
		"control in name":    func(a *Announcement) { a.Manifest.Name = "a\x00b" },
		"invalid utf8":       func(a *Announcement) { a.Manifest.Name = "a\xffb" },
		"no base":            func(a *Announcement) { a.Manifest.BaseFingerprint = "" },
		"rank zero":          func(a *Announcement) { a.Manifest.Rank = 0 },
		"alpha NaN":          func(a *Announcement) { a.Manifest.Alpha = float32(math.NaN()) },
		"metric inf":         func(a *Announcement) { a.Manifest.Metrics = map[string]float64{"x": math.Inf(1)} },
		"no root":            func(a *Announcement) { a.Root = cid.Undef },
		"no created":         func(a *Announcement) { a.Created = time.Time{} },
		"too many metrics":   func(a *Announcement) { a.Manifest.Metrics = manyMetrics(MaxMetrics + 1) },
		"too many modules":   func(a *Announcement) { a.Manifest.TargetModules = manyStrings(MaxTargetModules + 1) },
		"license too long":   func(a *Announcement) { a.Manifest.License = strings.Repeat("l", MaxLicenseLen+1) },
		"language too long":  func(a *Announcement) { a.Manifest.Language = strings.Repeat("l", MaxLanguageLen+1) },
		"base name too long": func(a *Announcement) { a.Manifest.BaseName = strings.Repeat("l", MaxBaseNameLen+1) },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			a := testAnnouncement(t)
			f(&a)
			if _, err := Sign(a, key); err == nil {
				t.Fatal("Sign accepted an announcement outside the limits")
			}
		})
	}
	// Everything at its maximum still fits in 16 KiB? If not, Sign must say
	// so rather than produce an oversize message.
	a := testAnnouncement(t)
	a.Manifest.Description = strings.Repeat("d", MaxDescriptionLen)
	a.Manifest.Tags = manyStrings(MaxTags)
	a.Manifest.TargetModules = manyStrings(MaxTargetModules)
	a.Manifest.Metrics = manyMetrics(MaxMetrics)
	data, err := Sign(a, key)
	if err != nil {
		t.Fatalf("an announcement with every field at its limit must fit: %v", err)
	}
	if len(data) > MaxAnnouncementSize {
		t.Fatalf("%d bytes > %d", len(data), MaxAnnouncementSize)
	}
}

func manyStrings(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Repeat("m", 40) + string(rune('A'+i%26)) + string(rune('a'+i/26))
	}
	return out
}

func manyMetrics(n int) map[string]float64 {
	m := make(map[string]float64, n)
	for i, s := range manyStrings(n) {
		m[s] = float64(i)
	}
	return m
}

func TestOversizeRejected(t *testing.T) {
	key := testKey(t, 6)
	data, err := Sign(testAnnouncement(t), key)
	if err != nil {
		t.Fatal(err)
	}
	env, p := envelope(t, data)
	// A payload padded past 16 KiB with an unknown field: refused by size
	// before any decoding.
	type padded struct {
		wirePayload
		Pad []byte `cbor:"99,keyasint"`
	}
	big := reencode(t, env, padded{p, make([]byte, MaxAnnouncementSize)})
	if _, err := Decode(big); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversize: Decode = %v", err)
	}
	// Inside the envelope, a description over the limit is refused even if
	// the envelope is small enough.
	p.Manifest.Description = strings.Repeat("x", MaxDescriptionLen+1)
	if _, err := Decode(reencode(t, env, p)); err == nil || !strings.Contains(err.Error(), "description") {
		t.Fatalf("long description: Decode = %v", err)
	}
}

func TestVersions(t *testing.T) {
	key := testKey(t, 7)
	data, err := Sign(testAnnouncement(t), key)
	if err != nil {
		t.Fatal(err)
	}
	env, p := envelope(t, data)

	// A newer minor version with an extra field: accepted, verified, extra
	// field ignored.
	type newer struct {
		wirePayload
		Future string `cbor:"42,keyasint"`
	}
	p.Version.Minor = 7
	np := newer{p, "something new"}
	env.Payload, _ = encMode.Marshal(np)
	sig, _ := key.Sign(domainBytes(SignatureDomain, env.Payload))
	env.Signature = sig
	s, err := Open(reencode(t, env, nil))
	if err != nil {
		t.Fatalf("newer minor version refused: %v", err)
	}
	if s.Version.Minor != 7 || s.Manifest.Name != "pirate-talk" {
		t.Fatalf("decoded %+v", s.Announcement)
	}

	// A different major version whose fields changed type: refused with
	// ErrUnsupportedVersion and advice to upgrade.
	type v2 struct {
		Version wireVersion `cbor:"1,keyasint"`
		Root    string      `cbor:"2,keyasint"`
	}
	env.Payload, _ = encMode.Marshal(v2{Version: wireVersion{Major: 2}, Root: "a string now"})
	_, err = Decode(reencode(t, env, nil))
	if !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("major 2: Decode = %v", err)
	}
}

func TestStrictDecode(t *testing.T) {
	key := testKey(t, 8)
	data, err := Sign(testAnnouncement(t), key)
	if err != nil {
		t.Fatal(err)
	}
	// Trailing bytes.
	if _, err := Decode(append(bytes.Clone(data), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	// Duplicate map key in the envelope: {1: h'', 1: h''}.
	if _, err := Decode([]byte{0xa2, 0x01, 0x40, 0x01, 0x40}); err == nil {
		t.Fatal("duplicate key accepted")
	}
	// Indefinite-length map.
	if _, err := Decode([]byte{0xbf, 0x01, 0x40, 0xff}); err == nil {
		t.Fatal("indefinite length accepted")
	}
	// Truncations never panic and never succeed.
	for i := range data {
		if _, err := Decode(data[:i]); err == nil {
			t.Fatalf("truncated to %d bytes accepted", i)
		}
	}
	// Empty parts.
	env, _ := envelope(t, data)
	env.Signature = nil
	if _, err := Decode(reencode(t, env, nil)); err == nil {
		t.Fatal("missing signature accepted")
	}
}

func TestCatalogueRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	req := CatalogueRequest{BaseFingerprint: "sha256:abcd", Limit: 3}
	if err := WriteCatalogueRequest(&buf, req); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCatalogueRequest(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.BaseFingerprint != req.BaseFingerprint || got.Limit != 3 || got.Version.Major != VersionMajor {
		t.Fatalf("request %+v", got)
	}
	if (CatalogueRequest{}).EffectiveLimit() != DefaultCatalogueLimit || (CatalogueRequest{Limit: 5}).EffectiveLimit() != 5 {
		t.Fatal("EffectiveLimit")
	}

	key := testKey(t, 9)
	var items [][]byte
	for i := range 3 {
		a := testAnnouncement(t)
		a.Root = testRoot(t, string(rune('a'+i)))
		b, err := Sign(a, key)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, b)
	}
	buf.Reset()
	if err := WriteCatalogueResponse(&buf, items); err != nil {
		t.Fatal(err)
	}
	wire := bytes.Clone(buf.Bytes())
	// Read through a reader without ReadByte, as a raw stream would be.
	out, err := ReadCatalogueResponse(struct{ io.Reader }{bytes.NewReader(wire)}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 {
		t.Fatalf("%d items", len(out))
	}
	for i := range out {
		if !bytes.Equal(out[i], items[i]) {
			t.Fatalf("item %d differs", i)
		}
		if _, err := Open(out[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Empty items are not sent.
	var holes bytes.Buffer
	if err := WriteCatalogueResponse(&holes, [][]byte{items[0], {}, items[1], nil}); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadCatalogueResponse(&holes, 3); err != nil || len(got) != 2 || !bytes.Equal(got[1], items[1]) {
		t.Fatalf("a response with empty items reads as %d items, %v", len(got), err)
	}
	// More items than asked for.
	if _, err := ReadCatalogueResponse(bytes.NewReader(wire), 2); err == nil {
		t.Fatal("peer sending more than the limit accepted")
	}
	// Truncated stream.
	if _, err := ReadCatalogueResponse(bytes.NewReader(wire[:len(wire)-1]), 3); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated response: %v", err)
	}
	// Oversize frame header.
	var big bytes.Buffer
	if err := WriteFrame(&big, make([]byte, MaxAnnouncementSize+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCatalogueResponse(&big, 3); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversize frame: %v", err)
	}
	// Bad requests.
	if err := WriteCatalogueRequest(&buf, CatalogueRequest{Limit: MaxCatalogueLimit + 1}); err == nil {
		t.Fatal("limit over the maximum accepted")
	}
	buf.Reset()
	_ = WriteFrame(&buf, []byte{0xa1, 0x01, 0x82, 0x02, 0x00}) // {1: [2, 0]}
	if _, err := ReadCatalogueRequest(&buf); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("major 2 request: %v", err)
	}
}

// TestCatalogueDigest: the digest of what the asker holds travels with the
// request, and a digest of the wrong size is refused both ways.
func TestCatalogueDigest(t *testing.T) {
	have := bytes.Repeat([]byte{0xab}, CatalogueDigestSize)
	b, err := EncodeCatalogueRequest(CatalogueRequest{Limit: 10, Have: have})
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeCatalogueRequest(b)
	if err != nil || !bytes.Equal(r.Have, have) || r.Limit != 10 {
		t.Fatalf("round trip: %+v %v", r, err)
	}
	if _, err := EncodeCatalogueRequest(CatalogueRequest{Have: have[:5]}); err == nil {
		t.Fatal("a 5-byte digest was encoded")
	}
	bad, _ := encMode.Marshal(wireCatalogueRequest{Version: wireVersion{Major: VersionMajor}, Have: have[:31]})
	if _, err := DecodeCatalogueRequest(bad); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("a 31-byte digest was accepted: %v", err)
	}
}
