package room

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

const (
	codeBytes = 20
	salt      = "orchmind/room/v1"
	// MaxSealed bounds a sealed announcement (16 KiB of announcement plus
	// nonce and tag).
	MaxSealed = 16<<10 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrNotForRoom is returned by Open when a message was not sealed with this
// room's key: another room, a wrong code, or tampering.
var ErrNotForRoom = errors.New("room: the message does not open with this room's code (another room, a mistyped code, or altered in transit)")

// NewCode returns a fresh random room code.
func NewCode() (string, error) {
	b := make([]byte, codeBytes)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return "", fmt.Errorf("room: no randomness: %w", err)
	}
	s := b32.EncodeToString(b)
	var parts []string
	for i := 0; i < len(s); i += 4 {
		parts = append(parts, s[i:i+4])
	}
	return strings.Join(parts, "-"), nil
}

// normalise accepts a code typed by a person: any case, spaces or dashes.
func normalise(code string) ([]byte, error) {
	s := strings.ToUpper(code)
	s = strings.NewReplacer("-", "", " ", "", "\t", "", "\n", "").Replace(s)
	b, err := b32.DecodeString(s)
	if err != nil || len(b) != codeBytes {
		return nil, fmt.Errorf("room: %q is not a room code: a code is 32 letters and digits 2-7 in groups of 4, as printed by orchmind room create", code)
	}
	return b, nil
}

// Room holds the keys of one room.
type Room struct {
	topic string
	aead  interface {
		Seal(dst, nonce, plaintext, ad []byte) []byte
		Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
	}
}

// Join derives a room's topic and key from its code (about 50 ms of
// Argon2id by design).
func Join(code string) (*Room, error) {
	raw, err := normalise(code)
	if err != nil {
		return nil, err
	}
	master := argon2.IDKey(raw, []byte(salt), 2, 19*1024, 1, 32)
	derive := func(info string, n int) []byte {
		out := make([]byte, n)
		if _, err := io.ReadFull(hkdf.New(sha256.New, master, nil, []byte(info)), out); err != nil {
			panic(err) // HKDF-SHA256 can give 8 KB; we ask for 32 bytes
		}
		return out
	}
	aead, err := chacha20poly1305.NewX(derive("orchmind room key", chacha20poly1305.KeySize))
	if err != nil {
		return nil, err
	}
	return &Room{topic: "/orchmind/room/" + hex.EncodeToString(derive("orchmind room topic", 16)) + "/1", aead: aead}, nil
}

// Topic is the room's gossipsub topic.
func (r *Room) Topic() string { return r.topic }

// Seal encrypts an announcement for the room.
func (r *Room) Seal(msg []byte) ([]byte, error) {
	if len(msg) > MaxSealed-chacha20poly1305.NonceSizeX-chacha20poly1305.Overhead {
		return nil, fmt.Errorf("room: announcement of %d bytes is too large", len(msg))
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(msg)+chacha20poly1305.Overhead)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("room: no randomness: %w", err)
	}
	return r.aead.Seal(nonce, nonce, msg, []byte(r.topic)), nil
}

// Open decrypts a sealed announcement, or returns ErrNotForRoom.
func (r *Room) Open(sealed []byte) ([]byte, error) {
	if len(sealed) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead || len(sealed) > MaxSealed {
		return nil, ErrNotForRoom
	}
	nonce, ct := sealed[:chacha20poly1305.NonceSizeX], sealed[chacha20poly1305.NonceSizeX:]
	msg, err := r.aead.Open(nil, nonce, ct, []byte(r.topic))
	if err != nil {
		return nil, ErrNotForRoom
	}
	return msg, nil
}
