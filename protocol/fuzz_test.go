package protocol

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// seedAnnouncements returns valid signed announcements used as fuzz seeds.
func seedAnnouncements(t testing.TB) [][]byte {
	a := testAnnouncement(t)
	full, err := Sign(a, testKey(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	a.Manifest = Manifest{Name: "m", BaseFingerprint: "b", Rank: 1, Alpha: 1}
	minimal, err := Sign(a, testKey(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{full, minimal}
}

// FuzzDecode checks that Decode and Open never panic, and that anything
// Open accepts re-decodes to the same announcement and satisfies the limits.
// Seeds are in testdata/fuzz/FuzzDecode (regenerate with
// ORCHMIND_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./protocol/).
func FuzzDecode(f *testing.F) {
	for _, s := range seedAnnouncements(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			return
		}
		if len(data) > MaxAnnouncementSize {
			t.Fatalf("accepted %d bytes", len(data))
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("decoded announcement fails Validate: %v", err)
		}
		if err := Verify(s); err != nil {
			return
		}
		again, err := Open(s.Raw)
		if err != nil || !bytes.Equal(again.Payload, s.Payload) || again.Root != s.Root || again.Author != s.Author {
			t.Fatalf("re-open differs: %v", err)
		}
	})
}

// oneLine fails t when err's message spans lines.
func oneLine(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}

// FuzzCatalogueRequest reads a catalogue request from arbitrary bytes: no
// panic, one-line errors, nothing outside the limits accepted, and what is
// accepted is written back and read again unchanged.
func FuzzCatalogueRequest(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteCatalogueRequest(&buf, CatalogueRequest{BaseFingerprint: "sha256:0123456789abcdef", Limit: 50})
	f.Add(buf.Bytes())
	buf.Reset()
	_ = WriteCatalogueRequest(&buf, CatalogueRequest{})
	f.Add(buf.Bytes())
	f.Add([]byte("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"))
	f.Add([]byte("\x10{\"base\":\"b\",\"limit\":7}")) // the JSON request of early builds
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ReadCatalogueRequest(bytes.NewReader(data))
		if err != nil {
			oneLine(t, err)
			return
		}
		if req.Limit < 0 || req.Limit > MaxCatalogueLimit || len(req.BaseFingerprint) > MaxFingerprintLen || req.Version.Major != VersionMajor {
			t.Fatalf("accepted request %+v", req)
		}
		if n := req.EffectiveLimit(); n < 1 || n > MaxCatalogueLimit {
			t.Fatalf("effective limit %d", n)
		}
		var out bytes.Buffer
		if err := WriteCatalogueRequest(&out, req); err != nil {
			t.Fatalf("writing back %+v: %v", req, err)
		}
		again, err := ReadCatalogueRequest(&out)
		if err != nil || again.BaseFingerprint != req.BaseFingerprint || again.Limit != req.Limit {
			t.Fatalf("request %+v reads back as %+v, %v", req, again, err)
		}
	})
}

// FuzzCatalogueResponse reads catalogue responses from arbitrary bytes: no
// panic, one-line errors, at most limit entries (0: MaxCatalogueLimit),
// none empty or over MaxAnnouncementSize, a truncated response refused, and
// what is accepted written back to the same entries.
func FuzzCatalogueResponse(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteCatalogueResponse(&buf, seedAnnouncements(f))
	f.Add(buf.Bytes(), uint8(2))
	f.Add([]byte{0}, uint8(0))
	f.Add([]byte{3, 'a', 'b', 'c', 1, 'x', 0}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, limit uint8) {
		want := int(limit)
		if want == 0 {
			want = MaxCatalogueLimit
		}
		items, err := ReadCatalogueResponse(bytes.NewReader(data), int(limit))
		if err != nil {
			oneLine(t, err)
			return
		}
		if len(items) > want {
			t.Fatalf("%d entries, limit %d", len(items), want)
		}
		for _, it := range items {
			if len(it) == 0 || len(it) > MaxAnnouncementSize {
				t.Fatalf("entry of %d bytes", len(it))
			}
		}
		var out bytes.Buffer
		if err := WriteCatalogueResponse(&out, items); err != nil {
			t.Fatal(err)
		}
		// Lengths may arrive as non-minimal varints (harmless: the frames
		// carry signed bytes), so compare values, not bytes.
		again, err := ReadCatalogueResponse(bytes.NewReader(out.Bytes()), int(limit))
		if err != nil || !reflect.DeepEqual(again, items) {
			t.Fatalf("written back, reads as %d entries (%v), was %d", len(again), err, len(items))
		}
		if _, err := ReadCatalogueResponse(bytes.NewReader(out.Bytes()[:out.Len()-1]), int(limit)); err == nil {
			t.Fatal("accepted a response without its end frame")
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpus files; it only runs when
// ORCHMIND_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ORCHMIND_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set ORCHMIND_WRITE_FUZZ_SEEDS=1 to regenerate testdata/fuzz seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := seedAnnouncements(t)
	// Also a tampered one (decodes, fails Verify) and a truncated one.
	tampered := bytes.Clone(seeds[0])
	tampered[len(tampered)-1] ^= 1
	seeds = append(seeds, tampered, seeds[1][:len(seeds[1])/2])
	for i, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
