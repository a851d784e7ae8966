package adapters

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"orchmind/internal/fuzzcheck"
)

// fuzzFolderSeeds returns the three files of real adapter folders:
// one written by WriteFolder, one as HF PEFT writes it (no orchmind.json,
// extra config keys, F16 tensors).
func fuzzFolderSeeds(f *testing.F) (seeds [][3][]byte) {
	dir := filepath.Join(f.TempDir(), "ad")
	a := sample()
	if err := WriteFolder(dir, a, Manifest{Announced: Announced{Name: "facts", BaseFingerprint: a.BaseFingerprint, BaseName: a.BaseName, Rank: a.Rank, Alpha: a.Alpha, Tags: []string{"x"}},
		Hyperparameters: &Hyperparameters{LearningRate: 1e-3}}, SafetensorsCodec{}); err != nil {
		f.Fatal(err)
	}
	var files [3][]byte
	for i, n := range []string{ConfigFile, SafetensorsFile, ManifestFile} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			f.Fatal(err)
		}
		files[i] = b
	}
	seeds = append(seeds, files)
	peft := []byte(`{"alpha_pattern": {}, "auto_mapping": null, "base_model_name_or_path": "HuggingFaceTB/SmolLM-135M",
 "bias": "none", "fan_in_fan_out": false, "inference_mode": true, "init_lora_weights": true, "layers_pattern": null,
 "layers_to_transform": null, "lora_alpha": 16, "lora_dropout": 0.05, "modules_to_save": null, "peft_type": "LORA",
 "r": 2, "rank_pattern": {}, "revision": null, "target_modules": ["q_proj", "down_proj"], "task_type": "CAUSAL_LM"}`)
	seeds = append(seeds, [3][]byte{peft, files[1], nil})
	return seeds
}

// FuzzReadFolder writes fuzzed adapter_config.json, adapter_model.safetensors
// and orchmind.json into a folder and reads it with ReadFolder and
// CheckFolder. Neither may panic; they must agree (CheckFolder accepts
// exactly what ReadFolder accepts, with the same manifest); errors are one
// line; an accepted adapter validates and survives WriteFolder → ReadFolder
// unchanged.
func FuzzReadFolder(f *testing.F) {
	for _, s := range fuzzFolderSeeds(f) {
		f.Add(s[0], s[1], s[2], s[2] != nil)
	}
	tmp := fuzzcheck.Dir(f)
	f.Fuzz(func(t *testing.T, cfg, st, man []byte, withManifest bool) {
		fuzzcheck.Reset(t, tmp)
		dir := filepath.Join(tmp, "in")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(name string, b []byte) {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(ConfigFile, cfg)
		write(SafetensorsFile, st)
		if withManifest {
			write(ManifestFile, man)
		}
		a, m, err := ReadFolder(dir, SafetensorsCodec{})
		cm, cerr := CheckFolder(dir, SafetensorsCodec{})
		if (err == nil) != (cerr == nil) {
			t.Fatalf("ReadFolder error %v but CheckFolder error %v", err, cerr)
		}
		for _, e := range []error{err, cerr} {
			fuzzcheck.OneLine(t, e)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(jsonOf(t, m), jsonOf(t, cm)) {
			t.Fatalf("manifests differ: ReadFolder %+v, CheckFolder %+v", m, cm)
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("ReadFolder accepted an adapter that fails Validate: %v", err)
		}
		out := filepath.Join(tmp, "again")
		var mm Manifest
		if m != nil {
			mm = *m
		}
		if err := WriteFolder(out, a, mm, SafetensorsCodec{}); err != nil {
			t.Fatalf("writing back an accepted adapter: %v", err)
		}
		b, _, err := ReadFolder(out, SafetensorsCodec{})
		if err != nil {
			t.Fatalf("reading back an accepted adapter: %v", err)
		}
		if a.Rank != b.Rank || math.Float32bits(a.Alpha) != math.Float32bits(b.Alpha) || len(a.Pairs) != len(b.Pairs) {
			t.Fatalf("round trip: rank %d alpha %g pairs %d, then rank %d alpha %g pairs %d", a.Rank, a.Alpha, len(a.Pairs), b.Rank, b.Alpha, len(b.Pairs))
		}
		for k, p := range a.Pairs {
			q := b.Pairs[k]
			if q == nil || p.In != q.In || p.Out != q.Out || !sameBits(p.A, q.A) || !sameBits(p.B, q.B) {
				t.Fatalf("round trip changed pair %v", k)
			}
		}
	})
}

func jsonOf(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
