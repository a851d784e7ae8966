package setup

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"orchmind/engine/hub"
	"orchmind/node/config"
)

//go:embed static
var files embed.FS

// Config is what the setup page needs.
type Config struct {
	Hub *hub.Hub
	// DataDir holds the node's config.json, where the chosen model goes.
	DataDir string
	// Free returns the memory free for training (0: unknown).
	Free func() int64
	// Chosen is called once a model is saved as the node's base.
	Chosen func(spec string)
	Log    *slog.Logger
}

// Server serves the setup page and its API.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	mu      sync.Mutex
	pulling map[string]bool
}

// New returns the setup server.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Free == nil {
		cfg.Free = func() int64 { return 0 }
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), pulling: map[string]bool{}}
	sub, _ := fs.Sub(files, "static")
	s.mux.Handle("GET /", http.FileServerFS(sub))
	s.mux.HandleFunc("GET /api/info", s.info)
	s.mux.HandleFunc("GET /api/setup/models", s.models)
	s.mux.HandleFunc("POST /api/setup/pull", s.pull)
	s.mux.HandleFunc("POST /api/setup/use", s.use)
	return s
}

// ServeHTTP checks where a request comes from (this computer, the page's
// own origin, JSON bodies), then serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	if code, why := refuse(r); code != 0 {
		writeJSON(w, code, map[string]string{"error": why})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// refuse keeps the setup page to this computer and its own origin (the
// same rules as the node's API: loopback peers, loopback Host names, no
// other site's pages, JSON bodies only).
func refuse(r *http.Request) (int, string) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return http.StatusForbidden, "the setup page only answers this computer"
	}
	hn := r.Host
	if h, _, err := net.SplitHostPort(hn); err == nil {
		hn = h
	}
	hn = strings.Trim(hn, "[]")
	if ip := net.ParseIP(hn); !strings.EqualFold(hn, "localhost") && (ip == nil || !ip.IsLoopback()) {
		return http.StatusForbidden, fmt.Sprintf("host %q is not this computer: open http://127.0.0.1:PORT", r.Host)
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) || u.Scheme != "http" {
			return http.StatusForbidden, "requests from other pages are refused: use the setup page itself"
		}
	}
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" && sfs != "none" && strings.HasPrefix(r.URL.Path, "/api/") {
		return http.StatusForbidden, "requests from other sites are refused"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
			return http.StatusUnsupportedMediaType, "send the body as JSON (Content-Type: application/json)"
		}
	}
	return 0, ""
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"setup": true, "base": nil})
}

// Model is one row of the page's lists.
type Model struct {
	Title  string `json:"title"`
	Spec   string `json:"spec"`
	Source string `json:"source,omitempty"`
	Size   int64  `json:"size"`
	Arch   string `json:"arch,omitempty"`
	Quant  string `json:"quant,omitempty"`
	Need   int64  `json:"need"`
	// Fits is "yes", "no" or "?" (free memory unknown).
	Fits string `json:"fits"`
	// Here says a recommended model is already on this computer.
	Here    bool   `json:"here,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// Models is the answer of GET /api/setup/models.
type Models struct {
	Local       []Model `json:"local"`
	Recommended []Model `json:"recommended"`
	Free        int64   `json:"free"`
}

func fits(need, free int64) string {
	switch {
	case free <= 0 || need <= 0:
		return "?"
	case need <= free:
		return "yes"
	}
	return "no"
}

func (s *Server) list() Models {
	free := s.cfg.Free()
	out := Models{Local: []Model{}, Recommended: []Model{}, Free: free}
	here := map[string]bool{}
	for _, e := range s.cfg.Hub.List() {
		out.Local = append(out.Local, Model{Title: strings.TrimPrefix(strings.TrimPrefix(e.Spec, "ollama:"), "hf:"), Spec: e.Spec, Source: e.Source,
			Size: e.Size, Arch: e.Arch, Quant: e.Quant, Need: e.Need, Fits: e.Fits(free), Problem: e.Problem})
		here[e.Spec] = true
	}
	for _, r := range hub.Recommended {
		out.Recommended = append(out.Recommended, Model{Title: r.Title, Spec: "ollama:" + r.Spec, Size: r.Size, Arch: r.Arch,
			Need: r.Need(), Fits: fits(r.Need(), free), Here: here["ollama:"+r.Spec]})
	}
	return out
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.list())
}

type nameBody struct {
	Name string `json:"name"`
}

func readName(w http.ResponseWriter, r *http.Request) (string, bool) {
	var b nameBody
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&b); err != nil || strings.TrimSpace(b.Name) == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `send {"name": "gemma3:1b"} (an Ollama name, ollama:NAME or hf:ORG/REPO[:QUANT])`})
		return "", false
	}
	return strings.TrimSpace(b.Name), true
}

// pull downloads a model, streaming progress as server-sent events:
// "progress" {done,total} (at most ten a second), then "done"
// {spec,path} or "error" {error}.
func (s *Server) pull(w http.ResponseWriter, r *http.Request) {
	name, ok := readName(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	if s.pulling[name] {
		s.mu.Unlock()
		writeJSON(w, http.StatusConflict, map[string]string{"error": name + " is being pulled already"})
		return
	}
	s.pulling[name] = true
	s.mu.Unlock()
	defer func() { s.mu.Lock(); delete(s.pulling, name); s.mu.Unlock() }()

	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	var wmu sync.Mutex
	send := func(event string, v any) {
		b, _ := json.Marshal(v)
		wmu.Lock()
		defer wmu.Unlock()
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		if fl != nil {
			fl.Flush()
		}
	}
	var last time.Time
	var lmu sync.Mutex
	res, err := s.cfg.Hub.Pull(r.Context(), name, func(done, total int64) {
		lmu.Lock()
		defer lmu.Unlock()
		if time.Since(last) < 100*time.Millisecond && done != total {
			return
		}
		last = time.Now()
		send("progress", map[string]int64{"done": done, "total": total})
	})
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.cfg.Log.Warn("setup: pull failed", "model", name, "err", err)
		}
		send("error", map[string]string{"error": err.Error()})
		return
	}
	spec := "ollama:" + res.Name
	if sc, _ := hub.Scheme(name); sc == "hf" {
		spec = "hf:" + res.Name
	}
	send("done", map[string]string{"spec": spec, "path": res.Path})
}

// use saves a model that is on this computer as the node's base.
func (s *Server) use(w http.ResponseWriter, r *http.Request) {
	spec, ok := readName(w, r)
	if !ok {
		return
	}
	if !hub.IsSpec(spec) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "choose a model by ollama:NAME or hf:ORG/REPO"})
		return
	}
	if _, err := s.cfg.Hub.Resolve(spec); err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	c, _, err := config.Load(s.cfg.DataDir)
	if err == nil {
		err = c.Set("model", spec)
	}
	if err == nil {
		err = c.Save(s.cfg.DataDir)
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"model": spec})
	if s.cfg.Chosen != nil {
		go s.cfg.Chosen(spec)
	}
}
