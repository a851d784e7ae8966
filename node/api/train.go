package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

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
		return badRequest("the upload has no files: add .txt, .md, .jsonl or .json files")
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
		BaseShapeID: b.ShapeID, Version: s.cfg.Version, Log: s.log}, nil
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

// Job is the state of a training job.
type Job struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	State    string          `json:"state"` // running, done, failed, stopped
	Started  time.Time       `json:"started"`
	Finished *time.Time      `json:"finished,omitempty"`
	Last     *progress.Event `json:"last,omitempty"`
	Plan     *hparams.Plan   `json:"plan,omitempty"`
	Summary  *data.Summary   `json:"summary,omitempty"`
	Result   *JobResult      `json:"result,omitempty"`
	Adapter  *registry.Info  `json:"adapter,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// JobResult summarises a finished run.
type JobResult struct {
	Dir             string  `json:"dir"`
	Steps           int     `json:"steps"`
	Tokens          int64   `json:"tokens"`
	Seconds         float64 `json:"seconds"`
	TrainLossBefore float64 `json:"train_loss_before"`
	TrainLossAfter  float64 `json:"train_loss_after"`
	EvalLossBefore  float64 `json:"eval_loss_before"`
	EvalLossAfter   float64 `json:"eval_loss_after"`
	StopReason      string  `json:"stop_reason"`
}

// finite maps NaN and infinities (a loss that was not measured) to 0, which
// JSON can carry.
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

const maxEvents = 20000

type job struct {
	mu      sync.Mutex
	j       Job
	events  []progress.Event
	changed chan struct{} // closed and replaced on every change
	done    bool
	cancel  context.CancelFunc
}

func (j *job) snapshot() Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.j
}

// update changes the job under its lock and wakes the event streams.
func (j *job) update(f func()) {
	j.mu.Lock()
	f()
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
}

type jobs struct {
	mu   sync.Mutex
	m    map[string]*job
	live string // id of the running job
	wg   sync.WaitGroup
}

func newJobs() *jobs { return &jobs{m: map[string]*job{}} }

func (js *jobs) running() string {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.live
}

func (js *jobs) get(id string) (*job, error) {
	js.mu.Lock()
	defer js.mu.Unlock()
	j, ok := js.m[id]
	if !ok {
		return nil, fmt.Errorf("%w: no training job %q on this node (it may have been started before a restart)", errNotFound, id)
	}
	return j, nil
}

func (js *jobs) stopAll() {
	js.mu.Lock()
	for _, j := range js.m {
		j.cancel()
	}
	js.mu.Unlock()
	js.wg.Wait()
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
	js := s.jobs
	js.mu.Lock()
	if js.live != "" {
		id := js.live
		js.mu.Unlock()
		release()
		s.fail(w, fmt.Errorf("%w: training job %s is still running: wait for it or stop it (POST /api/train/%s/stop)", errBusy, id, id))
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{j: Job{ID: newID(), Name: req.Name, State: "running", Started: now()}, changed: make(chan struct{}), cancel: cancel}
	js.m[j.j.ID] = j
	js.live = j.j.ID
	js.wg.Add(1)
	js.mu.Unlock()

	bus := progress.NewBus()
	ch, unsub := bus.Subscribe(256)
	cfg.Bus = bus
	cfg.OnPlan = func(p hparams.Plan, sm data.Summary) {
		j.update(func() { j.j.Plan, j.j.Summary = &p, &sm })
	}
	var pump sync.WaitGroup
	pump.Add(1)
	go func() {
		defer pump.Done()
		for ev := range ch {
			ev.Loss, ev.EvalLoss, ev.LR, ev.TokensPS, ev.Percent = finite(ev.Loss), finite(ev.EvalLoss), finite(ev.LR), finite(ev.TokensPS), finite(ev.Percent)
			j.update(func() {
				e := ev
				j.j.Last = &e
				if len(j.events) < maxEvents || ev.Phase != progress.PhaseTrain {
					j.events = append(j.events, ev)
				}
			})
		}
	}()
	go func() {
		defer js.wg.Done()
		defer cancel()
		defer release()
		res, err := train.Run(ctx, cfg)
		bus.Close()
		pump.Wait()
		unsub()
		var info *registry.Info
		if err == nil {
			_ = s.reg.Unload(req.Name) // a retrained adapter replaces the old one
			i, lerr := s.loadDir(res.Dir, req.Name, "")
			if lerr != nil {
				err = fmt.Errorf("the adapter was saved in %s but could not be plugged in: %w", res.Dir, lerr)
			} else {
				info = &i
			}
		}
		j.update(func() {
			t := now()
			j.j.Finished = &t
			j.j.Adapter = info
			if res != nil {
				j.j.Result = &JobResult{Dir: res.Dir, Steps: res.Steps, Tokens: res.Tokens, Seconds: res.Duration.Seconds(),
					TrainLossBefore: finite(res.TrainLossBefore), TrainLossAfter: finite(res.TrainLossAfter), EvalLossBefore: finite(res.EvalLossBefore),
					EvalLossAfter: finite(res.EvalLossAfter), StopReason: res.StopReason}
			}
			switch {
			case err == nil:
				j.j.State = "done"
			case errors.Is(err, train.ErrStopped) || errors.Is(err, context.Canceled):
				j.j.State, j.j.Error = "stopped", "stopped before the end; a checkpoint was saved"
			default:
				j.j.State, j.j.Error = "failed", err.Error()
			}
			j.done = true
		})
		js.mu.Lock()
		if js.live == j.j.ID {
			js.live = ""
		}
		js.mu.Unlock()
		s.log.Info("training job ended", "job", j.j.ID, "name", req.Name, "state", j.snapshot().State)
	}()
	writeJSON(w, http.StatusAccepted, j.snapshot())
}

func (s *Server) handleJob(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.get(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j.snapshot())
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.get(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	j.cancel()
	writeJSON(w, http.StatusAccepted, j.snapshot())
}

// handleEvents streams a job's progress events as server-sent events: every
// event so far, then live ones ("event: progress"), and finally the job's
// end state ("event: job").
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	j, err := s.jobs.get(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	next := 0
	for {
		j.mu.Lock()
		evs := j.events[next:]
		next = len(j.events)
		changed, done, snap := j.changed, j.done, j.j
		j.mu.Unlock()
		for _, ev := range evs {
			b, err := json.Marshal(ev)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "event: progress\ndata: %s\n\n", b); err != nil {
				return
			}
		}
		if done {
			b, err := json.Marshal(snap)
			if err != nil {
				b, _ = json.Marshal(Job{ID: snap.ID, Name: snap.Name, State: snap.State, Error: snap.Error})
			}
			_, _ = fmt.Fprintf(w, "event: job\ndata: %s\n\n", b)
			_ = rc.Flush()
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-changed:
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}
