package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"orchmind/node/jobs"
	"orchmind/node/registry"
	"orchmind/trainer/data"
	"orchmind/trainer/hparams"
	"orchmind/trainer/progress"
	"orchmind/trainer/train"
)

// TrainRequest is the JSON body of POST /api/train and /api/train/plan (a
// multipart upload carries the same fields as form fields, overrides as a
// JSON string, and the data as files).
type TrainRequest struct {
	// Data is a file or folder on the node's computer; without the token,
	// it must lie inside the adapters or uploads folder.
	Data string `json:"data,omitempty"`
	// Upload is the id of data uploaded earlier (returned by
	// /api/train/plan).
	Upload    string            `json:"upload,omitempty"`
	Name      string            `json:"name,omitempty"`
	Template  string            `json:"template,omitempty"`
	Seed      uint64            `json:"seed,omitempty"`
	Overrides hparams.Overrides `json:"overrides"`
	// QuestionColumn and AnswerColumn name the question and answer
	// columns of CSV/TSV data (both or neither; empty: found by name).
	QuestionColumn string `json:"question_column,omitempty"`
	AnswerColumn   string `json:"answer_column,omitempty"`
}

// newID returns a random 16-hex-digit id.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// trainRequest reads a JSON or multipart request and resolves its data
// path. When the data is an upload, release must be called once the data
// is no longer read (the upload is not deleted before).
func (s *Server) trainRequest(w http.ResponseWriter, r *http.Request) (req TrainRequest, path string, release func(), err error) {
	release = func() {}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "multipart/form-data" {
		if err := s.upload(w, r, &req); err != nil {
			return req, "", release, err
		}
	} else if err := decode(w, r, &req); err != nil {
		return req, "", release, err
	}
	switch {
	case req.Upload != "":
		if !validUploadID(req.Upload) {
			return req, "", release, badRequest("upload %q is not an upload id: send the files again", req.Upload)
		}
		path = filepath.Join(s.cfg.DataDir, req.Upload)
		release = s.up.hold(req.Upload)
		if _, err := os.Stat(path); err != nil {
			release()
			return req, "", func() {}, fmt.Errorf("%w: upload %s is gone (uploads are deleted after %s unused): send the files again", errNotFound, req.Upload, s.up.ttl)
		}
	case req.Data != "":
		path = req.Data
		if err := s.checkPath(r, path); err != nil {
			return req, "", release, err
		}
		if _, err := os.Stat(path); err != nil {
			return req, "", release, fmt.Errorf("%w: no training data at %s on this computer: check the path", errNotFound, path)
		}
	default:
		return req, "", release, badRequest("no training data: upload files, or give \"data\" (a file or folder on this computer)")
	}
	if req.Name == "" {
		req.Name = defaultName(req, path)
	}
	if !registry.ValidName(req.Name) {
		release()
		return req, "", func() {}, badRequest("name %q: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", req.Name)
	}
	return req, path, release, nil
}

func defaultName(req TrainRequest, path string) string {
	p := path
	if req.Upload != "" {
		if ents, err := os.ReadDir(path); err == nil && len(ents) > 0 {
			p = ents[0].Name()
		}
	}
	p = filepath.Base(strings.TrimRight(p, "/"))
	if i := strings.IndexByte(p, '.'); i > 0 {
		p = p[:i]
	}
	if !registry.ValidName(p) {
		return "adapter"
	}
	return p
}

// upload stores the files of a multipart request in a new upload folder
// and fills req from its form fields. The files are received into a
// ".part-" folder, renamed to the upload's id when complete.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, req *TrainRequest) error {
	if err := mkdirAll(s.cfg.DataDir); err != nil {
		return err
	}
	limit, unreserve, err := s.up.reserve(s.cfg.MaxUpload)
	if err != nil {
		return err
	}
	defer unreserve()
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	tooBig := func(err error) error {
		if limit < s.cfg.MaxUpload {
			used, _ := s.up.usage()
			return fmt.Errorf("%w: the uploads folder %s has room for %s more (it keeps at most %s; %s used): send less data, or wait until old uploads are deleted (after %s unused)",
				errNoSpace, s.cfg.DataDir, mib(limit), mib(s.up.maxBytes), mib(used), s.up.ttl)
		}
		return err
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return badRequest("cannot read the upload: %v", err)
	}
	id := newID()
	part := filepath.Join(s.cfg.DataDir, partPrefix+id)
	if err := mkdirAll(part); err != nil {
		return err
	}
	files := 0
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(part)
		}
	}()
	used := map[string]bool{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tooBig(err)
			}
			return badRequest("cannot read the upload: %v", err)
		}
		if p.FileName() == "" {
			v, err := io.ReadAll(io.LimitReader(p, maxJSON))
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return tooBig(err)
				}
				return badRequest("cannot read field %s: %v", p.FormName(), err)
			}
			if err := setField(req, p.FormName(), string(v)); err != nil {
				return err
			}
			continue
		}
		if files == s.up.maxFiles {
			return fmt.Errorf("%w: the upload has more than %d files: put the examples into fewer files (one .jsonl file can hold them all)", errTooLarge, s.up.maxFiles)
		}
		name := sanitize(p.FileName())
		for i := 2; used[name]; i++ {
			ext := filepath.Ext(name)
			name = fmt.Sprintf("%s-%d%s", strings.TrimSuffix(sanitize(p.FileName()), ext), i, ext)
		}
		used[name] = true
		if err := writeFile(filepath.Join(part, name), p); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return tooBig(err)
			}
			if errors.Is(err, syscall.ENOSPC) {
				return fmt.Errorf("%w: the disk of %s is full: free some space, then send the files again", errNoSpace, s.cfg.DataDir)
			}
			return fmt.Errorf("save uploaded file %s: %w", name, err)
		}
		files++
	}
	if files == 0 {
		return badRequest("the upload has no files: add your documents (.txt, .md, .jsonl, .json, .csv, .tsv, .pdf, .docx, .odt or .html)")
	}
	if err := os.Rename(part, filepath.Join(s.cfg.DataDir, id)); err != nil {
		return fmt.Errorf("store the upload: %w", err)
	}
	req.Upload, req.Data = id, ""
	ok = true
	return nil
}

func setField(req *TrainRequest, k, v string) error {
	switch k {
	case "name":
		req.Name = strings.TrimSpace(v)
	case "template":
		req.Template = v
	case "question_column":
		req.QuestionColumn = strings.TrimSpace(v)
	case "answer_column":
		req.AnswerColumn = strings.TrimSpace(v)
	case "seed":
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return badRequest("seed %q is not a whole number", v)
		}
		req.Seed = n
	case "overrides":
		if strings.TrimSpace(v) == "" {
			return nil
		}
		if err := json.Unmarshal([]byte(v), &req.Overrides); err != nil {
			return badRequest("overrides is not a JSON object of hyperparameters: %v", err)
		}
	}
	return nil
}

func writeFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// trainConfig builds the trainer's configuration for req.
func (s *Server) trainConfig(req TrainRequest, path string) (train.Config, error) {
	t, err := s.cfg.Base.Template(req.Template)
	if err != nil {
		return train.Config{}, badRequest("%v", err)
	}
	seed := req.Seed
	if seed == 0 {
		seed = 1
	}
	b := s.cfg.Base
	return train.Config{Model: b.Model, Tokenizer: b.Train, Data: path, Template: t, Overrides: req.Overrides,
		Name: req.Name, OutDir: s.cfg.AdapterDir, Seed: seed, BaseName: b.Name, BaseFingerprint: b.Fingerprint,
		BaseShapeID: b.ShapeID, Version: s.cfg.Version, Log: s.log,
		QuestionColumn: req.QuestionColumn, AnswerColumn: req.AnswerColumn}, nil
}

// PlanResponse is the answer of POST /api/train/plan.
type PlanResponse struct {
	Upload  string       `json:"upload,omitempty"`
	Name    string       `json:"name"`
	Summary data.Summary `json:"summary"`
	Plan    hparams.Plan `json:"plan"`
}

func (s *Server) handlePlan(w http.ResponseWriter, r *http.Request) {
	req, path, release, err := s.trainRequest(w, r)
	if err != nil {
		s.fail(w, err)
		return
	}
	defer release()
	cfg, err := s.trainConfig(req, path)
	if err != nil {
		s.fail(w, err)
		return
	}
	ds, plan, err := train.Prepare(r.Context(), &cfg)
	if err != nil {
		s.fail(w, fmt.Errorf("%w: %w", errUnusable, err))
		return
	}
	writeJSON(w, http.StatusOK, PlanResponse{Upload: req.Upload, Name: req.Name, Summary: ds.Summary, Plan: plan})
}

func (s *Server) handleTrain(w http.ResponseWriter, r *http.Request) {
	req, path, release, err := s.trainRequest(w, r)
	if err != nil {
		s.fail(w, err)
		return
	}
	cfg, err := s.trainConfig(req, path)
	if err != nil {
		release()
		s.fail(w, err)
		return
	}
	j, err := s.jobs.Start(cfg, jobs.Spec{Name: req.Name, Release: release, Plug: func(dir string) (*registry.Info, error) {
		_ = s.reg.Unload(req.Name) // a retrained adapter replaces the old one
		i, err := s.loadDir(dir, req.Name, "")
		if err != nil {
			return nil, err
		}
		return &i, nil
	}})
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

func (s *Server) handleJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.Get(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.Stop(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

// handleEvents streams a job's progress events as server-sent events: every
// event so far, then live ones ("event: progress"), and finally the job's
// end state ("event: job").
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.jobs.Get(id); err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	snap, err := s.jobs.Follow(r.Context(), id, 15*time.Second, func(ev progress.Event) error {
		b, err := json.Marshal(ev)
		if err != nil {
			return nil
		}
		if _, err := fmt.Fprintf(w, "event: progress\ndata: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}, func() error {
		if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil {
		return
	}
	b, err := json.Marshal(snap)
	if err != nil {
		b, _ = json.Marshal(jobs.Job{ID: snap.ID, Name: snap.Name, State: snap.State, Error: snap.Error})
	}
	_, _ = fmt.Fprintf(w, "event: job\ndata: %s\n\n", b)
	_ = rc.Flush()
}
