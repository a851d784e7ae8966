package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrBaseMissing is wrapped by a pull of an adapter whose base model this
// node does not run (answered 422, with where the base is and how to fetch
// it: "with_base", or POST /api/swarm/pull-base).
var ErrBaseMissing = fmt.Errorf("%w: base model missing", errUnusable)

// BaseService is what the API needs to move base models over the swarm;
// the node daemon implements it beside SwarmService.
type BaseService interface {
	// PullBase fetches the base model with this fingerprint from the
	// peers that hold it and returns its file.
	PullBase(ctx context.Context, fingerprint string) (path string, err error)
	// PullWithBase pulls an adapter; when its base is missing it fails
	// with ErrBaseMissing, or with withBase fetches that base first
	// (basePath is then its file). accept, when given, checks an adapter
	// for this node's base before it is kept (see SwarmService.PullAdapter).
	PullWithBase(ctx context.Context, cid string, withBase bool, accept Accept) (dir, basePath string, err error)
}

// PullBaseRequest asks for a base model by fingerprint.
type PullBaseRequest struct {
	// Fingerprint is the base's fingerprint ("sha256:…", "fp:" prefix allowed).
	Fingerprint string `json:"fingerprint"`
}

func (s *Server) bases() (BaseService, error) {
	if s.cfg.Swarm == nil {
		return nil, errNoSwarm
	}
	b, ok := s.cfg.Swarm.(BaseService)
	if !ok {
		return nil, errors.New("this node cannot fetch base models over the swarm")
	}
	return b, nil
}

func (s *Server) handlePullBase(w http.ResponseWriter, r *http.Request) {
	b, err := s.bases()
	if err != nil {
		s.fail(w, err)
		return
	}
	var req PullBaseRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	fp := strings.TrimPrefix(strings.TrimSpace(req.Fingerprint), "fp:")
	if fp == "" {
		s.fail(w, badRequest("fingerprint is empty: give the base's fingerprint (see an adapter's base_fingerprint in /api/swarm/search)"))
		return
	}
	path, err := b.PullBase(r.Context(), fp)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"fingerprint": fp, "path": path})
}

// pullAdapter pulls req.CID, through PullWithBase when the node can move
// bases (so a missing base is explained, or fetched with WithBase).
func (s *Server) pullAdapter(ctx context.Context, req PullRequest, accept Accept) (dir, basePath string, err error) {
	if b, ok := s.cfg.Swarm.(BaseService); ok {
		return b.PullWithBase(ctx, req.CID, req.WithBase, accept)
	}
	dir, err = s.cfg.Swarm.PullAdapter(ctx, req.CID, accept)
	return dir, "", err
}
