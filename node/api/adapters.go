package api

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"

	"orchmind/adapters"
	"orchmind/node/registry"
)

// LocalAdapter is an adapter folder in AdapterDir.
type LocalAdapter struct {
	Name            string `json:"name"`
	Dir             string `json:"dir"`
	BaseName        string `json:"base_name,omitempty"`
	BaseFingerprint string `json:"base_fingerprint,omitempty"`
	Description     string `json:"description,omitempty"`
	// ThisBase is false when the manifest names another base fingerprint.
	ThisBase bool `json:"this_base"`
	Loaded   bool `json:"loaded"`
}

// local lists the adapter folders in AdapterDir (those with
// adapter_config.json).
func (s *Server) local() []LocalAdapter {
	ents, err := os.ReadDir(s.cfg.AdapterDir)
	if err != nil {
		return []LocalAdapter{}
	}
	loaded := map[string]bool{}
	for _, i := range s.reg.List() {
		loaded[filepath.Clean(i.Dir)] = true
	}
	out := []LocalAdapter{}
	for _, e := range ents {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		dir := filepath.Join(s.cfg.AdapterDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, adapters.ConfigFile)); err != nil {
			continue
		}
		abs, _ := filepath.Abs(dir)
		la := LocalAdapter{Name: e.Name(), Dir: abs, ThisBase: true, Loaded: loaded[abs]}
		if man, err := adapters.ReadManifest(dir); err == nil && man != nil {
			la.BaseName, la.BaseFingerprint, la.Description = man.BaseName, man.BaseFingerprint, man.Description
			la.ThisBase = man.BaseFingerprint == "" || man.BaseFingerprint == s.cfg.Base.Fingerprint
		}
		out = append(out, la)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Server) handleAdapters(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"base": s.baseInfo(), "loaded": s.reg.List(), "local": s.local()})
}

// LoadRequest is the body of POST /api/adapters/load.
type LoadRequest struct {
	// Path is an adapter folder: absolute, or relative to the adapters
	// folder; a bare name is a folder in the adapters folder. Without the
	// token, it must lie inside the adapters or uploads folder.
	Path string `json:"path"`
	// Name overrides the name the adapter is registered under.
	Name string `json:"name,omitempty"`
	// Scale is the initial scale (default 1).
	Scale *float32 `json:"scale,omitempty"`
}

func (s *Server) handleLoad(w http.ResponseWriter, r *http.Request) {
	var req LoadRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	dir, err := s.adapterFolder(r, req.Path)
	if err != nil {
		s.fail(w, err)
		return
	}
	info, err := s.loadDir(dir, req.Name, "")
	if err != nil {
		s.fail(w, err)
		return
	}
	if req.Scale != nil {
		if err := s.reg.SetScale(info.Name, *req.Scale); err != nil {
			_ = s.reg.Unload(info.Name)
			s.fail(w, err)
			return
		}
		info.Scale = *req.Scale
	}
	writeJSON(w, http.StatusOK, info)
}

// adapterFolder resolves the adapter folder p of a request: absolute, or
// relative to the adapters folder; without the token it must lie inside
// the adapters or data folder (checkPath).
func (s *Server) adapterFolder(r *http.Request, p string) (string, error) {
	if p == "" {
		return "", badRequest("path is empty: give an adapter folder (with adapter_config.json), or the name of one in %s", s.cfg.AdapterDir)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(s.cfg.AdapterDir, p)
	}
	if err := s.checkPath(r, p); err != nil {
		return "", err
	}
	return p, nil
}

// loadDir reads an adapter folder and registers it (under name when given,
// with cid when known).
func (s *Server) loadDir(dir, name, cid string) (registry.Info, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return registry.Info{}, fmt.Errorf("%w: no adapter folder at %s: give the folder that holds adapter_config.json", errNotFound, dir)
	}
	a, man, err := s.reg.Read(dir)
	if err != nil {
		return registry.Info{}, err
	}
	if name == "" {
		name = registry.NameFor(dir, man)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return s.reg.Add(name, cid, dir, a, man)
}

// NameRequest names one adapter.
type NameRequest struct {
	Name string `json:"name"`
}

func (s *Server) handleUnload(w http.ResponseWriter, r *http.Request) {
	var req NameRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	if err := s.reg.Unload(req.Name); err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"unloaded": req.Name})
}

// ScaleRequest is the body of POST /api/adapters/scale.
type ScaleRequest struct {
	Name  string   `json:"name"`
	Scale *float64 `json:"scale"`
}

func (s *Server) handleScale(w http.ResponseWriter, r *http.Request) {
	var req ScaleRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	if req.Scale == nil || math.IsNaN(*req.Scale) {
		s.fail(w, badRequest("scale is missing: give a number (1 = as trained, 0 = off)"))
		return
	}
	if err := s.reg.SetScale(req.Name, float32(*req.Scale)); err != nil {
		s.fail(w, err)
		return
	}
	info, err := s.reg.Get(req.Name)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// BakeRequest is the body of POST /api/adapters/bake.
type BakeRequest struct {
	Name string `json:"name"`
	// Off drops the baked copy instead.
	Off bool `json:"off,omitempty"`
}

func (s *Server) handleBake(w http.ResponseWriter, r *http.Request) {
	var req BakeRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	var err error
	if req.Off {
		err = s.reg.Unbake(req.Name)
	} else {
		err = s.reg.Bake(req.Name)
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	info, err := s.reg.Get(req.Name)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// --- swarm ---

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Swarm == nil {
		s.fail(w, errNoSwarm)
		return
	}
	var q SearchQuery
	if err := decode(w, r, &q); err != nil {
		s.fail(w, err)
		return
	}
	if q.Limit < 0 || q.Limit > 1000 {
		s.fail(w, badRequest("limit %d: use 1 to 1000 (0 = the default)", q.Limit))
		return
	}
	if q.BaseFingerprint == "this" {
		q.BaseFingerprint = s.cfg.Base.Fingerprint
	}
	res, err := s.cfg.Swarm.Search(r.Context(), q)
	if err != nil {
		s.fail(w, fmt.Errorf("search the swarm: %w", err))
		return
	}
	if res == nil {
		res = []Listing{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": res})
}

// PullRequest is the body of POST /api/swarm/pull.
type PullRequest struct {
	CID string `json:"cid"`
	// Name to register it under (default: its manifest name).
	Name string `json:"name,omitempty"`
	// Load plugs it in after the pull (default true).
	Load *bool `json:"load,omitempty"`
	// WithBase fetches the adapter's base model from peers first when
	// this node does not have it (see BaseService).
	WithBase bool `json:"with_base,omitempty"`
}

func (s *Server) handlePull(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Swarm == nil {
		s.fail(w, errNoSwarm)
		return
	}
	var req PullRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	if req.CID == "" {
		s.fail(w, badRequest("cid is empty: give the CID of an adapter found with /api/swarm/search"))
		return
	}
	load := req.Load == nil || *req.Load
	// To plug it in, the registry's check is the pull's: the adapter the
	// pull read is checked once, before the pull keeps it, and plugged in
	// as read.
	var accept Accept
	var checked registry.Checked
	if load {
		accept = func(a *adapters.Adapter, man *adapters.Manifest) error {
			name := req.Name
			if name == "" {
				name = registry.NameFor("adapter-"+req.CID[max(0, len(req.CID)-8):], man)
			}
			c, err := s.reg.Check(name, s.reg.Layout(a), man)
			checked = c
			return err
		}
	}
	dir, basePath, err := s.pullAdapter(r.Context(), req, accept)
	if err != nil {
		s.fail(w, fmt.Errorf("pull %s: %w", req.CID, err))
		return
	}
	out := map[string]any{"cid": req.CID, "dir": dir}
	if basePath != "" {
		// For another base than the one this node runs: kept, not plugged.
		out["base"] = basePath
		out["note"] = "the adapter's base was fetched to " + basePath + "; start a node with --model " + basePath + " to use the adapter"
	} else if load {
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		info, err := s.reg.AddChecked(checked, req.CID, dir)
		if err != nil {
			s.fail(w, err)
			return
		}
		out["adapter"] = info
	}
	writeJSON(w, http.StatusOK, out)
}

// PublishRequest is the body of POST /api/swarm/publish: a loaded
// adapter (Name), or an adapter folder (Path), which is published from
// disk without being loaded (only its manifest and tensor headers are
// read).
type PublishRequest struct {
	Name string `json:"name,omitempty"`
	// Path is an adapter folder, as in LoadRequest.Path.
	Path string `json:"path,omitempty"`
	// Room, when set, is a private room code: the announcement is sealed
	// for the room instead of published to everyone.
	Room string `json:"room,omitempty"`
}

// RoomPublisher is implemented by a swarm that can announce into private
// rooms (the node daemon).
type RoomPublisher interface {
	PublishRoom(ctx context.Context, dir string, man *adapters.Manifest, code string) (string, error)
}

func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Swarm == nil {
		s.fail(w, errNoSwarm)
		return
	}
	var req PublishRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	var dir, name string
	var man *adapters.Manifest // nil: the node reads it from the folder
	switch {
	case req.Path != "" && req.Name != "":
		s.fail(w, badRequest("give the adapter's name or its folder (path), not both"))
		return
	case req.Path != "":
		d, err := s.adapterFolder(r, req.Path)
		if err != nil {
			s.fail(w, err)
			return
		}
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			s.fail(w, fmt.Errorf("%w: no adapter folder at %s: give the folder that holds adapter_config.json", errNotFound, d))
			return
		}
		dir, name = d, filepath.Base(filepath.Clean(d))
	default:
		info, err := s.reg.Get(req.Name)
		if err != nil {
			s.fail(w, err)
			return
		}
		if info.Dir == "" {
			s.fail(w, fmt.Errorf("%w: adapter %q has no folder on disk to publish", errUnusable, req.Name))
			return
		}
		if _, man, err = s.reg.Adapter(req.Name); err != nil {
			s.fail(w, err)
			return
		}
		dir, name = info.Dir, req.Name
	}
	var cid string
	var err error
	if req.Room != "" {
		rp, ok := s.cfg.Swarm.(RoomPublisher)
		if !ok {
			s.fail(w, fmt.Errorf("%w: this node cannot publish into private rooms", errNoSwarm))
			return
		}
		cid, err = rp.PublishRoom(r.Context(), dir, man, req.Room)
	} else {
		cid, err = s.cfg.Swarm.Publish(r.Context(), dir, man)
	}
	if err != nil {
		s.fail(w, fmt.Errorf("publish %s: %w", name, err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "cid": cid})
}

func (s *Server) handlePeers(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Swarm == nil {
		s.fail(w, errNoSwarm)
		return
	}
	ps, err := s.cfg.Swarm.Peers(r.Context())
	if err != nil {
		s.fail(w, fmt.Errorf("list peers: %w", err))
		return
	}
	if ps == nil {
		ps = []Peer{}
	}
	out := map[string]any{"peers": ps}
	if nr, ok := s.cfg.Swarm.(NetworkReporter); ok {
		out["network"] = nr.Network(r.Context())
	}
	writeJSON(w, http.StatusOK, out)
}
