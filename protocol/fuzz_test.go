package protocol

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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

// FuzzCatalogue checks the catalogue request and response readers on
// arbitrary streams.
func FuzzCatalogue(f *testing.F) {
	var req bytes.Buffer
	_ = WriteCatalogueRequest(&req, CatalogueRequest{BaseFingerprint: "sha256:ab", Limit: 10})
	f.Add(req.Bytes())
	var resp bytes.Buffer
	_ = WriteCatalogueResponse(&resp, seedAnnouncements(f))
	f.Add(resp.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := ReadCatalogueRequest(bytes.NewReader(data)); err == nil {
			if r.Limit < 0 || r.Limit > MaxCatalogueLimit || len(r.BaseFingerprint) > MaxFingerprintLen {
				t.Fatalf("accepted request %+v", r)
			}
		}
		items, err := ReadCatalogueResponse(bytes.NewReader(data), 2)
		if err == nil && len(items) > 2 {
			t.Fatalf("%d items over the limit", len(items))
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
