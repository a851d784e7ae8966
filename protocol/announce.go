package protocol

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Wire version of the messages this package writes.
const (
	VersionMajor = 1
	VersionMinor = 0
)

// Limits on an announcement.
const (
	// MaxAnnouncementSize bounds a whole signed envelope, in bytes.
	MaxAnnouncementSize = 16 << 10
	// MaxNameLen bounds Manifest.Name, in bytes.
	MaxNameLen = 128
	// MaxDescriptionLen bounds Manifest.Description, in bytes.
	MaxDescriptionLen = 4096
	// MaxTags bounds the number of tags.
	MaxTags = 32
	// MaxTagLen bounds one tag, in bytes.
	MaxTagLen = 64
	// MaxLanguageLen bounds Manifest.Language (a BCP 47 tag), in bytes.
	MaxLanguageLen = 35
	// MaxFingerprintLen bounds Manifest.BaseFingerprint, in bytes.
	MaxFingerprintLen = 128
	// MaxBaseNameLen bounds Manifest.BaseName, in bytes.
	MaxBaseNameLen = 256
	// MaxTargetModules bounds the number of target modules.
	MaxTargetModules = 64
	// MaxModuleLen bounds one target module name, in bytes.
	MaxModuleLen = 64
	// MaxMetrics bounds the number of metrics.
	MaxMetrics = 32
	// MaxMetricNameLen bounds one metric name, in bytes.
	MaxMetricNameLen = 64
	// MaxLicenseLen bounds Manifest.License, in bytes.
	MaxLicenseLen = 128
	// MaxRank bounds Manifest.Rank.
	MaxRank = 4096
	// MaxCIDLen bounds the binary root CID, in bytes.
	MaxCIDLen = 128
)

// SignatureDomain prefixes the payload before it is signed, so that an
// announcement signature is never valid for another kind of message.
const SignatureDomain = "orchmind/announcement/v1\x00"

// Version is a wire version. Peers with the same Major understand each
// other; a higher Minor only adds fields.
type Version struct {
	Major uint16
	Minor uint16
}

// String returns "major.minor".
func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Manifest is the part of an adapter's orchmind.json that is announced:
// the one model of an adapter's public description, from the folder
// (adapters.Manifest embeds it, so these are orchmind.json's keys) through
// the signed announcement (its wire form is wireManifest) to the HTTP API's
// search listing (api.Listing embeds it). A field added here is read from
// orchmind.json, announced and listed; give it a key in wireManifest and a
// bound in validate.
type Manifest struct {
	Name            string   `json:"name"`
	Description     string   `json:"description,omitempty"`
	Tags            []string `json:"tags,omitempty"`
	Language        string   `json:"language,omitempty"`
	BaseName        string   `json:"base_name"`
	BaseFingerprint string   `json:"base_fingerprint"`
	Rank            int      `json:"rank"`
	Alpha           float32  `json:"alpha"`
	TargetModules   []string `json:"target_modules"`
	// Metrics are named figures (train_loss_after, …); orchmind.json keeps
	// the losses as fields of their own (adapters.Manifest.Announce merges
	// them in).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	License string             `json:"license,omitempty"`
}

// Announcement says that Author offers the adapter whose UnixFS DAG has the
// root CID Root.
type Announcement struct {
	// Version is filled in by Sign; decoded announcements carry the
	// author's version.
	Version Version
	// Root is the CID of the adapter folder's UnixFS directory.
	Root cid.Cid
	// Manifest describes the adapter.
	Manifest Manifest
	// Size is the total size of the adapter's files, in bytes.
	Size uint64
	// Created is when the author made the announcement (millisecond precision).
	Created time.Time
	// Author is the peer ID of the signing key (filled in by Sign).
	Author peer.ID
}

// Signed is a decoded announcement together with the exact bytes that were
// signed.
type Signed struct {
	Announcement
	// Payload is the signed CBOR payload exactly as the author encoded it.
	Payload []byte
	// PublicKey is the author's marshalled libp2p public key.
	PublicKey []byte
	// Signature is the ed25519 signature over SignatureDomain || Payload.
	Signature []byte
	// Raw is the whole envelope exactly as received or produced.
	Raw []byte
}

// ErrUnsupportedVersion is wrapped by decode errors for a major version this
// build does not speak.
var ErrUnsupportedVersion = errors.New("unsupported protocol version")

// ErrBadSignature is wrapped by Verify errors when the signature does not
// match.
var ErrBadSignature = errors.New("announcement signature does not verify")

// wire forms --------------------------------------------------------------

type wireVersion struct {
	_     struct{} `cbor:",toarray"`
	Major uint16
	Minor uint16
}

type wireManifest struct {
	Name            string             `cbor:"1,keyasint"`
	Description     string             `cbor:"2,keyasint,omitempty"`
	Tags            []string           `cbor:"3,keyasint,omitempty"`
	Language        string             `cbor:"4,keyasint,omitempty"`
	BaseName        string             `cbor:"6,keyasint,omitempty"` // before 5 as in Manifest: the encoding sorts keys
	BaseFingerprint string             `cbor:"5,keyasint"`
	Rank            int                `cbor:"7,keyasint"`
	Alpha           float32            `cbor:"8,keyasint"`
	TargetModules   []string           `cbor:"9,keyasint,omitempty"`
	Metrics         map[string]float64 `cbor:"10,keyasint,omitempty"`
	License         string             `cbor:"11,keyasint,omitempty"`
}

type wirePayload struct {
	Version  wireVersion  `cbor:"1,keyasint"`
	Root     []byte       `cbor:"2,keyasint"`
	Manifest wireManifest `cbor:"3,keyasint"`
	Size     uint64       `cbor:"4,keyasint"`
	Created  int64        `cbor:"5,keyasint"`
	Author   []byte       `cbor:"6,keyasint"`
}

// versionOnly decodes just the version of a payload, ignoring every other
// field, so that a payload of another major version is reported as such
// rather than as a type error.
type versionOnly struct {
	Version wireVersion `cbor:"1,keyasint"`
}

type wireEnvelope struct {
	Payload   []byte `cbor:"1,keyasint"`
	PublicKey []byte `cbor:"2,keyasint"`
	Signature []byte `cbor:"3,keyasint"`
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(fmt.Sprintf("protocol: CBOR encoder options: %v", err))
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 256,
		MaxMapPairs:      256,
		NaN:              cbor.NaNDecodeForbidden,
		Inf:              cbor.InfDecodeForbidden,
		DefaultMapType:   reflect.TypeFor[map[any]any](),
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("protocol: CBOR decoder options: %v", err))
	}
}

// Sign validates a, sets its version to this package's version and its
// author to the key's peer ID, and returns the signed envelope bytes. Only
// ed25519 keys are accepted. Created is truncated to milliseconds.
func Sign(a Announcement, key crypto.PrivKey) ([]byte, error) {
	id, err := signerID(key, "an announcement")
	if err != nil {
		return nil, err
	}
	a.Version = Version{Major: VersionMajor, Minor: VersionMinor}
	a.Author = id
	if err := a.Validate(); err != nil {
		return nil, err
	}
	payload, err := encMode.Marshal(toWire(a))
	if err != nil {
		return nil, fmt.Errorf("protocol: encoding the announcement: %w", err)
	}
	return seal(key, SignatureDomain, payload, "announcement")
}

// signerID checks that key can sign announcements (present, ed25519) and
// returns its peer ID; what names the message ("an announcement").
func signerID(key crypto.PrivKey, what string) (peer.ID, error) {
	if key == nil {
		return "", fmt.Errorf("protocol: signing %s needs the node's private key, got none", what)
	}
	if key.Type() != pb.KeyType_Ed25519 {
		return "", fmt.Errorf("protocol: announcements are signed with ed25519 keys; this node's key is %s", key.Type())
	}
	id, err := peer.IDFromPublicKey(key.GetPublic())
	if err != nil {
		return "", fmt.Errorf("protocol: deriving the peer ID from the node key: %w", err)
	}
	return id, nil
}

// seal signs domain || payload with key and returns the envelope, at most
// MaxAnnouncementSize bytes: every kind of announcement is sealed (and
// opened, see openEnvelope and checkSignature) the same way, only the
// domain differs.
func seal(key crypto.PrivKey, domain string, payload []byte, what string) ([]byte, error) {
	sig, err := key.Sign(domainBytes(domain, payload))
	if err != nil {
		return nil, fmt.Errorf("protocol: signing the %s: %w", what, err)
	}
	pubBytes, err := crypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		return nil, fmt.Errorf("protocol: encoding the public key: %w", err)
	}
	env, err := encMode.Marshal(wireEnvelope{Payload: payload, PublicKey: pubBytes, Signature: sig})
	if err != nil {
		return nil, fmt.Errorf("protocol: encoding the %s envelope: %w", what, err)
	}
	if len(env) > MaxAnnouncementSize {
		return nil, fmt.Errorf("protocol: the signed %s is %d bytes, over the %d-byte limit; shorten the description or drop tags and metrics", what, len(env), MaxAnnouncementSize)
	}
	return env, nil
}

// domainBytes is what is signed: the domain, then the payload.
func domainBytes(domain string, payload []byte) []byte {
	b := make([]byte, 0, len(domain)+len(payload))
	b = append(b, domain...)
	return append(b, payload...)
}

// checkSignature checks that sig is the signature of the ed25519 key
// pubBytes over domain || payload and that author is that key's peer ID.
func checkSignature(domain string, payload, pubBytes, sig []byte, author peer.ID, root cid.Cid, what string) error {
	pub, err := crypto.UnmarshalPublicKey(pubBytes)
	if err != nil {
		return fmt.Errorf("protocol: %s carries an unreadable public key: %w", what, err)
	}
	if pub.Type() != pb.KeyType_Ed25519 {
		return fmt.Errorf("protocol: %s signed with a %s key; only ed25519 is accepted", what, pub.Type())
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return fmt.Errorf("protocol: deriving the peer ID of the %s key: %w", what, err)
	}
	if id != author {
		return fmt.Errorf("protocol: %s claims author %s but was signed by %s: %w", what, author, id, ErrBadSignature)
	}
	ok, err := pub.Verify(domainBytes(domain, payload), sig)
	if err != nil {
		return fmt.Errorf("protocol: checking the %s signature: %w", what, err)
	}
	if !ok {
		return fmt.Errorf("protocol: %s %s from %s was altered or signed with another key: %w", what, root, author, ErrBadSignature)
	}
	return nil
}

// checkHeader checks the fields every kind of announcement has.
func checkHeader(what string, v Version, root cid.Cid, author peer.ID, created time.Time) error {
	if v.Major != VersionMajor {
		return fmt.Errorf("protocol: %s version %s is not %d.x: %w", what, v, VersionMajor, ErrUnsupportedVersion)
	}
	if !root.Defined() {
		return fmt.Errorf("protocol: %s has no root CID", what)
	}
	if n := len(root.Bytes()); n > MaxCIDLen {
		return fmt.Errorf("protocol: root CID of %d bytes exceeds %d", n, MaxCIDLen)
	}
	if author == "" {
		return fmt.Errorf("protocol: %s has no author", what)
	}
	if created.UnixMilli() <= 0 {
		return fmt.Errorf("protocol: %s has no creation time", what)
	}
	return nil
}

func toWire(a Announcement) wirePayload {
	m := a.Manifest
	return wirePayload{
		Version:  wireVersion{Major: a.Version.Major, Minor: a.Version.Minor},
		Root:     a.Root.Bytes(),
		Manifest: wireManifest(m),
		Size:     a.Size,
		Created:  a.Created.UnixMilli(),
		Author:   []byte(a.Author),
	}
}

// openEnvelope decodes the signed envelope of a what ("announcement",
// "base announcement") and checks what every kind shares: the size limit,
// strict CBOR, the three parts present, and the payload's major version.
func openEnvelope(data []byte, what string) (wireEnvelope, error) {
	var env wireEnvelope
	if len(data) > MaxAnnouncementSize {
		return env, fmt.Errorf("protocol: %s of %d bytes exceeds the %d-byte limit", what, len(data), MaxAnnouncementSize)
	}
	if err := decMode.Unmarshal(data, &env); err != nil {
		return env, fmt.Errorf("protocol: malformed %s envelope: %w", what, err)
	}
	if len(env.Payload) == 0 || len(env.PublicKey) == 0 || len(env.Signature) == 0 {
		return env, fmt.Errorf("protocol: %s envelope lacks its payload, public key or signature", what)
	}
	var vo versionOnly
	if err := decMode.Unmarshal(env.Payload, &vo); err != nil {
		return env, fmt.Errorf("protocol: malformed %s payload: %w", what, err)
	}
	if vo.Version.Major != VersionMajor {
		return env, fmt.Errorf("protocol: %s uses wire version %d.%d but this orchmind speaks %d.x: %w; upgrade orchmind to read it",
			what, vo.Version.Major, vo.Version.Minor, VersionMajor, ErrUnsupportedVersion)
	}
	return env, nil
}

// Decode parses a signed announcement envelope without checking its
// signature (see Verify and Open). It rejects envelopes over
// MaxAnnouncementSize, malformed or non-strict CBOR, a major version other
// than VersionMajor (wrapping ErrUnsupportedVersion) and field values
// outside the limits.
func Decode(data []byte) (*Signed, error) {
	env, err := openEnvelope(data, "announcement")
	if err != nil {
		return nil, err
	}
	var p wirePayload
	if err := decMode.Unmarshal(env.Payload, &p); err != nil {
		return nil, fmt.Errorf("protocol: malformed announcement payload: %w", err)
	}
	root, err := cid.Cast(p.Root)
	if err != nil {
		return nil, fmt.Errorf("protocol: announcement root is not a valid CID: %w", err)
	}
	author, err := peer.IDFromBytes(p.Author)
	if err != nil {
		return nil, fmt.Errorf("protocol: announcement author is not a valid peer ID: %w", err)
	}
	m := p.Manifest
	s := &Signed{
		Announcement: Announcement{
			Version:  Version{Major: p.Version.Major, Minor: p.Version.Minor},
			Root:     root,
			Manifest: Manifest(m),
			Size:     p.Size,
			Created:  time.UnixMilli(p.Created),
			Author:   author,
		},
		Payload:   env.Payload,
		PublicKey: env.PublicKey,
		Signature: env.Signature,
		Raw:       data,
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Verify checks that s.Signature is the signature of s.PublicKey over the
// payload and that s.Author is the peer ID of that key.
func Verify(s *Signed) error {
	if s == nil {
		return errors.New("protocol: no announcement to verify")
	}
	return checkSignature(SignatureDomain, s.Payload, s.PublicKey, s.Signature, s.Author, s.Root, "announcement")
}

// Open decodes a signed announcement and verifies it: use it on bytes that
// came from the network.
func Open(data []byte) (*Signed, error) {
	s, err := Decode(data)
	if err != nil {
		return nil, err
	}
	if err := Verify(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks every field of a against the limits. Decode calls it, so
// a decoded announcement always satisfies it.
func (a *Announcement) Validate() error {
	if err := checkHeader("announcement", a.Version, a.Root, a.Author, a.Created); err != nil {
		return err
	}
	m := &a.Manifest
	if m.Name == "" {
		return errors.New("protocol: announcement has no adapter name")
	}
	if m.BaseFingerprint == "" {
		return errors.New("protocol: announcement has no base model fingerprint")
	}
	checks := []struct {
		what, v string
		max     int
	}{
		{"name", m.Name, MaxNameLen},
		{"description", m.Description, MaxDescriptionLen},
		{"language", m.Language, MaxLanguageLen},
		{"base fingerprint", m.BaseFingerprint, MaxFingerprintLen},
		{"base name", m.BaseName, MaxBaseNameLen},
		{"license", m.License, MaxLicenseLen},
	}
	for _, c := range checks {
		if err := checkString(c.what, c.v, c.max, c.what == "description"); err != nil {
			return err
		}
	}
	if err := checkList("tag", m.Tags, MaxTags, MaxTagLen); err != nil {
		return err
	}
	if err := checkList("target module", m.TargetModules, MaxTargetModules, MaxModuleLen); err != nil {
		return err
	}
	if m.Rank < 1 || m.Rank > MaxRank {
		return fmt.Errorf("protocol: LoRA rank %d outside 1..%d", m.Rank, MaxRank)
	}
	if f := float64(m.Alpha); math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return fmt.Errorf("protocol: LoRA alpha %v must be a positive finite number", m.Alpha)
	}
	if len(m.Metrics) > MaxMetrics {
		return fmt.Errorf("protocol: %d metrics exceed the limit of %d", len(m.Metrics), MaxMetrics)
	}
	for k, v := range m.Metrics {
		if err := checkString("metric name", k, MaxMetricNameLen, false); err != nil {
			return err
		}
		if k == "" {
			return errors.New("protocol: a metric has an empty name")
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("protocol: metric %q is %v; only finite numbers are allowed", k, v)
		}
	}
	return nil
}

func checkString(what, v string, max int, multiline bool) error {
	if len(v) > max {
		return fmt.Errorf("protocol: %s of %d bytes exceeds the limit of %d", what, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("protocol: %s is not valid UTF-8", what)
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return fmt.Errorf("protocol: %s contains control character %U", what, r)
		}
	}
	return nil
}

func checkList(what string, vs []string, maxN, maxLen int) error {
	if len(vs) > maxN {
		return fmt.Errorf("protocol: %d %ss exceed the limit of %d", len(vs), what, maxN)
	}
	for _, v := range vs {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("protocol: an empty %s", what)
		}
		if err := checkString(what, v, maxLen, false); err != nil {
			return err
		}
	}
	seen := make(map[string]bool, len(vs))
	for _, v := range vs {
		if seen[v] {
			return fmt.Errorf("protocol: duplicate %s %q", what, v)
		}
		seen[v] = true
	}
	return nil
}
