package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recordingSwarm counts what the API asked of the swarm.
type recordingSwarm struct {
	fakeSwarm
	pulls int
}

func (r *recordingSwarm) PullAdapter(ctx context.Context, cid string, accept Accept) (string, error) {
	r.pulls++
	return r.fakeSwarm.PullAdapter(ctx, cid, accept)
}

// forged is one request a hostile page (or a confused client) can make.
type forged struct {
	what                     string
	method, path, ctype      string
	origin, secFetch, host   string
	body                     string
	wantCode                 int
	wantSays                 string
	multipartFile, multiName string
}

func (c forged) request(t *testing.T) *http.Request {
	t.Helper()
	body := c.body
	ct := c.ctype
	if c.multipartFile != "" {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		_ = mw.WriteField("name", c.multiName)
		fw, _ := mw.CreateFormFile("files", "evil.jsonl")
		_, _ = io.WriteString(fw, c.multipartFile)
		_ = mw.Close()
		body, ct = b.String(), mw.FormDataContentType()
	}
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:40000"
	req.Host = "127.0.0.1:11435"
	if c.host != "" {
		req.Host = c.host
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	if c.secFetch != "" {
		req.Header.Set("Sec-Fetch-Site", c.secFetch)
	}
	return req
}

// TestCrossSiteRequestsRefused: what a page of another site can send
// without a CORS preflight (text/plain, form and multipart bodies; from
// another loopback port, another site or a sandboxed frame) is refused,
// and nothing is trained, loaded, uploaded, pulled or published.
func TestCrossSiteRequestsRefused(t *testing.T) {
	sw := &recordingSwarm{fakeSwarm: fakeSwarm{dirs: map[string]string{}, tmp: t.TempDir()}}
	b := randomBase(t, 1)
	dir := t.TempDir()
	s, err := New(Config{Base: b, AdapterDir: dir, Swarm: sw})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.jsonl")
	if err := os.WriteFile(secret, []byte(qa(24)), 0o600); err != nil {
		t.Fatal(err)
	}
	victim := writeAdapter(t, outside, "victim", b, 7)
	sw.dirs["bafyevil"] = writeAdapter(t, t.TempDir(), "evil", b, 8)
	// One adapter is loaded by the user: a forged publish must not send it.
	mine := writeAdapter(t, dir, "mine", b, 9)
	if _, err := s.loadDir(mine, "", ""); err != nil {
		t.Fatal(err)
	}

	train := `{"data": "` + secret + `", "name": "pwned"}`
	load := `{"path": "` + victim + `", "name": "pwned"}`
	form := `data=` + secret + `&name=pwned`
	const (
		otherPort = "http://127.0.0.1:8080"
		otherSite = "https://evil.example"
	)
	cases := []forged{
		{what: "text/plain from a sandboxed frame", method: "POST", path: "/api/train", ctype: "text/plain", origin: "null", secFetch: "cross-site", body: train, wantCode: 403, wantSays: "null"},
		{what: "text/plain from another loopback port", method: "POST", path: "/api/train", ctype: "text/plain;charset=UTF-8", origin: otherPort, secFetch: "same-site", body: train, wantCode: 403, wantSays: otherPort},
		{what: "text/plain from another site", method: "POST", path: "/api/train", ctype: "text/plain", origin: otherSite, secFetch: "cross-site", body: train, wantCode: 403, wantSays: otherSite},
		{what: "text/plain without Origin (old browser)", method: "POST", path: "/api/train", ctype: "text/plain", body: train, wantCode: 415, wantSays: "application/json"},
		{what: "form post from another site", method: "POST", path: "/api/adapters/load", ctype: "application/x-www-form-urlencoded", origin: otherSite, body: form, wantCode: 403, wantSays: otherSite},
		{what: "form post without Origin", method: "POST", path: "/api/adapters/load", ctype: "application/x-www-form-urlencoded", body: load, wantCode: 415, wantSays: "application/json"},
		{what: "text/plain load from a sandboxed frame", method: "POST", path: "/api/adapters/load", ctype: "text/plain", origin: "null", body: load, wantCode: 403, wantSays: "null"},
		{what: "no body type at all", method: "POST", path: "/api/adapters/load", body: load, wantCode: 415, wantSays: "application/json"},
		{what: "pull, Sec-Fetch-Site only", method: "POST", path: "/api/swarm/pull", ctype: "text/plain", secFetch: "cross-site", body: `{"cid": "bafyevil"}`, wantCode: 403, wantSays: "cross-site"},
		{what: "pull as JSON but same-site", method: "POST", path: "/api/swarm/pull", ctype: "application/json", secFetch: "same-site", body: `{"cid": "bafyevil"}`, wantCode: 403, wantSays: "same-site"},
		{what: "publish from another port", method: "POST", path: "/api/swarm/publish", ctype: "text/plain", origin: otherPort, body: `{"name": "mine"}`, wantCode: 403, wantSays: otherPort},
		{what: "publish without a type", method: "POST", path: "/api/swarm/publish", body: `{"name": "mine"}`, wantCode: 415, wantSays: "application/json"},
		{what: "unload from a sandboxed frame", method: "POST", path: "/api/adapters/unload", ctype: "text/plain", origin: "null", body: `{"name": "mine"}`, wantCode: 403},
		{what: "multipart upload from another port", method: "POST", path: "/api/train", origin: otherPort, multipartFile: qa(24), multiName: "pwned", wantCode: 403},
		{what: "multipart upload from a sandboxed frame", method: "POST", path: "/api/train", origin: "null", multipartFile: qa(24), multiName: "pwned", wantCode: 403},
		{what: "multipart upload without Origin", method: "POST", path: "/api/train/plan", multipartFile: qa(24), multiName: "pwned", wantCode: 403, wantSays: "own page"},
		{what: "JSON through DNS rebinding", method: "POST", path: "/api/train", ctype: "application/json", host: "rebind.evil.example:11435", origin: "http://rebind.evil.example:11435", body: train, wantCode: 403, wantSays: "rebind.evil.example"},
		{what: "stop from another site", method: "POST", path: "/api/train/0123456789abcdef/stop", origin: otherSite, wantCode: 403},
		{what: "preflight from another port", method: "OPTIONS", path: "/api/train", origin: otherPort, wantCode: 403},
		{what: "reading the API from another port", method: "GET", path: "/api/adapters", origin: otherPort, secFetch: "same-site", wantCode: 403},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, c.request(t))
		var e apiError
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != c.wantCode || e.Error == "" || !strings.Contains(e.Error, c.wantSays) {
			t.Errorf("%s: %s %s got %d %q, want %d mentioning %q", c.what, c.method, c.path, w.Code, e.Error, c.wantCode, c.wantSays)
		}
		if w.Header().Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: the answer allows another origin to read it", c.what)
		}
	}
	if sw.pulls != 0 || len(sw.published) != 0 {
		t.Errorf("forged requests reached the swarm: %d pulls, %d publishes", sw.pulls, len(sw.published))
	}
	if l := s.reg.List(); len(l) != 1 || l[0].Name != "mine" {
		t.Errorf("forged requests changed the loaded adapters: %+v", l)
	}
	if id := s.jobs.Running(); id != "" || s.jobs.Count() != 0 {
		t.Errorf("a forged request started training job %q", id)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, ".uploads")); len(ents) != 0 {
		t.Errorf("forged uploads were stored: %d entries", len(ents))
	}
}

// TestOwnPageAndCLIAllowed: the node's own page (Origin = scheme, host and
// port it serves on; Sec-Fetch-Site same-origin), and clients that send
// no Origin (the CLI, curl) with JSON bodies keep working.
func TestOwnPageAndCLIAllowed(t *testing.T) {
	f := newFixture(t, randomBase(t, 1), nil)
	writeAdapter(t, f.dir, "alpha", f.b, 1)
	do := func(method, path, ctype, origin, secFetch string, body io.Reader) (int, string) {
		req, _ := http.NewRequest(method, f.ts.URL+path, body)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if secFetch != "" {
			req.Header.Set("Sec-Fetch-Site", secFetch)
		}
		resp, err := f.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	own := f.ts.URL // http://127.0.0.1:PORT
	if c, body := do("POST", "/api/adapters/load", "application/json; charset=utf-8", own, "same-origin", strings.NewReader(`{"path": "alpha"}`)); c != 200 {
		t.Fatalf("load from the node's own page: %d %s", c, body)
	}
	if c, body := do("POST", "/api/adapters/unload", "application/json", "", "", strings.NewReader(`{"name": "alpha"}`)); c != 200 {
		t.Fatalf("unload from a client without Origin: %d %s", c, body)
	}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("files", "facts.jsonl")
	_, _ = io.WriteString(fw, qa(24))
	_ = mw.Close()
	if c, body := do("POST", "/api/train/plan", mw.FormDataContentType(), own, "same-origin", &mp); c != 200 {
		t.Fatalf("upload from the node's own page: %d %s", c, body)
	}
	// localhost and 127.0.0.1 are different origins: each page may call
	// the node under its own name only.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(own, "http://"))
	if c, body := do("GET", "/api/info", "", "http://localhost:"+port, "", nil); c != 403 {
		t.Fatalf("Origin localhost on a request to 127.0.0.1: %d %s", c, body)
	}
	// Following a link from another site to the UI is fine; reading the
	// API from there is not.
	if c, body := do("GET", "/", "", "", "cross-site", nil); c != 200 {
		t.Fatalf("navigation to the UI from another site: %d %s", c, body)
	}
	if c, _ := do("GET", "/api/info", "", "", "cross-site", nil); c != 403 {
		t.Fatalf("cross-site GET of the API: %d", c)
	}
	if c, _ := do("GET", "/api/info", "", "", "none", nil); c != 200 {
		t.Fatalf("GET typed into the address bar: %d", c)
	}
}

// TestHostHeader: a name that is not this computer's is refused (DNS
// rebinding); loopback names, the address the connection arrived on and
// Config.Hosts are accepted.
func TestHostHeader(t *testing.T) {
	b := randomBase(t, 1)
	s, err := New(Config{Base: b, AdapterDir: t.TempDir(), Hosts: []string{"mybox.lan"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 11435}
	for host, want := range map[string]int{
		"127.0.0.1:11435": 200, "localhost:11435": 200, "[::1]:11435": 200, "127.0.0.1": 200, "LOCALHOST:1": 200,
		"mybox.lan:11435": 200, "192.0.2.1:11435": 200,
		"192.0.2.9:11435": 403, "evil.example:11435": 403, "localhost.evil.example": 403, "": 403, "0.0.0.0:11435": 403,
	} {
		req := httptest.NewRequest("GET", "/api/info", nil)
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, net.Addr(local)))
		req.RemoteAddr, req.Host = "127.0.0.1:5000", host
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d (%s)", host, w.Code, want, w.Body)
		}
	}
}

// TestPathsConfined: without the token, paths in request bodies stay in
// the adapters and uploads folders (no "../", no absolute path elsewhere,
// no symbolic link out); with it, any path goes.
func TestPathsConfined(t *testing.T) {
	f := newFixture(t, randomBase(t, 1), func(c *Config) { c.LocalToken = "local-secret" })
	outside := t.TempDir()
	writeAdapter(t, outside, "far", f.b, 1)
	secret := filepath.Join(outside, "secret.jsonl")
	if err := os.WriteFile(secret, []byte(qa(24)), 0o600); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(f.dir, filepath.Join(outside, "far"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "far"), filepath.Join(f.dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(f.dir, "data-link.jsonl")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(outside, "far"), rel, "link", f.dir + "/../" + filepath.Base(outside) + "/far"} {
		f.wantErr(t, 403, "POST", "/api/adapters/load", LoadRequest{Path: p, Name: "x"}, "outside", "token")
	}
	for _, p := range []string{secret, filepath.Join(f.dir, "data-link.jsonl"), "/etc/passwd"} {
		f.wantErr(t, 403, "POST", "/api/train/plan", TrainRequest{Data: p}, "outside")
	}
	if len(f.s.reg.List()) != 0 {
		t.Fatalf("an adapter from outside was loaded: %+v", f.s.reg.List())
	}
	// Inside the adapters folder: fine.
	inside := filepath.Join(f.dir, "mine.jsonl")
	if err := os.WriteFile(inside, []byte(qa(24)), 0o644); err != nil {
		t.Fatal(err)
	}
	if c := f.call(t, "POST", "/api/train/plan", TrainRequest{Data: inside}, nil); c != 200 {
		t.Fatalf("plan on data inside the adapters folder: %d", c)
	}
	// With the token, anywhere.
	withToken := func(path string, body any) int {
		bb, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", f.ts.URL+path, bytes.NewReader(bb))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer local-secret")
		resp, err := f.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := withToken("/api/adapters/load", LoadRequest{Path: filepath.Join(outside, "far")}); c != 200 {
		t.Fatalf("load from outside with the token: %d", c)
	}
	if c := withToken("/api/train/plan", TrainRequest{Data: secret}); c != 200 {
		t.Fatalf("plan on data outside with the token: %d", c)
	}
}

// TestSecurityHeaders: every answer forbids framing and sniffing, the UI's
// page included, refused requests too.
func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, randomBase(t, 1), func(c *Config) {
		c.UI = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html></html>")
		})
	})
	for _, c := range []struct {
		path, origin string
		code         int
	}{{"/", "", 200}, {"/api/info", "", 200}, {"/api/info", "null", 403}} {
		req, _ := http.NewRequest("GET", f.ts.URL+c.path, nil)
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		resp, err := f.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != c.code || h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cross-Origin-Resource-Policy") != "same-origin" {
			t.Errorf("GET %s (Origin %q): %d, headers %v", c.path, c.origin, resp.StatusCode, h)
		}
	}
}
