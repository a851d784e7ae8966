package train

import (
	"fmt"
	"math"
	"path/filepath"
	"time"

	"orchmind/adapters"
	"orchmind/trainer/lora"
)

func timeSince(t time.Time) float64 { return time.Since(t).Seconds() }

// finite turns NaN (no eval set) into 0 so the manifest stays valid JSON.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// What the trainer fixes, recorded in orchmind.json beside the plan.
const (
	gradClip      = 1.0
	optimizerName = "adamw(0.9,0.999,1e-8,wd=0)"
	scheduleName  = "linear warm-up + cosine"
)

// save writes the adapter folder: PEFT files, orchmind.json and the extras.
func (j *job) save(r *Result) error {
	p := j.plan
	mods := make([]string, len(j.ad.TargetModules))
	for i, m := range j.ad.TargetModules {
		mods[i] = string(m)
	}
	hp := p.Hyperparameters
	hp.Seed, hp.Optimizer, hp.Schedule, hp.GradClip = j.cfg.Seed, optimizerName, scheduleName, gradClip
	man := adapters.Manifest{
		Announced: adapters.Announced{Name: j.cfg.Name, BaseName: j.cfg.BaseName, BaseFingerprint: j.cfg.BaseFingerprint,
			Rank: j.ad.Rank, Alpha: j.ad.Alpha, TargetModules: mods},
		BaseShapeFingerprint: j.cfg.BaseShapeID,
		Hyperparameters:      &hp, StepsRun: r.Steps, StopReason: r.StopReason,
		DataSummary:     r.Summary,
		PromptTemplate:  r.Summary.Template,
		TrainLossBefore: finite(r.TrainLossBefore), TrainLossAfter: finite(r.TrainLossAfter),
		EvalLossBefore: finite(r.EvalLossBefore), EvalLossAfter: finite(r.EvalLossAfter),
		TokensSeen: r.Tokens, TrainingSeconds: r.Duration.Seconds(),
		OrchmindVersion: j.cfg.Version, Created: time.Now().UTC().Truncate(time.Second),
	}
	if err := lora.WritePEFT(j.dir, j.ad, man, j.cfg.Model); err != nil {
		return err
	}
	if err := lora.WriteGGUF(filepath.Join(j.dir, lora.GGUFFile), j.ad, j.cfg.BaseName, j.cfg.Model.Config); err != nil {
		return fmt.Errorf("train: adapter saved in %s but its GGUF LoRA failed: %w", j.dir, err)
	}
	if j.cfg.Extra != nil {
		if err := j.cfg.Extra(j.dir, j.ad); err != nil {
			return fmt.Errorf("train: adapter saved in %s but an extra file failed: %w", j.dir, err)
		}
	}
	return nil
}
