package adapters

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"orchmind/internal/atomicfile"
	"orchmind/protocol"
)

// File names inside an adapter folder.
const (
	ConfigFile      = "adapter_config.json"
	SafetensorsFile = "adapter_model.safetensors"
	ManifestFile    = "orchmind.json"
)

// PEFTConfig is the subset of PEFT's adapter_config.json that orchmind
// writes and reads.
type PEFTConfig struct {
	PEFTType             string   `json:"peft_type"`
	TaskType             string   `json:"task_type"`
	R                    int      `json:"r"`
	LoraAlpha            float32  `json:"lora_alpha"`
	LoraDropout          float32  `json:"lora_dropout"`
	TargetModules        []string `json:"target_modules"`
	BaseModelNameOrPath  string   `json:"base_model_name_or_path"`
	Bias                 string   `json:"bias"`
	FanInFanOut          bool     `json:"fan_in_fan_out"`
	InferenceMode        bool     `json:"inference_mode"`
	UseRSLoRA            bool     `json:"use_rslora"`
	UseDoRA              bool     `json:"use_dora"`
	ModulesToSave        []string `json:"modules_to_save"`
	LayersToTransform    []int    `json:"layers_to_transform"`
	RevisionOfBaseModel  *string  `json:"revision"`
	InitLoraWeights      bool     `json:"init_lora_weights"`
	AutoMappingOfAdapter *string  `json:"auto_mapping"`
}

// Announced is the part of the manifest that is announced to the swarm and
// listed by searches (name, description, tags, language, base, rank, alpha,
// target modules, metrics, license): protocol.Manifest, the one type those
// fields have from orchmind.json to the signed announcement to the API's
// listing.
type Announced = protocol.Manifest

// Manifest is orchmind.json: everything about an adapter except its data.
// Its announced fields (Announced, embedded) are JSON keys of the same
// object, as they always were.
type Manifest struct {
	Announced
	BaseShapeFingerprint string           `json:"base_shape_fingerprint"`
	Hyperparameters      *Hyperparameters `json:"hyperparameters,omitempty"`
	// StepsRun and StopReason say how training ended.
	StepsRun   int    `json:"steps_run,omitempty"`
	StopReason string `json:"stop_reason,omitempty"`
	// Merge is set on adapters made by merging their Parents.
	Merge *Merge `json:"merge,omitempty"`
	// PromptTemplate names the chat template (engine/chat) the training
	// data was formatted with; generation applies it to a plain question.
	PromptTemplate  string             `json:"prompt_template,omitempty"`
	DataSummary     any                `json:"data_summary,omitempty"`
	TrainLossBefore float64            `json:"train_loss_before,omitempty"`
	TrainLossAfter  float64            `json:"train_loss_after,omitempty"`
	EvalLossBefore  float64            `json:"eval_loss_before,omitempty"`
	EvalLossAfter   float64            `json:"eval_loss_after,omitempty"`
	TokensSeen      int64              `json:"tokens_seen,omitempty"`
	TrainingSeconds float64            `json:"training_seconds,omitempty"`
	OrchmindVersion string             `json:"orchmind_version"`
	Created         time.Time          `json:"created"`
	Parents         []string           `json:"parents"`
	Extra           map[string]float64 `json:"extra,omitempty"`
}

// Announce returns what is announced of the manifest: Announced, with the
// losses recorded (train_loss_before … eval_loss_after, those not zero)
// added to its metrics.
func (m *Manifest) Announce() protocol.Manifest {
	a := m.Announced
	a.Metrics = maps.Clone(a.Metrics)
	for k, v := range map[string]float64{"train_loss_before": m.TrainLossBefore, "train_loss_after": m.TrainLossAfter,
		"eval_loss_before": m.EvalLossBefore, "eval_loss_after": m.EvalLossAfter} {
		if v != 0 {
			if a.Metrics == nil {
				a.Metrics = map[string]float64{}
			}
			a.Metrics[k] = v
		}
	}
	return a
}

// Template returns the prompt template the adapter was trained with:
// PromptTemplate, else the "template" its data summary records (older
// manifests), else "".
func (m *Manifest) Template() string {
	if m == nil {
		return ""
	}
	if m.PromptTemplate != "" {
		return m.PromptTemplate
	}
	if s, ok := m.DataSummary.(map[string]any); ok {
		if t, ok := s["template"].(string); ok {
			return t
		}
	}
	if b, err := json.Marshal(m.DataSummary); err == nil {
		var s struct {
			Template string `json:"template"`
		}
		if json.Unmarshal(b, &s) == nil {
			return s.Template
		}
	}
	return ""
}

// Tensor is a named f32 tensor with a row-major shape.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// TensorCodec encodes tensors into one file (safetensors or GGUF).
type TensorCodec interface {
	WriteTensors(path string, ts []Tensor, meta map[string]string) error
	ReadTensors(path string) ([]Tensor, map[string]string, error)
}

// PEFTConfigFor builds the adapter_config.json content for a.
func PEFTConfigFor(a *Adapter) PEFTConfig {
	mods := make([]string, len(a.TargetModules))
	for i, m := range a.TargetModules {
		mods[i] = string(m)
	}
	return PEFTConfig{PEFTType: "LORA", TaskType: "CAUSAL_LM", R: a.Rank, LoraAlpha: a.Alpha,
		LoraDropout: a.Dropout, TargetModules: mods, BaseModelNameOrPath: a.BaseName, Bias: "none",
		InferenceMode: true, InitLoraWeights: true}
}

// PEFTTensors lists a's tensors with PEFT names and shapes.
func PEFTTensors(a *Adapter) ([]Tensor, error) {
	var ts []Tensor
	for _, k := range a.SortedKeys() {
		p := a.Pairs[k]
		an, bn, err := PEFTNamesIn(k, a.TextModel)
		if err != nil {
			return nil, err
		}
		ts = append(ts, Tensor{an, []int{a.Rank, p.In}, p.A}, Tensor{bn, []int{p.Out, a.Rank}, p.B})
	}
	return ts, nil
}

// WriteFolder writes a PEFT adapter folder (adapter_config.json,
// adapter_model.safetensors through codec, orchmind.json) at dir atomically:
// it is built in a temp folder beside dir, fsynced, then renamed into place.
// An existing dir is replaced.
func WriteFolder(dir string, a *Adapter, m Manifest, codec TensorCodec) error {
	if codec == nil {
		return errors.New("write adapter: no safetensors codec")
	}
	if err := a.Validate(); err != nil {
		return fmt.Errorf("write adapter %s: %w", dir, err)
	}
	ts, err := PEFTTensors(a)
	if err != nil {
		return fmt.Errorf("write adapter %s: %w", dir, err)
	}
	parent := filepath.Dir(dir)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("write adapter %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("write adapter %s: %w", dir, err)
	}
	if err := writeJSON(filepath.Join(tmp, ConfigFile), PEFTConfigFor(a)); err != nil {
		return fmt.Errorf("write adapter %s: %w", dir, err)
	}
	if m.Parents == nil {
		m.Parents = []string{}
	}
	if err := writeJSON(filepath.Join(tmp, ManifestFile), m); err != nil {
		return fmt.Errorf("write adapter %s: %w", dir, err)
	}
	meta := map[string]string{"format": "pt"}
	if err := codec.WriteTensors(filepath.Join(tmp, SafetensorsFile), ts, meta); err != nil {
		return fmt.Errorf("write adapter %s: tensors: %w", dir, err)
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return fmt.Errorf("write adapter %s: %w", dir, err)
	}
	old := ""
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("write adapter %s: move old folder aside: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return fmt.Errorf("write adapter %s: %w", dir, err)
	}
	if old != "" {
		_ = os.RemoveAll(old)
	}
	return atomicfile.SyncDir(parent)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

// pickleExts are checkpoint formats that are Python pickles.
var pickleExts = []string{".bin", ".pt", ".pth", ".pkl", ".ckpt"}

// TensorShapeReader is implemented by codecs that can read a tensor
// file's names and shapes, with every check ReadTensors makes of them,
// without reading the tensor data (SafetensorsCodec).
type TensorShapeReader interface {
	ReadTensorShapes(path string) ([]Tensor, map[string]string, error)
}

// ReadFolder reads a PEFT adapter folder written by WriteFolder or by PEFT.
// The manifest is optional (nil when absent). A folder holding only pickle
// weights (adapter_model.bin etc.) is refused.
func ReadFolder(dir string, codec TensorCodec) (*Adapter, *Manifest, error) {
	return readFolder(dir, codec, false)
}

// CheckFolder makes every check ReadFolder makes of an adapter folder —
// config, tensor names, dtypes, shapes against the rank, complete pairs,
// manifest — and returns the manifest (nil when absent), without reading
// the tensor data when codec implements TensorShapeReader: for a caller
// that only needs to know the folder is a usable adapter.
func CheckFolder(dir string, codec TensorCodec) (*Manifest, error) {
	_, sr := codec.(TensorShapeReader)
	_, man, err := readFolder(dir, codec, sr)
	return man, err
}

// readFolder is ReadFolder; with shapesOnly the tensors' data is not read
// (codec is a TensorShapeReader) and the pairs of the result hold no data.
func readFolder(dir string, codec TensorCodec, shapesOnly bool) (*Adapter, *Manifest, error) {
	if codec == nil {
		return nil, nil, errors.New("read adapter: no safetensors codec")
	}
	cfgPath := filepath.Join(dir, ConfigFile)
	b, err := readSmallFile(cfgPath)
	if err != nil {
		return nil, nil, fmt.Errorf("read adapter: %w", err)
	}
	var cfg PEFTConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, nil, fmt.Errorf("read adapter: %s: %w", cfgPath, err)
	}
	if !strings.EqualFold(cfg.PEFTType, "LORA") {
		return nil, nil, fmt.Errorf("read adapter: %s: peft_type %q is not LORA", cfgPath, cfg.PEFTType)
	}
	if cfg.FanInFanOut || cfg.UseDoRA || cfg.UseRSLoRA {
		return nil, nil, fmt.Errorf("read adapter: %s: fan_in_fan_out, use_dora and use_rslora are not supported", cfgPath)
	}
	st := filepath.Join(dir, SafetensorsFile)
	if _, err := os.Stat(st); err != nil {
		for _, e := range pickleExts {
			if p := filepath.Join(dir, "adapter_model"+e); fileExists(p) {
				return nil, nil, RefusePickle(p)
			}
		}
		return nil, nil, fmt.Errorf("read adapter: %w", err)
	}
	var ts []Tensor
	if shapesOnly {
		ts, _, err = codec.(TensorShapeReader).ReadTensorShapes(st)
	} else {
		ts, _, err = codec.ReadTensors(st)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read adapter: %s: %w", st, err)
	}
	a := &Adapter{Rank: cfg.R, Alpha: cfg.LoraAlpha, Dropout: cfg.LoraDropout, BaseName: cfg.BaseModelNameOrPath, Pairs: map[Key]*Pair{}}
	for _, m := range cfg.TargetModules {
		a.TargetModules = append(a.TargetModules, Module(m))
	}
	vision := 0
	for _, t := range ts {
		if IsPEFTVisionName(t.Name) {
			vision++ // Gemma 3's vision tower: orchmind runs the text model
			continue
		}
		k, isA, err := ParsePEFTName(t.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("read adapter: %s: %w", st, err)
		}
		a.TextModel = PEFTTextModel(t.Name)
		if len(t.Shape) != 2 {
			return nil, nil, fmt.Errorf("read adapter: %s: tensor %s has shape %v, want 2-D", st, t.Name, t.Shape)
		}
		p := a.Pairs[k]
		if p == nil {
			p = &Pair{}
			a.Pairs[k] = p
		}
		if isA {
			if t.Shape[0] != cfg.R {
				return nil, nil, fmt.Errorf("read adapter: %s: %s has shape %v, want [r=%d, in]", st, t.Name, t.Shape, cfg.R)
			}
			p.In, p.A = t.Shape[1], t.Data
		} else {
			if t.Shape[1] != cfg.R {
				return nil, nil, fmt.Errorf("read adapter: %s: %s has shape %v, want [out, r=%d]", st, t.Name, t.Shape, cfg.R)
			}
			p.Out, p.B = t.Shape[0], t.Data
		}
	}
	if vision > 0 {
		slog.Info("adapter: LoRA tensors of the vision tower and projector skipped: orchmind runs the text model", "dir", dir, "tensors", vision)
	}
	if err := a.validate(!shapesOnly); err != nil {
		return nil, nil, fmt.Errorf("read adapter %s: %w", dir, err)
	}
	man, err := ReadManifest(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read adapter: %w", err)
	}
	if man != nil {
		a.BaseFingerprint = man.BaseFingerprint
		if a.BaseName == "" {
			a.BaseName = man.BaseName
		}
	}
	return a, man, nil
}

// ReadManifest reads the orchmind.json of the adapter folder dir; it
// returns nil and no error when there is none. A file over MaxJSONFileSize
// or not JSON is an error naming the file.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	b, err := readSmallFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &m, nil
}

// MaxJSONFileSize bounds adapter_config.json and orchmind.json: both are a
// few hundred bytes, and a pulled folder comes from a peer, so a larger
// one is refused rather than read into memory.
const MaxJSONFileSize = 1 << 20

// readSmallFile reads a JSON file of an adapter folder, refusing one
// larger than MaxJSONFileSize (checked while reading, not from Stat alone)
// or one that is not a regular file.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > MaxJSONFileSize {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d a manifest may have; the folder is not an orchmind adapter", path, fi.Size(), MaxJSONFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxJSONFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxJSONFileSize {
		return nil, fmt.Errorf("%s is more than the %d bytes a manifest may have; the folder is not an orchmind adapter", path, MaxJSONFileSize)
	}
	return b, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// RefusePickle returns the error explaining why a pickle checkpoint at path
// is not loaded and how to convert it.
func RefusePickle(path string) error {
	return fmt.Errorf("refusing to load %s: it is a Python pickle file, and unpickling can run arbitrary code; "+
		"convert it to safetensors first (e.g. in Python: `from safetensors.torch import save_file; "+
		"save_file(torch.load(%q, weights_only=True), \"adapter_model.safetensors\")`) or to GGUF with llama.cpp's convert_lora_to_gguf.py", path, filepath.Base(path))
}

// IsPickle reports whether path has a pickle checkpoint extension.
func IsPickle(path string) bool {
	e := strings.ToLower(filepath.Ext(path))
	for _, x := range pickleExts {
		if e == x {
			return true
		}
	}
	return false
}

// CheckBase returns an error showing both fingerprints when the adapter was
// trained on a different base model than the one loaded.
func CheckBase(adapterFP, adapterName, baseFP, baseName string) error {
	if adapterFP == "" {
		return fmt.Errorf("adapter has no base fingerprint: cannot verify it matches base %s (%s)", baseName, baseFP)
	}
	if adapterFP != baseFP {
		return fmt.Errorf("adapter was trained on base %s (fingerprint %s) but the loaded base is %s (fingerprint %s)", adapterName, adapterFP, baseName, baseFP)
	}
	return nil
}

// FolderSize is the total size in bytes of the files in dir and below it
// (unreadable entries count as nothing).
func FolderSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, err := d.Info(); err == nil {
				n += st.Size()
			}
		}
		return nil
	})
	return n
}
