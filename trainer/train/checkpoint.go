package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"orchmind/adapters"
	"orchmind/engine/safetensors"
	"orchmind/internal/atomicfile"
	"orchmind/trainer/data"
	"orchmind/trainer/hparams"
)

// CheckpointFile is the resumable state inside an adapter folder: the
// adapter, AdamW moments, the best adapter so far and the loop's scalars, in
// one safetensors file written atomically.
const CheckpointFile = "checkpoint.safetensors"

func (j *job) checkpointPath() string {
	return filepath.Join(j.cfg.OutDir, "."+j.cfg.Name+"."+CheckpointFile)
}

// planDigest ties a checkpoint to the plan and the data it was made with.
func planDigest(p hparams.Plan, ds *data.Dataset) string {
	q := p
	q.Why = nil
	q.GradCheckpoint = false // it changes the memory used, not the result
	b, _ := json.Marshal(struct {
		P            hparams.Plan
		Train, Eval  int
		Tokens, Mask int
	}{q, ds.Summary.Train, ds.Summary.Eval, ds.Summary.Tokens, ds.Summary.MaskTokens})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func (j *job) saveCheckpoint() error {
	var ts []safetensors.WriteTensor
	add := func(prefix string, a *adapters.Adapter) {
		for _, k := range a.SortedKeys() {
			p := a.Pairs[k]
			name := fmt.Sprintf("%s.%d.%s", prefix, k.Layer, k.Module)
			ts = append(ts, safetensors.F32Tensor(name+".A", []int64{int64(a.Rank), int64(p.In)}, p.A),
				safetensors.F32Tensor(name+".B", []int64{int64(p.Out), int64(a.Rank)}, p.B))
		}
	}
	add("adapter", j.ad)
	add("adam_m", j.opt.M)
	add("adam_v", j.opt.V)
	if j.best != nil {
		add("best", j.best)
	}
	st := j.st
	st.Seconds += timeSince(j.start)
	sb, err := json.Marshal(st)
	if err != nil {
		return err
	}
	meta := map[string]string{"state": string(sb), "adam_step": strconv.Itoa(j.opt.Step)}
	b, err := safetensors.Encode(ts, meta)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := atomicfile.WriteFile(j.checkpointPath(), b, 0o644); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func (j *job) loadCheckpoint() error {
	path := j.checkpointPath()
	f, err := safetensors.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("resume: no checkpoint for %q in %s (train without --resume to start over)", j.cfg.Name, j.cfg.OutDir)
	}
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var st state
	if err := json.Unmarshal([]byte(f.Metadata()["state"]), &st); err != nil {
		return fmt.Errorf("resume: %s: bad state: %w", path, err)
	}
	if st.PlanDigest != j.st.PlanDigest || st.Seed != j.st.Seed {
		return fmt.Errorf("resume: the checkpoint in %s was made with other data, settings or seed: resume with the same command, or train without --resume", path)
	}
	load := func(prefix string, a *adapters.Adapter) error {
		for k, p := range a.Pairs {
			name := fmt.Sprintf("%s.%d.%s", prefix, k.Layer, k.Module)
			for _, t := range []struct {
				n   string
				dst []float32
			}{{name + ".A", p.A}, {name + ".B", p.B}} {
				v, _, err := f.Float32(t.n)
				if err != nil {
					return fmt.Errorf("resume: %s: %w", path, err)
				}
				if len(v) != len(t.dst) {
					return fmt.Errorf("resume: %s: %s has %d values, want %d", path, t.n, len(v), len(t.dst))
				}
				copy(t.dst, v)
			}
		}
		return nil
	}
	if err := load("adapter", j.ad); err != nil {
		return err
	}
	if err := load("adam_m", j.opt.M); err != nil {
		return err
	}
	if err := load("adam_v", j.opt.V); err != nil {
		return err
	}
	if _, ok := f.Info(fmt.Sprintf("best.%d.%s.A", firstKey(j.ad).Layer, firstKey(j.ad).Module)); ok {
		j.best = cloneAdapter(j.ad)
		if err := load("best", j.best); err != nil {
			return err
		}
	}
	n, err := strconv.Atoi(f.Metadata()["adam_step"])
	if err != nil {
		return fmt.Errorf("resume: %s: bad optimiser step", path)
	}
	j.opt.Step = n
	j.st = st
	return nil
}

func firstKey(a *adapters.Adapter) adapters.Key { return a.SortedKeys()[0] }
