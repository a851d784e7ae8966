package registry

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/tensor"
	"orchmind/trainer/lora"
)

// Errors callers can test with errors.Is (the HTTP API maps them to status
// codes).
var (
	// ErrUnknown: no adapter of that name or CID is loaded.
	ErrUnknown = errors.New("unknown adapter")
	// ErrExists: an adapter of that name is already loaded.
	ErrExists = errors.New("adapter already loaded")
	// ErrWrongBase: the adapter was made for another base model.
	ErrWrongBase = errors.New("adapter made for another base model")
	// ErrBadAdapter: the adapter files are unreadable or inconsistent.
	ErrBadAdapter = errors.New("adapter files unusable")
	// ErrBadRequest: a parameter is out of range.
	ErrBadRequest = errors.New("invalid adapter request")
)

// MaxScale bounds the scale of an adapter and the weight of a selection:
// beyond it the output is noise, so such values are refused as a mistake.
const MaxScale = 8

// ValidName reports whether s is usable as an adapter name: it is
// adapters.ValidName, the one rule the CLI and the API share.
func ValidName(s string) bool { return adapters.ValidName(s) }

// Info describes a loaded adapter.
type Info struct {
	Name            string    `json:"name"`
	CID             string    `json:"cid,omitempty"`
	Dir             string    `json:"dir,omitempty"`
	BaseName        string    `json:"base_name,omitempty"`
	BaseFingerprint string    `json:"base_fingerprint,omitempty"`
	Rank            int       `json:"rank"`
	Alpha           float32   `json:"alpha"`
	Scale           float32   `json:"scale"`
	TargetModules   []string  `json:"target_modules"`
	Params          int       `json:"params"`
	Description     string    `json:"description,omitempty"`
	Loaded          time.Time `json:"loaded"`
	Baked           bool      `json:"baked"`
	// Warning is set when the adapter was accepted without a full identity
	// check (no base fingerprint recorded on one side).
	Warning string `json:"warning,omitempty"`
	// Manifest is what its orchmind.json announces of it (name, tags,
	// language, license, …: the fields a search listing has), when it has
	// one. The fields above describe the adapter as loaded (Name is the
	// name it is registered under; the base and rank come from its files).
	Manifest *adapters.Announced `json:"manifest,omitempty"`
}

type entry struct {
	info     Info
	adapter  *adapters.Adapter
	manifest *adapters.Manifest
	baked    *model.Model // nil unless Bake was called; valid for info.Scale at bake time
	bakedAt  float32
}

// Registry holds the adapters loaded onto one base.
type Registry struct {
	base *base.Base
	log  *slog.Logger

	mu      sync.RWMutex
	entries map[string]*entry
}

// New returns an empty registry for b. log may be nil.
func New(b *base.Base, log *slog.Logger) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{base: b, log: log, entries: map[string]*entry{}}
}

// Base is the base model the registry serves.
func (r *Registry) Base() *base.Base { return r.base }

// Load reads the PEFT adapter folder dir and adds it under its manifest name
// (else the folder name).
func (r *Registry) Load(dir string) (Info, error) {
	a, man, err := r.Read(dir)
	if err != nil {
		return Info{}, err
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return r.Add(NameFor(dir, man), "", dir, a, man)
}

// Read reads the PEFT adapter folder dir (tensors included) into the
// layout of the registry's base: the one read of a folder that is loaded.
// Errors wrap ErrBadAdapter.
func (r *Registry) Read(dir string) (*adapters.Adapter, *adapters.Manifest, error) {
	a, man, err := adapters.ReadFolder(dir, adapters.SafetensorsCodec{})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w (the folder must hold adapter_config.json and adapter_model.safetensors as written by orchmind train or PEFT; retrain or re-download it)", ErrBadAdapter, err)
	}
	return r.Layout(a), man, nil
}

// Layout converts an adapter as read from a PEFT folder to the layout of
// the registry's base (lora.FromPEFTLayout).
func (r *Registry) Layout(a *adapters.Adapter) *adapters.Adapter {
	return lora.FromPEFTLayout(a, r.base.Model.Config)
}

// NameFor is the name an adapter of folder dir is registered under when
// none is given: its manifest name when valid, else the folder's name.
func NameFor(dir string, man *adapters.Manifest) string {
	if man != nil && ValidName(man.Name) {
		return man.Name
	}
	return filepath.Base(filepath.Clean(dir))
}

// Checked is an adapter that passed Check against the registry's base:
// AddChecked plugs it in without checking it again.
type Checked struct {
	name    string
	a       *adapters.Adapter
	man     *adapters.Manifest
	warning string
}

// Name is the name the adapter was checked under.
func (c Checked) Name() string { return c.name }

// Add puts an adapter already in memory into the registry after checking it
// against the base: a recorded base fingerprint different from the base's is
// refused (both shown), a missing one is accepted with a warning when every
// shape fits. cid may be empty; dir is informational.
func (r *Registry) Add(name, cid, dir string, a *adapters.Adapter, man *adapters.Manifest) (Info, error) {
	c, err := r.Check(name, a, man)
	if err != nil {
		return Info{}, err
	}
	return r.AddChecked(c, cid, dir)
}

// Check makes every check Add makes of an adapter — its name, and that it
// fits the base — without adding it: a pull runs it before it keeps what
// it fetched, and plugs the result in with AddChecked.
func (r *Registry) Check(name string, a *adapters.Adapter, man *adapters.Manifest) (Checked, error) {
	if !ValidName(name) {
		return Checked{}, fmt.Errorf("%w: name %q: use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrBadRequest, name)
	}
	if a == nil {
		return Checked{}, fmt.Errorf("%w: %s: no adapter data", ErrBadAdapter, name)
	}
	warning, err := r.check(name, a, man)
	if err != nil {
		return Checked{}, err
	}
	return Checked{name: name, a: a, man: man, warning: warning}, nil
}

// AddChecked puts an adapter that passed Check into the registry. cid may
// be empty; dir is informational.
func (r *Registry) AddChecked(c Checked, cid, dir string) (Info, error) {
	name, a, man, warning := c.name, c.a, c.man, c.warning
	if a == nil {
		return Info{}, fmt.Errorf("%w: %s: the adapter was not checked", ErrBadAdapter, name)
	}
	info := Info{Name: name, CID: cid, Dir: dir, BaseName: a.BaseName, BaseFingerprint: a.BaseFingerprint,
		Rank: a.Rank, Alpha: a.Alpha, Scale: 1, Loaded: time.Now().UTC(), Warning: warning}
	for _, m := range a.TargetModules {
		info.TargetModules = append(info.TargetModules, string(m))
	}
	for _, p := range a.Pairs {
		info.Params += len(p.A) + len(p.B)
	}
	if man != nil {
		info.Description = man.Description
		ann := man.Announced
		info.Manifest = &ann
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.entries[name]; ok {
		return Info{}, fmt.Errorf("%w: %q (unload it first, or load the new one under another name)", ErrExists, name)
	}
	if cid != "" {
		for _, e := range r.entries {
			if e.info.CID == cid {
				return Info{}, fmt.Errorf("%w: CID %s is already loaded as %q", ErrExists, cid, e.info.Name)
			}
		}
	}
	r.entries[name] = &entry{info: info, adapter: a, manifest: man}
	if warning != "" {
		r.log.Warn("adapter loaded without a full base check", "adapter", name, "why", warning)
	} else {
		r.log.Info("adapter loaded", "adapter", name, "rank", a.Rank, "params", info.Params)
	}
	return info, nil
}

// check verifies that a fits the base.
func (r *Registry) check(name string, a *adapters.Adapter, man *adapters.Manifest) (warning string, err error) {
	b := r.base
	fp := a.BaseFingerprint
	shape := ""
	if man != nil {
		shape = man.BaseShapeFingerprint
		if fp == "" {
			fp = man.BaseFingerprint
		}
	}
	if fp != "" && b.Fingerprint != "" && fp != b.Fingerprint {
		return "", fmt.Errorf("%w: %q was trained on base %s (fingerprint %s) but the loaded base is %s (fingerprint %s): "+
			"use it with the base it was trained on, or train a new adapter on this base",
			ErrWrongBase, name, orUnknown(a.BaseName), fp, b.Name, b.Fingerprint)
	}
	if shape != "" && b.ShapeID != "" && shape != b.ShapeID {
		return "", fmt.Errorf("%w: %q was trained on a base of shape %s but the loaded base %s has shape %s (fingerprint %s)",
			ErrWrongBase, name, shape, b.Name, b.ShapeID, b.Fingerprint)
	}
	if err := lora.Check(b.Model, a); err != nil {
		return "", fmt.Errorf("%w: %q does not fit base %s (fingerprint %s; the adapter records %s): %w",
			ErrWrongBase, name, b.Name, orUnknown(b.Fingerprint), orUnknown(fp), err)
	}
	if fp == "" || b.Fingerprint == "" {
		return fmt.Sprintf("no base fingerprint to compare (adapter: %s, base: %s); every shape fits, so it was loaded — check its output",
			orUnknown(fp), orUnknown(b.Fingerprint)), nil
	}
	return "", nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Unload removes an adapter (by name or CID). Deltas already built keep
// working.
func (r *Registry) Unload(nameOrCID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.lookup(nameOrCID)
	if err != nil {
		return err
	}
	delete(r.entries, e.info.Name)
	r.log.Info("adapter unloaded", "adapter", e.info.Name)
	return nil
}

// lookup finds an entry by name, then by CID. r.mu must be held.
func (r *Registry) lookup(nameOrCID string) (*entry, error) {
	if e, ok := r.entries[nameOrCID]; ok {
		return e, nil
	}
	for _, e := range r.entries {
		if e.info.CID != "" && e.info.CID == nameOrCID {
			return e, nil
		}
	}
	return nil, fmt.Errorf("%w %q: it is not loaded (list the loaded ones with GET /api/adapters, or load it first)", ErrUnknown, nameOrCID)
}

// Get returns the info of an adapter by name or CID.
func (r *Registry) Get(nameOrCID string) (Info, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, err := r.lookup(nameOrCID)
	if err != nil {
		return Info{}, err
	}
	return e.info, nil
}

// Adapter returns the adapter data (shared, read-only) and its manifest.
func (r *Registry) Adapter(nameOrCID string) (*adapters.Adapter, *adapters.Manifest, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, err := r.lookup(nameOrCID)
	if err != nil {
		return nil, nil, err
	}
	return e.adapter, e.manifest, nil
}

// List returns every loaded adapter, sorted by name.
func (r *Registry) List() []Info {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Info, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SetScale sets the scale an adapter is applied at by default (1 = as
// trained; 0 turns it off; at most MaxScale in magnitude).
func (r *Registry) SetScale(nameOrCID string, scale float32) error {
	if err := checkWeight("scale", scale); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.lookup(nameOrCID)
	if err != nil {
		return err
	}
	e.info.Scale = scale
	return nil
}

func checkWeight(what string, w float32) error {
	if math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) || w > MaxScale || w < -MaxScale {
		return fmt.Errorf("%w: %s %v: use a number between %d and %d (1 = as trained)", ErrBadRequest, what, w, -MaxScale, MaxScale)
	}
	return nil
}

// Selected picks one adapter for a request.
type Selected struct {
	Name string `json:"name"`
	// Weight multiplies the adapter's registry scale; 0 means 1.
	Weight float32 `json:"weight,omitempty"`
}

// Delta composes the selected adapters into one delta for a request (nil
// when nothing is selected: the base alone). No base weight is copied; the
// delta holds its own references to the adapters' factors.
func (r *Registry) Delta(sel []Selected) (model.Delta, error) {
	_, d, err := r.Resolve(sel)
	return d, err
}

// Resolve is Delta that may also swap the model: when the selection is one
// baked adapter at the scale it was baked at, it returns the baked model and
// a nil delta (faster), else the base model and the composed delta.
func (r *Registry) Resolve(sel []Selected) (*model.Model, model.Delta, error) {
	if len(sel) == 0 {
		return r.base.Model, nil, nil
	}
	ws := make([]lora.Weighted, 0, len(sel))
	seen := map[string]bool{}
	r.mu.RLock()
	var only *entry
	var onlyW float32
	for _, s := range sel {
		w := s.Weight
		if w == 0 {
			w = 1
		}
		if err := checkWeight("weight", w); err != nil {
			r.mu.RUnlock()
			return nil, nil, err
		}
		e, err := r.lookup(s.Name)
		if err != nil {
			r.mu.RUnlock()
			return nil, nil, err
		}
		if seen[e.info.Name] {
			r.mu.RUnlock()
			return nil, nil, fmt.Errorf("%w: adapter %q is selected twice", ErrBadRequest, e.info.Name)
		}
		seen[e.info.Name] = true
		only, onlyW = e, w*e.info.Scale
		ws = append(ws, lora.Weighted{Adapter: e.adapter, Weight: w * e.info.Scale})
	}
	if len(sel) == 1 && only.baked != nil && only.bakedAt == onlyW {
		m := only.baked
		r.mu.RUnlock()
		return m, nil, nil
	}
	r.mu.RUnlock()
	p, err := lora.NewPlug(r.base.Model, ws...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrWrongBase, err)
	}
	return r.base.Model, p, nil
}

// Bake merges an adapter at its current scale into a copy of the matrices
// it changes, W' = W + scale·(alpha/r)·B·A, re-quantized to each matrix's
// type; the other weights are shared with the base. Resolve then serves
// requests for that adapter alone, at that scale, from the baked model. The
// copy costs the memory of the changed matrices; Unbake or Unload frees it.
func (r *Registry) Bake(nameOrCID string) error {
	r.mu.RLock()
	e, err := r.lookup(nameOrCID)
	var a *adapters.Adapter
	var scale float32
	if err == nil {
		a, scale = e.adapter, e.info.Scale
	}
	r.mu.RUnlock()
	if err != nil {
		return err
	}
	bm, err := Merge(r.base.Model, a, scale)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.entries[e.info.Name]; ok && cur == e {
		e.baked, e.bakedAt = bm, scale
		e.info.Baked = true
		return nil
	}
	return fmt.Errorf("%w %q: it was unloaded while being baked", ErrUnknown, nameOrCID)
}

// Unbake drops an adapter's baked copy.
func (r *Registry) Unbake(nameOrCID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, err := r.lookup(nameOrCID)
	if err != nil {
		return err
	}
	e.baked, e.info.Baked = nil, false
	return nil
}

// Merge returns a model equal to m with a applied at weight w merged into
// the weights: each changed projection is dequantized row by row, updated
// and re-quantized to its own type; unchanged matrices are shared with m.
func Merge(m *model.Model, a *adapters.Adapter, w float32) (*model.Model, error) {
	if err := lora.Check(m, a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrongBase, err)
	}
	out := *m
	out.Layers = slices.Clone(m.Layers)
	s := lora.Scale(a) * w
	keys := a.SortedKeys()
	for _, k := range keys {
		pr, ok := model.ParseProj(string(k.Module))
		if !ok {
			return nil, fmt.Errorf("%w: unknown module %s", ErrBadAdapter, k.Module)
		}
		p := a.Pairs[k]
		L := &out.Layers[k.Layer]
		W := L.Weight(pr)
		vals := make([]float32, W.Rows*W.Cols)
		r := a.Rank
		for i := 0; i < W.Rows; i++ {
			row := vals[i*W.Cols : (i+1)*W.Cols]
			W.DequantizeRow(i, row)
			for j := 0; j < r; j++ {
				if c := s * p.B[i*r+j]; c != 0 {
					tensor.Axpy(c, p.A[j*W.Cols:(j+1)*W.Cols], row)
				}
			}
		}
		nw, err := tensor.Quantized(W.Type, W.Rows, W.Cols, vals)
		if err != nil {
			return nil, fmt.Errorf("bake layer %d %s: %w", k.Layer, k.Module, err)
		}
		setWeight(L, pr, nw)
	}
	return &out, nil
}

func setWeight(L *model.Layer, p model.Proj, w *tensor.Matrix) {
	switch p {
	case model.ProjQ:
		L.Wq = w
	case model.ProjK:
		L.Wk = w
	case model.ProjV:
		L.Wv = w
	case model.ProjO:
		L.Wo = w
	case model.ProjGate:
		L.Gate = w
	case model.ProjUp:
		L.Up = w
	case model.ProjDown:
		L.Down = w
	}
}
