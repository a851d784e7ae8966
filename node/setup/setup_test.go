package setup

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/engine/hub"
	"orchmind/engine/hub/hubtest"
	"orchmind/node/config"
)

func post(t *testing.T, url, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestSetupPullAndUse drives the first-run API as the page does: list the
// bases (recommended ones with sizes and fit), pull one from a local
// registry with server-sent progress, make it the base.
func TestSetupPullAndUse(t *testing.T) {
	reg := hubtest.NewOllama()
	defer reg.Close()
	blob := make([]byte, 300<<10)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	reg.Add("library", "gemma3", "270m", blob)
	data := t.TempDir()
	h := &hub.Hub{ModelsDir: filepath.Join(data, "models"), OllamaRegistry: reg.URL}
	chosen := make(chan string, 1)
	s := New(Config{Hub: h, DataDir: data, Free: func() int64 { return 1 << 30 }, Chosen: func(sp string) { chosen <- sp }})
	srv := httptest.NewServer(s)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/setup/models")
	if err != nil {
		t.Fatal(err)
	}
	var m Models
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(m.Local) != 0 || len(m.Recommended) != len(hub.Recommended) || m.Free != 1<<30 {
		t.Fatalf("models: %+v", m)
	}
	for _, r := range m.Recommended {
		want := "yes"
		if r.Need > 1<<30 {
			want = "no"
		}
		if r.Size <= 0 || r.Fits != want || !strings.HasPrefix(r.Spec, "ollama:") {
			t.Errorf("recommended %+v", r)
		}
	}

	resp = post(t, srv.URL+"/api/setup/pull", `{"name":"gemma3:270m"}`, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("pull: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var events []string
	var done struct{ Spec, Path string }
	var lastDone, total int64
	sc := bufio.NewScanner(resp.Body)
	ev := ""
	for sc.Scan() {
		line := sc.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			ev = e
			events = append(events, e)
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			switch ev {
			case "progress":
				var p struct{ Done, Total int64 }
				_ = json.Unmarshal([]byte(d), &p)
				lastDone, total = p.Done, p.Total
			case "done":
				_ = json.Unmarshal([]byte(d), &done)
			case "error":
				t.Fatalf("pull error: %s", d)
			}
		}
	}
	resp.Body.Close()
	if len(events) < 2 || events[len(events)-1] != "done" || lastDone != total || total < int64(len(blob)) {
		t.Fatalf("events %v, progress %d/%d", events, lastDone, total)
	}
	if done.Spec != "ollama:gemma3:270m" {
		t.Fatalf("done: %+v", done)
	}
	if b, err := os.ReadFile(done.Path); err != nil || len(b) != len(blob) {
		t.Fatalf("pulled file: %v", err)
	}

	// Now it is listed as here, and can be made the base.
	resp, _ = http.Get(srv.URL + "/api/setup/models")
	_ = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if len(m.Local) != 1 || m.Local[0].Spec != "ollama:gemma3:270m" || !m.Recommended[0].Here {
		t.Fatalf("after pull: %+v", m)
	}
	resp = post(t, srv.URL+"/api/setup/use", `{"name":"ollama:gemma3:270m"}`, nil)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("use: %s", resp.Status)
	}
	if sp := <-chosen; sp != "ollama:gemma3:270m" {
		t.Fatalf("chosen %q", sp)
	}
	c, _, err := config.Load(data)
	if err != nil || c.Model != "ollama:gemma3:270m" {
		t.Fatalf("config: %+v %v", c, err)
	}
	resp = post(t, srv.URL+"/api/setup/use", `{"name":"ollama:missing:1b"}`, nil)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("use of a missing model: %s", resp.Status)
	}
	resp, _ = http.Get(srv.URL + "/")
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("page: %s %q", resp.Status, resp.Header.Get("Content-Security-Policy"))
	}
}

// TestSetupRefusesOtherPages: another site's page, a non-loopback Host
// (DNS rebinding) or a form post cannot start a download.
func TestSetupRefusesOtherPages(t *testing.T) {
	s := New(Config{Hub: &hub.Hub{ModelsDir: t.TempDir()}, DataDir: t.TempDir()})
	srv := httptest.NewServer(s)
	defer srv.Close()
	for name, c := range map[string]struct {
		hdr  map[string]string
		code int
	}{
		"other origin":   {map[string]string{"Origin": "http://evil.example"}, 403},
		"rebinding host": {map[string]string{"Host": "evil.example:80"}, 403},
		"cross-site":     {map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		"form post":      {map[string]string{"Content-Type": "text/plain"}, 415},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/setup/pull", strings.NewReader(`{"name":"gemma3:1b"}`))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range c.hdr {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s: %s, want %d", name, resp.Status, c.code)
		}
	}
}
