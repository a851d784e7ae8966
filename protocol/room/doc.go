// Package room implements private rooms: a group that shares adapters only
// among itself, identified by a room code that its members pass around.
//
// The code (20 random bytes, written as 32 base32 letters in groups of 4)
// is stretched with Argon2id (salt "orchmind/room/v1", 2 passes, 19 MiB, 1
// lane: OWASP's minimum, so a phone can join) into a master secret, from
// which HKDF-SHA256 derives
//
//   - the room's gossipsub topic, /orchmind/room/<32 hex>/1, and
//   - a 256-bit XChaCha20-Poly1305 key that seals every announcement
//     (random 24-byte nonce, the topic as associated data).
//
// Peers outside the room see an opaque topic name and ciphertext: no adapter
// names, CIDs, authors' manifests or base models. What a room does not hide:
// that some peer publishes to some room topic (message sizes and timing),
// and, because blocks stay content-addressed in the public DHT, a provider
// record tells anyone who already knows a CID that this peer serves it.
package room
