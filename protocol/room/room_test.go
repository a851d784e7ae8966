package room

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRoundTripAndIsolation(t *testing.T) {
	code, err := NewCode()
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != 39 || strings.Count(code, "-") != 7 {
		t.Fatalf("code %q: want 8 groups of 4", code)
	}
	a, err := Join(code)
	if err != nil {
		t.Fatal(err)
	}
	// The same code typed carelessly joins the same room.
	b, err := Join(" " + strings.ToLower(strings.ReplaceAll(code, "-", " ")) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if a.Topic() != b.Topic() || !strings.HasPrefix(a.Topic(), "/orchmind/room/") {
		t.Fatalf("topics %q and %q", a.Topic(), b.Topic())
	}
	msg := []byte(`{"name":"secret-adapter","cid":"bafy..."}`)
	sealed, err := a.Seal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret-adapter")) || bytes.Contains(sealed, []byte("bafy")) {
		t.Fatal("the sealed announcement shows its contents")
	}
	got, err := b.Open(sealed)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open: %q, %v", got, err)
	}
	other, _ := NewCode()
	c, err := Join(other)
	if err != nil {
		t.Fatal(err)
	}
	if c.Topic() == a.Topic() {
		t.Fatal("two rooms share a topic")
	}
	if _, err := c.Open(sealed); !errors.Is(err, ErrNotForRoom) {
		t.Fatalf("another room opened the message: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := a.Open(sealed); !errors.Is(err, ErrNotForRoom) {
		t.Fatal("a tampered message opened")
	}
	for _, bad := range [][]byte{nil, {1, 2, 3}, make([]byte, MaxSealed+1)} {
		if _, err := a.Open(bad); !errors.Is(err, ErrNotForRoom) {
			t.Fatalf("garbage of %d bytes: %v", len(bad), err)
		}
	}
}

func TestBadCodes(t *testing.T) {
	for _, code := range []string{"", "hello", "AAAA-AAAA", strings.Repeat("1", 32)} {
		if _, err := Join(code); err == nil || !strings.Contains(err.Error(), "room create") {
			t.Errorf("code %q: got %v", code, err)
		}
	}
}
