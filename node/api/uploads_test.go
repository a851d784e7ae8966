package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// uploadFiles posts files (name → content) to /api/train/plan as the web UI
// does and returns the status, the upload id and the error message.
func (f *fixture) uploadFiles(t *testing.T, files map[string]string) (int, string, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for name, content := range files {
		fw, _ := mw.CreateFormFile("files", name)
		_, _ = io.WriteString(fw, content)
	}
	_ = mw.Close()
	req, _ := http.NewRequest("POST", f.ts.URL+"/api/train/plan", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", f.ts.URL)
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Upload string `json:"upload"`
		Error  string `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("upload: %d %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, out.Upload, out.Error
}

// uploadDirs lists the entries of the uploads folder.
func uploadDirs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, ".uploads"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestUploadsCapped: the uploads folder holds at most UploadsMaxCount
// uploads and UploadsMaxBytes bytes; past that the API answers 507 with a
// message, and over MaxUpload 413; nothing half-written stays.
func TestUploadsCapped(t *testing.T) {
	data := qa(24) // about 1 KiB
	t.Run("count", func(t *testing.T) {
		f := newFixture(t, randomBase(t, 1), func(c *Config) { c.UploadsMaxCount = 2 })
		for i := range 2 {
			if c, id, msg := f.uploadFiles(t, map[string]string{"a.jsonl": data}); c != 200 || id == "" {
				t.Fatalf("upload %d: %d %s", i, c, msg)
			}
		}
		c, _, msg := f.uploadFiles(t, map[string]string{"a.jsonl": data})
		if c != http.StatusInsufficientStorage || !strings.Contains(msg, "2 uploads") {
			t.Fatalf("third upload: %d %q, want 507 saying the folder holds 2 uploads", c, msg)
		}
		if d := uploadDirs(t, f.dir); len(d) != 2 {
			t.Fatalf("uploads folder holds %v", d)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		f := newFixture(t, randomBase(t, 1), func(c *Config) { c.UploadsMaxBytes = 6 << 10; c.MaxUpload = 1 << 20 })
		big := qa(200)[:4<<10] // 4 KiB
		if c, _, msg := f.uploadFiles(t, map[string]string{"a.jsonl": qa(24)}); c != 200 {
			t.Fatalf("first upload: %d %s", c, msg)
		}
		c, _, msg := f.uploadFiles(t, map[string]string{"b.jsonl": big + big})
		if c != http.StatusInsufficientStorage || !strings.Contains(msg, "uploads folder") {
			t.Fatalf("upload past the folder's cap: %d %q, want 507", c, msg)
		}
		if d := uploadDirs(t, f.dir); len(d) != 1 {
			t.Fatalf("a refused upload left files: %v", d)
		}
	})
	t.Run("one upload", func(t *testing.T) {
		f := newFixture(t, randomBase(t, 1), func(c *Config) { c.MaxUpload = 2 << 10 })
		c, _, msg := f.uploadFiles(t, map[string]string{"a.jsonl": strings.Repeat("x", 8<<10)})
		if c != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "larger") {
			t.Fatalf("upload over MaxUpload: %d %q, want 413", c, msg)
		}
		f2 := newFixture(t, randomBase(t, 1), nil)
		f2.s.up.maxFiles = 5 // maxUploadFiles in production; fewer fsyncs here
		many := map[string]string{}
		for i := range f2.s.up.maxFiles + 1 {
			many[fmt.Sprintf("f%d.txt", i)] = "x"
		}
		c, _, msg = f2.uploadFiles(t, many)
		if c != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "files") {
			t.Fatalf("upload of %d files: %d %q, want 413", len(many), c, msg)
		}
		if d := uploadDirs(t, f.dir); len(d) != 0 {
			t.Fatalf("a refused upload left files: %v", d)
		}
		if d := uploadDirs(t, f2.dir); len(d) != 0 {
			t.Fatalf("a refused upload left files: %v", d)
		}
	})
}

// TestUploadsExpire: uploads unused for UploadTTL are deleted, at start
// and by the periodic sweep; one that is used is kept, and one left
// half-received by a crash is deleted at start.
func TestUploadsExpire(t *testing.T) {
	dir := t.TempDir()
	ups := filepath.Join(dir, ".uploads")
	old := time.Now().Add(-48 * time.Hour)
	for _, name := range []string{"00000000000000aa", partPrefix + "00000000000000bb", "00000000000000cc"} {
		if err := os.MkdirAll(filepath.Join(ups, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ups, name, "x.jsonl"), []byte(qa(4)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.Chtimes(filepath.Join(ups, "00000000000000aa"), old, old)
	f := newFixture(t, randomBase(t, 1), func(c *Config) { c.AdapterDir = dir })
	if d := uploadDirs(t, dir); len(d) != 1 || d[0] != "00000000000000cc" {
		t.Fatalf("after start the uploads folder holds %v, want only the recent complete upload", d)
	}
	c, id, msg := f.uploadFiles(t, map[string]string{"a.jsonl": qa(24)})
	if c != 200 {
		t.Fatalf("upload: %d %s", c, msg)
	}
	// Both age past the TTL; the one a handler holds survives the sweep.
	for _, name := range []string{id, "00000000000000cc"} {
		_ = os.Chtimes(filepath.Join(ups, name), old, old)
	}
	release := f.s.up.hold(id)
	f.s.up.sweep(false)
	if d := uploadDirs(t, dir); len(d) != 1 || d[0] != id {
		t.Fatalf("after the sweep the uploads folder holds %v, want only %s (in use)", d, id)
	}
	release()
	// Using an upload restarts its clock.
	if c := f.call(t, "POST", "/api/train/plan", TrainRequest{Upload: id}, nil); c != 200 {
		t.Fatalf("plan on upload %s: %d", id, c)
	}
	f.s.up.sweep(false)
	if d := uploadDirs(t, dir); len(d) != 1 {
		t.Fatalf("a just-used upload was deleted: %v", d)
	}
	_ = os.Chtimes(filepath.Join(ups, id), old, old)
	f.s.up.sweep(false)
	f.wantErr(t, 404, "POST", "/api/train/plan", TrainRequest{Upload: id}, id, "send the files again")
}
