package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are what a server does wrong on purpose.
type Faults struct {
	// DropAfter, when > 0, makes the next blob response close the
	// connection after that many body bytes (once).
	DropAfter atomic.Int64
	// Corrupt flips a byte of every blob served.
	Corrupt atomic.Bool
	// Delay is slept after every 16 KiB of a blob body (slows downloads so
	// a test can kill the client mid-way).
	Delay atomic.Int64 // nanoseconds
	// RangeRequests counts blob requests that carried a Range header with
	// a start above 0 (resumed or parallel ranges).
	RangeRequests atomic.Int64
	// BlobBytes counts blob body bytes sent.
	BlobBytes atomic.Int64
}

// serveBlob serves data with Range support and the faults.
func serveBlob(w http.ResponseWriter, r *http.Request, data []byte, f *Faults) {
	start, end := int64(0), int64(len(data))
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		spec, ok := strings.CutPrefix(rg, "bytes=")
		a, b, ok2 := strings.Cut(spec, "-")
		s, err := strconv.ParseInt(a, 10, 64)
		if !ok || !ok2 || err != nil || s < 0 || s >= int64(len(data)) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			http.Error(w, "bad range", http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = s
		if b != "" {
			e, err := strconv.ParseInt(b, 10, 64)
			if err != nil || e < s {
				http.Error(w, "bad range", http.StatusRequestedRangeNotSatisfiable)
				return
			}
			end = min(e+1, int64(len(data)))
		}
		if start > 0 {
			f.RangeRequests.Add(1)
		}
		status = http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, len(data)))
	}
	body := data[start:end]
	if f.Corrupt.Load() && len(body) > 0 {
		body = append([]byte(nil), body...)
		body[len(body)/2] ^= 0xff
	}
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(status)
	drop := f.DropAfter.Load()
	if drop <= 0 || drop >= int64(len(body)) || !f.DropAfter.CompareAndSwap(drop, 0) {
		drop = 0
	}
	const step = 16 << 10
	for off := 0; off < len(body); off += step {
		chunk := body[off:min(off+step, len(body))]
		if drop > 0 && int64(off+len(chunk)) > drop {
			chunk = chunk[:max(drop-int64(off), 0)]
			_, _ = w.Write(chunk)
			f.BlobBytes.Add(int64(len(chunk)))
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			// Close the connection mid-body.
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
		f.BlobBytes.Add(int64(len(chunk)))
		if d := f.Delay.Load(); d > 0 {
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
			time.Sleep(time.Duration(d))
		}
	}
}

// Ollama is a fake Ollama registry: GET /v2/<ns>/<name>/manifests/<tag>
// (Docker v2 manifests) and /v2/<ns>/<name>/blobs/<digest>, which
// redirects (307, as the real registry does) to a CDN-like /cdn/ path.
type Ollama struct {
	*httptest.Server
	Faults
	mu        sync.Mutex
	manifests map[string][]byte // ns/name/tag
	blobs     map[string][]byte // digest
}

// NewOllama starts a fake registry on loopback; Close it when done.
func NewOllama() *Ollama {
	o := &Ollama{manifests: map[string][]byte{}, blobs: map[string][]byte{}}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	return o
}

// Digest is "sha256:<hex>" of data.
func Digest(data []byte) string {
	s := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(s[:])
}

// Add publishes a model ns/name:tag whose model layer is gguf, with a
// template and params layer and a config blob as Ollama's have. It returns
// the manifest JSON and the model layer's digest.
func (o *Ollama) Add(ns, name, tag string, gguf []byte) (manifest []byte, digest string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	tmpl := []byte("{{ .Prompt }}")
	params := []byte(`{"stop":["<end_of_turn>"]}`)
	cfg := []byte(`{"model_format":"gguf","model_family":"llama","file_type":"F32"}`)
	layer := func(mt string, b []byte) map[string]any {
		o.blobs[Digest(b)] = b
		return map[string]any{"mediaType": mt, "digest": Digest(b), "size": len(b)}
	}
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.docker.distribution.manifest.v2+json",
		"config":        layer("application/vnd.docker.container.image.v1+json", cfg),
		"layers": []any{
			layer("application/vnd.ollama.image.model", gguf),
			layer("application/vnd.ollama.image.template", tmpl),
			layer("application/vnd.ollama.image.params", params),
		},
	}
	manifest, _ = json.Marshal(m)
	o.manifests[ns+"/"+name+"/"+tag] = manifest
	return manifest, Digest(gguf)
}

func (o *Ollama) blob(d string) ([]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, ok := o.blobs[d]
	return b, ok
}

func (o *Ollama) manifest(key string) ([]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, ok := o.manifests[key]
	return b, ok
}

func (o *Ollama) serve(w http.ResponseWriter, r *http.Request) {
	if d, ok := strings.CutPrefix(r.URL.Path, "/cdn/"); ok {
		b, ok := o.blob(d)
		if !ok {
			http.NotFound(w, r)
			return
		}
		serveBlob(w, r, b, &o.Faults)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/"), "/")
	if len(parts) != 4 {
		http.NotFound(w, r)
		return
	}
	switch parts[2] {
	case "manifests":
		m, ok := o.manifest(parts[0] + "/" + parts[1] + "/" + parts[3])
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
			return
		}
		if !strings.Contains(r.Header.Get("Accept"), "application/vnd.docker.distribution.manifest.v2+json") {
			http.Error(w, "Accept must name the v2 manifest type", http.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
		w.Header().Set("Docker-Content-Digest", Digest(m))
		_, _ = w.Write(m)
	case "blobs":
		if _, ok := o.blob(parts[3]); !ok {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, "/cdn/"+parts[3], http.StatusTemporaryRedirect)
	default:
		http.NotFound(w, r)
	}
}

// HFRepo is one repository of the fake Hugging Face.
type HFRepo struct {
	Commit string
	Files  map[string][]byte
	// LFS names the files stored in LFS (the others are plain git files).
	LFS map[string]bool
	// Token, when set, makes the repo gated: requests without
	// "Authorization: Bearer Token" get 401, with another token 403.
	Token string
	// FilesOnly gates only the file downloads, as Hugging Face does for
	// gated models: the API (revision, tree) answers everyone.
	FilesOnly bool
}

// HF is a fake Hugging Face: /api/models/<repo>/revision/<rev>,
// /api/models/<repo>/tree/<rev> (with LFS metadata) and
// /<repo>/resolve/<rev>/<file>, which redirects LFS files (302, with
// X-Linked-Etag and X-Linked-Size) to a CDN-like /cdn-lfs/ path.
type HF struct {
	*httptest.Server
	Faults
	mu    sync.Mutex
	repos map[string]*HFRepo
}

// NewHF starts a fake Hugging Face on loopback; Close it when done.
func NewHF() *HF {
	h := &HF{repos: map[string]*HFRepo{}}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	return h
}

// Add publishes a repository.
func (h *HF) Add(repo string, r *HFRepo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Commit == "" {
		s := sha1.Sum([]byte(repo))
		r.Commit = hex.EncodeToString(s[:])
	}
	h.repos[repo] = r
}

// GitOID is the git blob id of data (what the tree API gives for files
// kept outside LFS).
func GitOID(data []byte) string {
	s := sha1.New()
	fmt.Fprintf(s, "blob %d\x00", len(data))
	s.Write(data)
	return hex.EncodeToString(s.Sum(nil))
}

func (h *HF) repoOf(path string) (string, *HFRepo, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	parts := strings.SplitN(path, "/", 3)
	if len(parts) < 2 {
		return "", nil, ""
	}
	name := parts[0] + "/" + parts[1]
	rest := ""
	if len(parts) == 3 {
		rest = parts[2]
	}
	return name, h.repos[name], rest
}

func (h *HF) auth(w http.ResponseWriter, r *http.Request, repo *HFRepo) bool {
	if repo.Token == "" {
		return true
	}
	got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case got == repo.Token:
		return true
	case got == "":
		w.Header().Set("X-Error-Code", "GatedRepo")
		http.Error(w, `{"error":"Access to model is restricted. You must have access to it and be authenticated to access it. Please log in."}`, http.StatusUnauthorized)
	default:
		w.Header().Set("X-Error-Code", "GatedRepo")
		http.Error(w, `{"error":"Access to model is restricted and you are not in the authorized list."}`, http.StatusForbidden)
	}
	return false
}

func (h *HF) serve(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	if sha, ok := strings.CutPrefix(p, "cdn-lfs/"); ok {
		h.mu.Lock()
		var data []byte
		for _, repo := range h.repos {
			for f, b := range repo.Files {
				if repo.LFS[f] && lfsOID(b) == sha {
					data = b
				}
			}
		}
		h.mu.Unlock()
		if data == nil {
			http.NotFound(w, r)
			return
		}
		serveBlob(w, r, data, &h.Faults)
		return
	}
	if api, ok := strings.CutPrefix(p, "api/models/"); ok {
		name, repo, rest := h.repoOf(api)
		if repo == nil {
			http.Error(w, `{"error":"Repository not found"}`, http.StatusUnauthorized)
			return
		}
		if !repo.FilesOnly && !h.auth(w, r, repo) {
			return
		}
		kind, rev, _ := strings.Cut(rest, "/")
		if rev != "main" && rev != repo.Commit {
			http.Error(w, `{"error":"Invalid rev id"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch kind {
		case "revision":
			_ = json.NewEncoder(w).Encode(map[string]any{"id": name, "sha": repo.Commit})
		case "tree":
			var es []map[string]any
			for f, b := range repo.Files {
				e := map[string]any{"type": "file", "path": f, "size": len(b), "oid": GitOID(b)}
				if repo.LFS[f] {
					e["lfs"] = map[string]any{"oid": lfsOID(b), "size": len(b), "pointerSize": 134}
				}
				es = append(es, e)
			}
			_ = json.NewEncoder(w).Encode(es)
		default:
			http.NotFound(w, r)
		}
		return
	}
	name, repo, rest := h.repoOf(p)
	kind, rest, _ := strings.Cut(rest, "/")
	rev, file, _ := strings.Cut(rest, "/")
	if repo == nil || kind != "resolve" {
		http.Error(w, "Repository not found", http.StatusUnauthorized)
		return
	}
	if !h.auth(w, r, repo) {
		return
	}
	b, ok := repo.Files[file]
	if !ok || (rev != "main" && rev != repo.Commit) {
		w.Header().Set("X-Error-Code", "EntryNotFound")
		http.Error(w, "Entry not found", http.StatusNotFound)
		return
	}
	w.Header().Set("X-Repo-Commit", repo.Commit)
	if repo.LFS[file] {
		w.Header().Set("X-Linked-Etag", `"`+lfsOID(b)+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(b)))
		w.Header().Set("ETag", `"`+lfsOID(b)+`"`)
		http.Redirect(w, r, "/cdn-lfs/"+lfsOID(b)+"?repo="+name, http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+GitOID(b)+`"`)
	serveBlob(w, r, b, &Faults{})
}

func lfsOID(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
