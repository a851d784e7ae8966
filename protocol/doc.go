// Package protocol defines orchmind's versioned wire messages: the signed
// adapter announcement that travels over gossipsub, and the catalogue
// request/response exchanged on the /orchmind/catalogue/1.0.0 stream
// protocol. It only encodes, decodes and verifies; the swarm wires the
// streams and topics.
//
// # Encoding: CBOR
//
// Messages are CBOR (RFC 8949) maps with small integer keys, encoded with
// github.com/fxamacker/cbor/v2 in the "core deterministic" mode (sorted
// keys, shortest integer and float forms, definite lengths), so one message
// has exactly one encoding. CBOR was chosen over protobuf because the
// signature covers bytes, and a deterministic encoder is part of the CBOR
// standard and of the library, whereas protobuf makes no canonical-encoding
// promise; CBOR also needs no code generator and decodes straight into Go
// structs while letting a newer minor version add fields (integer keys a
// decoder does not know are skipped).
//
// Decoding is strict: duplicate map keys, indefinite lengths, CBOR tags,
// NaN and infinities, invalid UTF-8 and trailing bytes are rejected, and
// array, map and nesting sizes are capped before anything is allocated.
//
// # Signed announcement
//
// An announcement is sent as an envelope
//
//	{1: payload (byte string), 2: public key (byte string), 3: signature (byte string)}
//
// where payload is the CBOR encoding of the Announcement fields, public key
// is the author's libp2p public key (crypto.MarshalPublicKey, ed25519 only)
// and the signature is ed25519 over
//
//	"orchmind/announcement/v1\x00" || payload
//
// The domain prefix keeps an announcement signature from being valid for any
// other message signed with the node's key (libp2p's own records use other
// prefixes). The signature covers the payload bytes exactly as the author
// encoded them, so a node that is on an older minor version verifies fields
// it does not understand and forwards them unchanged.
//
// The payload carries its version {major, minor}. A payload whose major
// version differs from VersionMajor is rejected with an error telling the
// user to upgrade orchmind; a newer minor version is accepted and its
// unknown fields are ignored. Verify checks the signature and that the
// author peer ID in the payload is the ID of the public key that signed.
//
// # Limits
//
// A whole envelope is at most MaxAnnouncementSize (16 KiB). Strings, tags,
// target modules and metrics are bounded by the Max* constants; see
// Announcement.Validate.
//
// # Catalogue exchange
//
// On a /orchmind/catalogue/1.0.0 stream the asking peer writes one frame
// holding a CatalogueRequest (CBOR: version, optional base fingerprint
// filter, limit) and the answering peer writes one frame per signed
// announcement envelope, newest first, then an empty frame. A frame is an
// unsigned varint length followed by that many bytes. A request frame is at
// most MaxCatalogueRequestSize bytes, each announcement frame at most
// MaxAnnouncementSize, and a response at most the requested limit (itself at
// most MaxCatalogueLimit) of announcements.
package protocol
