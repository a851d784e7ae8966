package room

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	mh "github.com/multiformats/go-multihash"

	"orchmind/protocol"
)

// Two fixed rooms: fuzzing must not spend 50 ms of Argon2 per input.
const (
	fuzzCode  = "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4IB-CEQT"
	otherCode = "7777-7777-7777-7777-7777-7777-7777-7777"
)

func fuzzRooms(tb testing.TB) (r, other *Room) {
	tb.Helper()
	r, err := Join(fuzzCode)
	if err != nil {
		tb.Fatal(err)
	}
	other, err = Join(otherCode)
	if err != nil {
		tb.Fatal(err)
	}
	return r, other
}

// signedSeed returns a real signed announcement, as a room carries them.
func signedSeed(tb testing.TB) []byte {
	tb.Helper()
	key, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
	if err != nil {
		tb.Fatal(err)
	}
	h, err := mh.Sum([]byte("adapter"), mh.SHA2_256, -1)
	if err != nil {
		tb.Fatal(err)
	}
	signed, err := protocol.Sign(protocol.Announcement{
		Root: cid.NewCidV1(cid.DagProtobuf, h),
		Manifest: protocol.Manifest{Name: "pirate-talk", Description: "Talks like a pirate.", BaseFingerprint: "sha256:0123456789abcdef",
			BaseName: "stories260K", Rank: 8, Alpha: 16, TargetModules: []string{"q_proj", "v_proj"}},
		Size: 123456, Created: time.UnixMilli(1_790_000_000_123),
	}, key)
	if err != nil {
		tb.Fatal(err)
	}
	return signed
}

// openAsNode opens a room message the way the node does (room key, then
// the signed announcement inside) and checks what it accepts.
func openAsNode(t *testing.T, r *Room, sealed []byte) {
	plain, err := r.Open(sealed)
	if err != nil {
		if !errors.Is(err, ErrNotForRoom) {
			t.Fatalf("Open error %v is not ErrNotForRoom", err)
		}
		return
	}
	if len(sealed) > MaxSealed {
		t.Fatalf("opened a message of %d bytes, over MaxSealed %d", len(sealed), MaxSealed)
	}
	s, err := protocol.Open(plain)
	if err != nil {
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("error is not one line: %q", err)
		}
		return
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("opened announcement fails Validate: %v", err)
	}
}

// FuzzOpen feeds arbitrary gossip messages to a room: Open never panics,
// refuses with ErrNotForRoom, never opens a message over MaxSealed, and
// what it opens was sealed for this room only: another room refuses it and
// any changed byte makes it refuse.
func FuzzOpen(f *testing.F) {
	r, other := fuzzRooms(f)
	for _, msg := range [][]byte{signedSeed(f), nil, []byte(`{"not":"cbor"}`)} {
		s, err := r.Seal(msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s, uint16(0))
		if s, err = other.Seal(msg); err != nil {
			f.Fatal(err)
		}
		f.Add(s, uint16(3))
	}
	f.Add([]byte("short"), uint16(1))
	f.Fuzz(func(t *testing.T, sealed []byte, flip uint16) {
		openAsNode(t, r, sealed)
		plain, err := r.Open(sealed)
		if err != nil {
			return
		}
		if _, err := other.Open(sealed); err == nil {
			t.Fatal("another room opened this room's message")
		}
		bad := bytes.Clone(sealed)
		bad[int(flip)%len(bad)] ^= 1 << (flip >> 13)
		if _, err := r.Open(bad); err == nil {
			t.Fatalf("opened a message with byte %d changed", int(flip)%len(bad))
		}
		again, err := r.Seal(plain)
		if err != nil {
			t.Fatalf("re-sealing what opened: %v", err)
		}
		if got, err := r.Open(again); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("re-sealed message opens to %q, %v", got, err)
		}
	})
}

// FuzzRoomMessage seals arbitrary plaintexts (what a room member can
// send) and opens them as the node does: the seal round-trips every
// message up to the limit, refuses larger ones, and the announcement
// decoder never panics on what a member sent.
func FuzzRoomMessage(f *testing.F) {
	r, _ := fuzzRooms(f)
	f.Add(signedSeed(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, plain []byte) {
		sealed, err := r.Seal(plain)
		if err == nil && len(plain) > 16<<10 {
			t.Fatalf("sealed %d bytes, over the 16 KiB limit", len(plain))
		}
		if err != nil {
			if len(plain) <= 16<<10 {
				t.Fatalf("Seal refused %d bytes: %v", len(plain), err)
			}
			return
		}
		got, err := r.Open(sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("sealed message opens to %q, %v", got, err)
		}
		openAsNode(t, r, sealed)
	})
}

// FuzzCode: any typed room code is accepted or refused without panic; an
// accepted one holds the code's 20 bytes, and its canonical form (as
// NewCode prints) reads back to the same bytes.
func FuzzCode(f *testing.F) {
	f.Add(fuzzCode)
	f.Add(" aaaq eaye-audaocaj bifq\tydio b4ib ceqt\n")
	f.Add("AAAQ-EAYE")
	f.Fuzz(func(t *testing.T, code string) {
		b, err := normalise(code)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if len(b) != codeBytes {
			t.Fatalf("code of %d bytes", len(b))
		}
		s := b32.EncodeToString(b)
		var parts []string
		for i := 0; i < len(s); i += 4 {
			parts = append(parts, s[i:i+4])
		}
		again, err := normalise(strings.Join(parts, "-"))
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("canonical form %q reads back as %x, %v", strings.Join(parts, "-"), again, err)
		}
	})
}
