package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/node/jobs"
	"orchmind/node/registry"
)

// Listing is one adapter announced in the swarm: what its announcement
// says of it (adapters.Announced, the fields of its orchmind.json that are
// announced, under the same JSON names), its CID, publisher and size.
type Listing struct {
	CID string `json:"cid"`
	adapters.Announced
	Publisher string `json:"publisher,omitempty"`
	Size      int64  `json:"size,omitempty"`
	Providers int    `json:"providers,omitempty"`
	// BaseWhere says where the adapter's base model is: "here" (this node
	// runs or holds it), "peers" (a peer announced it) or "nowhere".
	BaseWhere string `json:"base_where,omitempty"`
}

// SearchQuery filters swarm listings. An empty BaseFingerprint means any
// base.
type SearchQuery struct {
	Text            string `json:"query"`
	BaseFingerprint string `json:"base_fingerprint,omitempty"`
	Limit           int    `json:"limit,omitempty"`
}

// Peer is one connected swarm peer.
type Peer struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs,omitempty"`
	// Orchmind is true for orchmind nodes (the others are public DHT
	// servers and relays).
	Orchmind bool `json:"orchmind,omitempty"`
	// Source says how the peer was found: lan, public-dht (the
	// rendezvous), public-bootstrap (a bootstrap peer of the public DHT),
	// bootstrap, remembered or incoming.
	Source string `json:"source,omitempty"`
	// Conn is how we are connected: direct, relayed or hole-punched.
	Conn string `json:"conn,omitempty"`
}

// SwarmService is what the API needs from the node's libp2p swarm. The node
// daemon implements it; without a swarm (Config.Swarm nil) the /api/swarm
// routes answer 503.
type SwarmService interface {
	// Search lists adapters announced in the swarm.
	Search(ctx context.Context, q SearchQuery) ([]Listing, error)
	// PullAdapter fetches and verifies the adapter with this CID into a
	// folder (a PEFT adapter folder) and returns the folder. The folder is
	// read once: with accept nil, only to check it (its tensor data is not
	// read) and that it is for this node's base; otherwise in full, and
	// accept, given what was read, replaces the base check — the pull fails,
	// keeping nothing, when accept refuses it — so that a caller that plugs
	// the adapter in neither reads the folder nor checks the base again.
	PullAdapter(ctx context.Context, cid string, accept Accept) (dir string, err error)
	// Publish stores the adapter folder dir and announces it; it returns
	// the CID.
	Publish(ctx context.Context, dir string, man *adapters.Manifest) (cid string, err error)
	// Peers lists the connected peers.
	Peers(ctx context.Context) ([]Peer, error)
}

// Accept takes the adapter a pull read from the folder it fetched (PEFT
// layout, tensors included) and refuses it with an error.
type Accept func(a *adapters.Adapter, man *adapters.Manifest) error

// Config configures the API.
type Config struct {
	// Base is the loaded base model; Registry holds the adapters plugged
	// onto it (New makes one when nil).
	Base     *base.Base
	Registry *registry.Registry
	// AdapterDir receives trained adapters and is where local adapters are
	// listed from and loaded by name.
	AdapterDir string
	// DataDir receives uploaded training data (default: AdapterDir/.uploads).
	DataDir string
	// Swarm may be nil: the swarm routes then answer 503.
	Swarm SwarmService
	// Token, when set, lets clients from other addresses in with
	// "Authorization: Bearer <Token>".
	Token string
	// LocalToken is a second accepted token, meant for local clients that
	// can read it from a private file (the node writes one at start for
	// orchmind's CLI). Like Token, it lets a request name files outside
	// the adapters and uploads folders.
	LocalToken string
	// Hosts are more names of this computer that the Host header may carry
	// (besides loopback names and addresses, and the address a connection
	// arrived on); any other name is refused against DNS rebinding.
	Hosts []string
	// ChatTemplate names the template that renders /v1/chat/completions
	// messages into a prompt (default: the one the base's chat template
	// shows; plain for base models).
	ChatTemplate string
	// UI, when set, is served at GET / (the embedded web UI).
	UI      http.Handler
	Version string
	Log     *slog.Logger
	// MaxUpload bounds a training-data upload (default 256 MiB).
	MaxUpload int64
	// UploadsMaxBytes and UploadsMaxCount bound the uploads folder
	// (defaults DefaultUploadsMaxBytes, DefaultUploadsMaxCount); a full
	// folder answers 507. UploadTTL deletes uploads unused that long
	// (default DefaultUploadTTL), at start and periodically.
	UploadsMaxBytes int64
	UploadsMaxCount int
	UploadTTL       time.Duration
}

// maxJSON bounds a JSON request body.
const maxJSON = 1 << 20

// Server is the API handler.
type Server struct {
	cfg  Config
	reg  *registry.Registry
	log  *slog.Logger
	mux  *http.ServeMux
	gen  chan struct{} // generation slots
	jobs *jobs.Manager
	up   *uploads
}

// route is one registered endpoint.
type route struct {
	method, path string
	h            http.HandlerFunc
}

// New checks cfg and returns the API handler.
func New(cfg Config) (*Server, error) {
	if cfg.Base == nil || cfg.Base.Model == nil || cfg.Base.Tok == nil {
		return nil, errors.New("api: no base model loaded: load one with base.Load before starting the API")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = registry.New(cfg.Base, cfg.Log)
	} else if cfg.Registry.Base() != cfg.Base {
		return nil, errors.New("api: the registry serves another base model than Config.Base")
	}
	if cfg.AdapterDir == "" {
		cfg.AdapterDir = "lora_adapters"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(cfg.AdapterDir, ".uploads")
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = 256 << 20
	}
	if cfg.UploadsMaxBytes <= 0 {
		cfg.UploadsMaxBytes = DefaultUploadsMaxBytes
	}
	if cfg.UploadsMaxCount <= 0 {
		cfg.UploadsMaxCount = DefaultUploadsMaxCount
	}
	if cfg.UploadTTL <= 0 {
		cfg.UploadTTL = DefaultUploadTTL
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	s := &Server{cfg: cfg, reg: cfg.Registry, log: cfg.Log, mux: http.NewServeMux(),
		gen: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))), jobs: jobs.New(cfg.Log),
		up: newUploads(cfg.DataDir, cfg.UploadsMaxBytes, cfg.UploadsMaxCount, cfg.UploadTTL, cfg.Log)}
	for _, r := range s.routes() {
		pattern := r.method + " " + r.path
		if r.path == "/" {
			pattern = "/" // every unmatched path: the UI, or a JSON 404 for API paths
		}
		s.mux.HandleFunc(pattern, r.h)
	}
	return s, nil
}

// routes lists every endpoint; openapi.yaml documents exactly these.
func (s *Server) routes() []route {
	return []route{
		{"GET", "/", s.handleUI},
		{"GET", "/api/openapi.yaml", s.handleOpenAPI},
		{"GET", "/api/info", s.handleInfo},
		{"POST", "/api/generate", s.handleGenerate},
		{"POST", "/api/chat", s.handleOllamaChat},
		{"POST", "/v1/chat/completions", s.handleChat},
		{"GET", "/v1/models", s.handleModels},
		{"GET", "/api/adapters", s.handleAdapters},
		{"POST", "/api/adapters/load", s.handleLoad},
		{"POST", "/api/adapters/unload", s.handleUnload},
		{"POST", "/api/adapters/scale", s.handleScale},
		{"POST", "/api/adapters/bake", s.handleBake},
		{"POST", "/api/train/plan", s.handlePlan},
		{"POST", "/api/train", s.handleTrain},
		{"GET", "/api/train/{id}", s.handleJob},
		{"GET", "/api/train/{id}/events", s.handleEvents},
		{"POST", "/api/train/{id}/stop", s.handleStop},
		{"POST", "/api/swarm/search", s.handleSearch},
		{"POST", "/api/swarm/pull", s.handlePull},
		{"POST", "/api/swarm/pull-base", s.handlePullBase},
		{"POST", "/api/swarm/publish", s.handlePublish},
		{"GET", "/api/swarm/peers", s.handlePeers},
	}
}

// Close stops running training jobs and waits for them, and stops the
// uploads folder's periodic clean-up.
func (s *Server) Close() {
	s.jobs.StopAll()
	s.up.close()
}

// ServeHTTP checks who is asking (see refuse), then routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if code, msg := s.refuse(r); code != 0 {
		s.log.Warn("request refused", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "why", msg)
		writeErr(w, code, msg)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// apiError is the JSON body of every error.
type apiError struct {
	Error string `json:"error"`
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// fail maps err to a status code and writes it.
func (s *Server) fail(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, registry.ErrUnknown), errors.Is(err, errNotFound), errors.Is(err, jobs.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, registry.ErrExists), errors.Is(err, errBusy), errors.Is(err, jobs.ErrBusy):
		code = http.StatusConflict
	case errors.Is(err, registry.ErrWrongBase), errors.Is(err, registry.ErrBadAdapter), errors.Is(err, errUnusable):
		code = http.StatusUnprocessableEntity
	case errors.Is(err, registry.ErrBadRequest), errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	case errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
		err = fmt.Errorf("the request is larger than %d bytes: send less data at once", mbe.Limit)
	case errors.Is(err, errTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, errNoSpace):
		code = http.StatusInsufficientStorage
	case errors.Is(err, errForbidden):
		code = http.StatusForbidden
	case errors.Is(err, errNoSwarm):
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled):
		code = 499 // client went away; nobody reads this
	}
	if code >= 500 {
		s.log.Error("request failed", "err", err)
	}
	writeErr(w, code, err.Error())
}

var (
	errNotFound   = errors.New("not found")
	errBusy       = errors.New("busy")
	errBadRequest = errors.New("bad request")
	errUnusable   = errors.New("unusable data")
	errNoSwarm    = errors.New("swarm not running: this node was started without the peer-to-peer network (orchmind serve); start it with `orchmind node` to search, pull and publish adapters")
)

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// decode reads a JSON body of at most maxJSON bytes into v.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxJSON)
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.Is(err, io.EOF):
			return badRequest("the request body is empty: send a JSON object")
		case errors.As(err, &te):
			return badRequest("field %q should be a %s, not a JSON %s", te.Field, te.Type, te.Value)
		default:
			return badRequest("the request body is not valid JSON: %v", err)
		}
	}
	return nil
}

func (s *Server) handleUI(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/v1/") || (r.Method != "GET" && r.Method != "HEAD") {
		writeErr(w, http.StatusNotFound, fmt.Sprintf("no API route %s %s: see /api/openapi.yaml for the routes", r.Method, r.URL.Path))
		return
	}
	if s.cfg.UI == nil {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "orchmind %s API: see /api/openapi.yaml\n", s.cfg.Version)
		return
	}
	s.cfg.UI.ServeHTTP(w, r)
}

func (s *Server) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI)
}

// BaseInfo describes the loaded base model.
type BaseInfo struct {
	Name        string `json:"name"`
	Path        string `json:"path,omitempty"`
	Fingerprint string `json:"fingerprint"`
	ShapeID     string `json:"shape_id"`
	Type        string `json:"type"`
	Dim         int    `json:"dim"`
	Layers      int    `json:"layers"`
	Vocab       int    `json:"vocab"`
	Context     int    `json:"context"`
	Bytes       int    `json:"bytes"`
}

func (s *Server) baseInfo() BaseInfo {
	b := s.cfg.Base
	return BaseInfo{Name: b.Name, Path: b.Path, Fingerprint: b.Fingerprint, ShapeID: b.ShapeID, Type: b.Type.String(),
		Dim: b.Model.Dim, Layers: len(b.Model.Layers), Vocab: b.Model.Vocab, Context: b.Model.SeqLen, Bytes: b.Model.Bytes()}
}

func (s *Server) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"version": s.cfg.Version, "base": s.baseInfo(), "swarm": s.cfg.Swarm != nil,
		"training": s.jobs.Running(), "adapters": len(s.reg.List()),
	})
}

// now is the time stamp of responses.
func now() time.Time { return time.Now().UTC() }

// sanitize keeps a file name safe to create inside a folder.
func sanitize(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := strings.TrimLeft(b.String(), ".")
	if out == "" {
		out = "file"
	}
	return out
}

// mkdirAll creates dir with private permissions.
func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create folder %s: %w (check the permissions or choose another --adapters-dir)", dir, err)
	}
	return nil
}
