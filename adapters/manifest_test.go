package adapters

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// An orchmind.json as orchmind has written it (every key of the manifest).
const manifestJSON = `{
  "name": "facts",
  "description": "answers from the facts file",
  "tags": ["qa", "pt-BR"],
  "language": "pt-BR",
  "base_name": "stories260K",
  "base_fingerprint": "sha256:0123",
  "base_shape_fingerprint": "shape:abcd",
  "rank": 8,
  "alpha": 16,
  "target_modules": ["q_proj", "v_proj"],
  "hyperparameters": {"epochs": 3, "learning_rate": 0.001, "rank": 8, "alpha": 16, "batch_size": 4, "grad_accum": 1, "max_seq_len": 256, "warmup_steps": 10, "eval_fraction": 0.1, "patience": 2, "stop_train_loss": 0, "dropout": 0, "grad_checkpoint": false, "total_steps": 30},
  "steps_run": 30,
  "stop_reason": "epochs",
  "prompt_template": "chatml",
  "data_summary": {"template": "chatml", "examples": 12},
  "train_loss_before": 2.5,
  "train_loss_after": 0.5,
  "eval_loss_before": 2.6,
  "eval_loss_after": 0.7,
  "tokens_seen": 1234,
  "training_seconds": 1.5,
  "orchmind_version": "0.1.0",
  "created": "2026-12-01T10:00:00Z",
  "parents": [],
  "license": "CC-BY-4.0",
  "extra": {"x": 1}
}`

// TestManifestJSONCompatible: orchmind.json reads into the manifest with
// its announced part (Announced, embedded) filled from the same keys as
// before, and writes back to the same keys and values.
func TestManifestJSONCompatible(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(manifestJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(dir)
	if err != nil || m == nil {
		t.Fatalf("ReadManifest: %v, %v", m, err)
	}
	want := Announced{Name: "facts", Description: "answers from the facts file", Tags: []string{"qa", "pt-BR"}, Language: "pt-BR",
		BaseName: "stories260K", BaseFingerprint: "sha256:0123", Rank: 8, Alpha: 16, TargetModules: []string{"q_proj", "v_proj"}, License: "CC-BY-4.0"}
	if !reflect.DeepEqual(m.Announced, want) || m.BaseShapeFingerprint != "shape:abcd" || m.Template() != "chatml" || m.Hyperparameters == nil || m.Hyperparameters.Epochs != 3 {
		t.Fatalf("read %+v", m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]any
	if err := json.Unmarshal([]byte(manifestJSON), &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &after); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("orchmind.json written back differs:\n%s\nwas\n%s", out, manifestJSON)
	}
	if m, err := ReadManifest(t.TempDir()); m != nil || err != nil {
		t.Fatalf("a folder without orchmind.json: %v, %v", m, err)
	}
}

// TestAnnounce: what is announced is the manifest's announced part, with
// the recorded losses as metrics.
func TestAnnounce(t *testing.T) {
	var m Manifest
	if err := json.Unmarshal([]byte(manifestJSON), &m); err != nil {
		t.Fatal(err)
	}
	a := m.Announce()
	if a.Name != "facts" || a.License != "CC-BY-4.0" || a.Language != "pt-BR" || len(a.Metrics) != 4 || a.Metrics["eval_loss_after"] != 0.7 {
		t.Fatalf("announced %+v", a)
	}
	if m.Metrics != nil {
		t.Fatal("Announce changed the manifest's metrics")
	}
}
