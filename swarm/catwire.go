package swarm

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Catalogue wire format: the request is one frame holding JSON
// {"base": "...", "limit": n}; the response is one frame per signed
// announcement followed by an empty frame. A frame is a uvarint length and
// that many bytes.

const maxCatalogueRequest = 1024

type catalogueRequest struct {
	Base  string `json:"base,omitempty"`
	Limit int    `json:"limit,omitempty"`
}

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
