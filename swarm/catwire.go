package swarm

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Catalogue wire format: the request is one frame holding JSON
// {"base": "...", "limit": n, "have": "..."}; the response is one frame per
// signed announcement followed by an empty frame. A frame is a uvarint
// length and that many bytes. "have" (optional; peers that predate it
// ignore it) is the hex digest of the announcements the asker holds
// (catalogueDigest): a peer whose answer would hold exactly those sends
// the empty answer instead, so that peers whose catalogues agree, the
// usual case once the swarm has settled, exchange a few bytes rather than
// the whole list on every new connection.

const maxCatalogueRequest = 1024

type catalogueRequest struct {
	Base  string `json:"base,omitempty"`
	Limit int    `json:"limit,omitempty"`
	Have  string `json:"have,omitempty"`
}

// catalogueDigest is the XOR of the SHA-256 of each signed announcement:
// independent of order, and updated by one XOR per entry added or removed.
type catalogueDigest [sha256.Size]byte

func (d *catalogueDigest) toggle(data []byte) {
	h := sha256.Sum256(data)
	for i := range d {
		d[i] ^= h[i]
	}
}

func (d catalogueDigest) String() string { return hex.EncodeToString(d[:]) }

func writeFrame(w io.Writer, b []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(b)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("frame of %d bytes exceeds the limit of %d", n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

func writeCatalogueRequest(w io.Writer, req catalogueRequest) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return writeFrame(w, b)
}

func readCatalogueRequest(r *bufio.Reader) (catalogueRequest, error) {
	var req catalogueRequest
	b, err := readFrame(r, maxCatalogueRequest)
	if err != nil {
		return req, err
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return req, fmt.Errorf("decoding catalogue request: %w", err)
	}
	return req, nil
}

func writeCatalogueResponse(w io.Writer, items [][]byte) error {
	for _, b := range items {
		if len(b) == 0 {
			continue
		}
		if err := writeFrame(w, b); err != nil {
			return err
		}
	}
	return writeFrame(w, nil)
}

func readCatalogueResponse(r *bufio.Reader, limit int) ([][]byte, error) {
	var out [][]byte
	for {
		b, err := readFrame(r, MaxAnnouncementSize)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(b) == 0 {
			return out, nil
		}
		if len(out) == limit {
			return nil, fmt.Errorf("peer sent more than the %d announcements asked for", limit)
		}
		out = append(out, b)
	}
}
