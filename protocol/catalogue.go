package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// CatalogueProtocolID is the libp2p stream protocol on which peers exchange
// the announcements they know.
const CatalogueProtocolID = "/orchmind/catalogue/1.0.0"

// Catalogue limits.
const (
	// MaxCatalogueRequestSize bounds an encoded catalogue request, in bytes.
	MaxCatalogueRequestSize = 1024
	// MaxCatalogueLimit bounds how many announcements one response may hold.
	MaxCatalogueLimit = 1000
	// DefaultCatalogueLimit is used when a request leaves Limit at zero.
	DefaultCatalogueLimit = 256
)

// CatalogueRequest asks a peer for the announcements it knows.
type CatalogueRequest struct {
	// Version is filled in by WriteCatalogueRequest.
	Version Version
	// BaseFingerprint, if set, asks only for adapters of that base model.
	BaseFingerprint string
	// Limit is the most announcements wanted (0 means
	// DefaultCatalogueLimit; at most MaxCatalogueLimit).
	Limit int
	// Have, if set, is the digest (CatalogueDigestSize bytes) of the
	// announcements the asker holds: a peer whose answer would be exactly
	// those answers with nothing instead, so peers whose catalogues agree
	// (the usual case once a swarm has settled) exchange a few bytes, not
	// the whole list, on every new connection.
	Have []byte
}

// CatalogueDigestSize is the size of CatalogueRequest.Have.
const CatalogueDigestSize = 32

type wireCatalogueRequest struct {
	Version         wireVersion `cbor:"1,keyasint"`
	BaseFingerprint string      `cbor:"2,keyasint,omitempty"`
	Limit           int         `cbor:"3,keyasint,omitempty"`
	Have            []byte      `cbor:"4,keyasint,omitempty"`
}

// EffectiveLimit returns the number of announcements the request allows:
// Limit, or DefaultCatalogueLimit when it is zero, capped at
// MaxCatalogueLimit.
func (r CatalogueRequest) EffectiveLimit() int {
	switch {
	case r.Limit <= 0:
		return DefaultCatalogueLimit
	case r.Limit > MaxCatalogueLimit:
		return MaxCatalogueLimit
	}
	return r.Limit
}

func (r CatalogueRequest) validate() error {
	if r.Limit < 0 || r.Limit > MaxCatalogueLimit {
		return fmt.Errorf("protocol: catalogue limit %d outside 0..%d", r.Limit, MaxCatalogueLimit)
	}
	if len(r.Have) != 0 && len(r.Have) != CatalogueDigestSize {
		return fmt.Errorf("protocol: catalogue digest of %d bytes, want %d", len(r.Have), CatalogueDigestSize)
	}
	return checkString("base fingerprint filter", r.BaseFingerprint, MaxFingerprintLen, false)
}

// EncodeCatalogueRequest returns the CBOR body of a request (without the
// frame length), setting the version to this package's.
func EncodeCatalogueRequest(r CatalogueRequest) ([]byte, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	b, err := encMode.Marshal(wireCatalogueRequest{
		Version:         wireVersion{Major: VersionMajor, Minor: VersionMinor},
		BaseFingerprint: r.BaseFingerprint,
		Limit:           r.Limit,
		Have:            r.Have,
	})
	if err != nil {
		return nil, fmt.Errorf("protocol: encoding the catalogue request: %w", err)
	}
	return b, nil
}

// DecodeCatalogueRequest parses the CBOR body of a request strictly.
func DecodeCatalogueRequest(b []byte) (CatalogueRequest, error) {
	if len(b) > MaxCatalogueRequestSize {
		return CatalogueRequest{}, fmt.Errorf("protocol: catalogue request of %d bytes exceeds %d", len(b), MaxCatalogueRequestSize)
	}
	var vo versionOnly
	if err := decMode.Unmarshal(b, &vo); err != nil {
		return CatalogueRequest{}, fmt.Errorf("protocol: malformed catalogue request: %w", err)
	}
	if vo.Version.Major != VersionMajor {
		return CatalogueRequest{}, fmt.Errorf("protocol: catalogue request uses wire version %d.%d but this orchmind speaks %d.x: %w; upgrade orchmind",
			vo.Version.Major, vo.Version.Minor, VersionMajor, ErrUnsupportedVersion)
	}
	var w wireCatalogueRequest
	if err := decMode.Unmarshal(b, &w); err != nil {
		return CatalogueRequest{}, fmt.Errorf("protocol: malformed catalogue request: %w", err)
	}
	r := CatalogueRequest{
		Version:         Version{Major: w.Version.Major, Minor: w.Version.Minor},
		BaseFingerprint: w.BaseFingerprint,
		Limit:           w.Limit,
		Have:            w.Have,
	}
	if err := r.validate(); err != nil {
		return CatalogueRequest{}, err
	}
	return r, nil
}

// WriteCatalogueRequest writes one request frame.
func WriteCatalogueRequest(w io.Writer, r CatalogueRequest) error {
	b, err := EncodeCatalogueRequest(r)
	if err != nil {
		return err
	}
	return WriteFrame(w, b)
}

// ReadCatalogueRequest reads and decodes one request frame.
func ReadCatalogueRequest(r io.Reader) (CatalogueRequest, error) {
	b, err := ReadFrame(r, MaxCatalogueRequestSize)
	if err != nil {
		return CatalogueRequest{}, fmt.Errorf("protocol: reading the catalogue request: %w", err)
	}
	return DecodeCatalogueRequest(b)
}

// WriteCatalogueResponse writes each signed announcement as a frame, then
// the empty frame that ends the response. Empty items are skipped; an item
// over MaxAnnouncementSize is an error (nothing after it is written).
func WriteCatalogueResponse(w io.Writer, signed [][]byte) error {
	if len(signed) > MaxCatalogueLimit {
		return fmt.Errorf("protocol: %d announcements exceed the catalogue limit of %d", len(signed), MaxCatalogueLimit)
	}
	for i, b := range signed {
		if len(b) == 0 {
			continue
		}
		if len(b) > MaxAnnouncementSize {
			return fmt.Errorf("protocol: catalogue item %d is %d bytes, over the %d-byte announcement limit", i, len(b), MaxAnnouncementSize)
		}
		if err := WriteFrame(w, b); err != nil {
			return fmt.Errorf("protocol: writing the catalogue response: %w", err)
		}
	}
	if err := WriteFrame(w, nil); err != nil {
		return fmt.Errorf("protocol: writing the catalogue response: %w", err)
	}
	return nil
}

// ReadCatalogueResponse reads announcement frames until the empty frame. It
// fails if the peer sends more than limit items (limit is capped at
// MaxCatalogueLimit), a frame over MaxAnnouncementSize, or ends the stream
// early. The items are returned as received: decode and verify each with
// Open, and drop those that fail rather than the whole response.
func ReadCatalogueResponse(r io.Reader, limit int) ([][]byte, error) {
	if limit <= 0 || limit > MaxCatalogueLimit {
		limit = MaxCatalogueLimit
	}
	var out [][]byte
	for {
		b, err := ReadFrame(r, MaxAnnouncementSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("protocol: reading the catalogue response (after %d items): %w", len(out), err)
		}
		if len(b) == 0 {
			return out, nil
		}
		if len(out) == limit {
			return nil, fmt.Errorf("protocol: peer sent more than the %d announcements asked for", limit)
		}
		out = append(out, b)
	}
}

// WriteFrame writes b prefixed by its length as an unsigned varint.
func WriteFrame(w io.Writer, b []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	buf := make([]byte, 0, n+len(b))
	buf = append(buf, hdr[:n]...)
	buf = append(buf, b...)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one length-prefixed frame of at most max bytes. It reads
// exactly the frame from r (no read-ahead), so r may be a raw stream. A clean
// end of stream before the frame starts returns io.EOF.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		br = oneByteReader{r}
	}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("frame of %d bytes exceeds the limit of %d", n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

type oneByteReader struct{ r io.Reader }

func (o oneByteReader) ReadByte() (byte, error) {
	var b [1]byte
	_, err := io.ReadFull(o.r, b[:])
	return b[0], err
}
