package jobs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/node/registry"
	"orchmind/trainer/hparams"
	"orchmind/trainer/progress"
	"orchmind/trainer/train"
)

func config(t *testing.T, epochs int) train.Config {
	t.Helper()
	b, err := base.Random(model.Config{Dim: 32, HiddenDim: 48, Layers: 2, Heads: 4, KVHeads: 2, SeqLen: 64, SharedClassifier: true}, quant.F32, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "facts.jsonl")
	var lines []string
	for _, f := range []string{"sky|blue", "grass|green", "sun|hot", "snow|cold"} {
		q, a, _ := strings.Cut(f, "|")
		lines = append(lines, `{"prompt":"the `+q+` is","completion":" `+a+`"}`)
	}
	if err := os.WriteFile(data, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return train.Config{Model: b.Model, Tokenizer: b.Train, Data: data, Name: "facts", OutDir: filepath.Join(dir, "out"), Seed: 1,
		Overrides: hparams.Overrides{Epochs: &epochs}}
}

func waitEnd(t *testing.T, m *Manager, id string) Job {
	t.Helper()
	var events int
	j, err := m.Follow(context.Background(), id, time.Second, func(progress.Event) error { events++; return nil }, func() error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if events == 0 {
		t.Error("no progress events were followed")
	}
	return j
}

func TestJobRunsPlugsAndReports(t *testing.T) {
	m := New(nil)
	var plugged atomic.Value
	released := make(chan struct{})
	j, err := m.Start(config(t, 2), Spec{Name: "facts", Release: func() { close(released) }, Plug: func(dir string) (*registry.Info, error) {
		plugged.Store(dir)
		return &registry.Info{Name: "facts", Dir: dir}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != Running || m.Running() != j.ID {
		t.Fatalf("started job is %q, running %q", j.State, m.Running())
	}
	end := waitEnd(t, m, j.ID)
	if end.State != Done || end.Result == nil || end.Result.Steps == 0 || end.Plan == nil || end.Summary == nil {
		t.Fatalf("finished job: %+v", end)
	}
	if end.Adapter == nil || plugged.Load() != end.Result.Dir {
		t.Fatalf("plugged %v, result dir %s", plugged.Load(), end.Result.Dir)
	}
	<-released
	if _, err := os.Stat(filepath.Join(end.Result.Dir, "adapter_config.json")); err != nil {
		t.Fatalf("adapter not saved: %v", err)
	}
	if m.Running() != "" {
		t.Fatalf("job %s still marked running", m.Running())
	}
	if _, err := m.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestOneJobAtATimeAndStop(t *testing.T) {
	m := New(nil)
	j, err := m.Start(config(t, 100000), Spec{Name: "long"})
	if err != nil {
		t.Fatal(err)
	}
	released := false
	if _, err := m.Start(config(t, 1), Spec{Name: "second", Release: func() { released = true }}); !errors.Is(err, ErrBusy) || !released {
		t.Fatalf("second job while one runs: %v (released %v)", err, released)
	}
	if _, err := m.Stop(j.ID); err != nil {
		t.Fatal(err)
	}
	end := waitEnd(t, m, j.ID)
	if end.State != Stopped {
		t.Fatalf("stopped job ended %q (%s)", end.State, end.Error)
	}
	m.StopAll()
}

func TestPlugFailureFailsTheJob(t *testing.T) {
	m := New(nil)
	j, err := m.Start(config(t, 1), Spec{Name: "facts", Plug: func(string) (*registry.Info, error) { return nil, errors.New("wrong base") }})
	if err != nil {
		t.Fatal(err)
	}
	end := waitEnd(t, m, j.ID)
	if end.State != Failed || !strings.Contains(end.Error, "saved in") || !strings.Contains(end.Error, "wrong base") {
		t.Fatalf("job with a failing plug: %q %q", end.State, end.Error)
	}
}
