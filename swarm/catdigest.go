package swarm

import "crypto/sha256"

// catalogueDigest is the XOR of the SHA-256 of each signed announcement:
// independent of order, and updated by one XOR per entry added or removed.
// It travels as protocol.CatalogueRequest.Have.
type catalogueDigest [sha256.Size]byte

func (d *catalogueDigest) toggle(data []byte) {
	h := sha256.Sum256(data)
	for i := range d {
		d[i] ^= h[i]
	}
}
