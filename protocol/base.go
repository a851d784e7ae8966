package protocol

import (
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// BaseSignatureDomain prefixes a base announcement's payload before it is
// signed. It differs from SignatureDomain, so a base announcement's
// signature never verifies as an adapter announcement's and the other way
// round; the payloads differ in shape too (a base payload carries
// BaseKind under key 7, which an adapter payload never has).
const BaseSignatureDomain = "orchmind/base-announcement/v1\x00"

// BaseKind is the kind field of every base announcement payload.
const BaseKind = "base"

// MaxArchLen bounds BaseAnnouncement.Arch, in bytes.
const MaxArchLen = 64

// BaseAnnouncement says that Author holds the base model file whose
// UnixFS file DAG has the root CID Root and whose weights have the
// fingerprint Fingerprint (engine/model.Fingerprint of the file as
// stored).
type BaseAnnouncement struct {
	// Version is filled in by SignBase.
	Version Version
	// Root is the CID of the base file's UnixFS DAG.
	Root cid.Cid
	// Name is the display name ("stories260K", "gemma3-1b").
	Name string
	// Arch is the architecture ("llama", "gemma3").
	Arch string
	// Fingerprint and ShapeID identify the weights and their shapes.
	Fingerprint, ShapeID string
	// Size is the file's size in bytes.
	Size uint64
	// Created is when the author made the announcement.
	Created time.Time
	// Author is the peer ID of the signing key (filled in by SignBase).
	Author peer.ID
}

// SignedBase is a decoded base announcement with the bytes that were
// signed.
type SignedBase struct {
	BaseAnnouncement
	Payload, PublicKey, Signature, Raw []byte
}

type wireBasePayload struct {
	Version     wireVersion `cbor:"1,keyasint"`
	Root        []byte      `cbor:"2,keyasint"`
	Name        string      `cbor:"3,keyasint"`
	Arch        string      `cbor:"4,keyasint"`
	Fingerprint string      `cbor:"5,keyasint"`
	ShapeID     string      `cbor:"6,keyasint,omitempty"`
	Kind        string      `cbor:"7,keyasint"`
	Size        uint64      `cbor:"8,keyasint"`
	Created     int64       `cbor:"9,keyasint"`
	Author      []byte      `cbor:"10,keyasint"`
}

// SignBase validates a, fills in its version and author from the key and
// returns the signed envelope (the same envelope shape as Sign's, under
// BaseSignatureDomain). Only ed25519 keys are accepted.
func SignBase(a BaseAnnouncement, key crypto.PrivKey) ([]byte, error) {
	id, err := signerID(key, "a base announcement")
	if err != nil {
		return nil, err
	}
	a.Version = Version{Major: VersionMajor, Minor: VersionMinor}
	a.Author = id
	if err := a.Validate(); err != nil {
		return nil, err
	}
	payload, err := encMode.Marshal(wireBasePayload{
		Version: wireVersion{Major: a.Version.Major, Minor: a.Version.Minor}, Root: a.Root.Bytes(),
		Name: a.Name, Arch: a.Arch, Fingerprint: a.Fingerprint, ShapeID: a.ShapeID, Kind: BaseKind,
		Size: a.Size, Created: a.Created.UnixMilli(), Author: []byte(a.Author)})
	if err != nil {
		return nil, fmt.Errorf("protocol: encoding the base announcement: %w", err)
	}
	return seal(key, BaseSignatureDomain, payload, "base announcement")
}

// OpenBase decodes a signed base announcement and verifies its signature
// (under BaseSignatureDomain) and author: use it on bytes from the
// network. An adapter announcement is refused.
func OpenBase(data []byte) (*SignedBase, error) {
	env, err := openEnvelope(data, "base announcement")
	if err != nil {
		return nil, err
	}
	var p wireBasePayload
	if err := decMode.Unmarshal(env.Payload, &p); err != nil {
		return nil, fmt.Errorf("protocol: malformed base announcement payload (an adapter announcement?): %w", err)
	}
	if p.Kind != BaseKind {
		return nil, fmt.Errorf("protocol: payload of kind %q is not a base announcement", p.Kind)
	}
	root, err := cid.Cast(p.Root)
	if err != nil {
		return nil, fmt.Errorf("protocol: base announcement root is not a valid CID: %w", err)
	}
	author, err := peer.IDFromBytes(p.Author)
	if err != nil {
		return nil, fmt.Errorf("protocol: base announcement author is not a valid peer ID: %w", err)
	}
	s := &SignedBase{
		BaseAnnouncement: BaseAnnouncement{Version: Version{Major: p.Version.Major, Minor: p.Version.Minor}, Root: root,
			Name: p.Name, Arch: p.Arch, Fingerprint: p.Fingerprint, ShapeID: p.ShapeID, Size: p.Size,
			Created: time.UnixMilli(p.Created), Author: author},
		Payload: env.Payload, PublicKey: env.PublicKey, Signature: env.Signature, Raw: data,
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if err := checkSignature(BaseSignatureDomain, s.Payload, s.PublicKey, s.Signature, s.Author, s.Root, "base announcement"); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks every field of a against the limits.
func (a *BaseAnnouncement) Validate() error {
	if err := checkHeader("base announcement", a.Version, a.Root, a.Author, a.Created); err != nil {
		return err
	}
	if a.Fingerprint == "" || a.Name == "" || a.Size == 0 {
		return errors.New("protocol: base announcement lacks its fingerprint, name or size")
	}
	for _, c := range []struct {
		what, v string
		max     int
	}{{"base name", a.Name, MaxBaseNameLen}, {"architecture", a.Arch, MaxArchLen},
		{"base fingerprint", a.Fingerprint, MaxFingerprintLen}, {"shape ID", a.ShapeID, MaxFingerprintLen}} {
		if err := checkString(c.what, c.v, c.max, false); err != nil {
			return err
		}
	}
	return nil
}
