package train

import (
	"context"
	"math"
	"testing"

	"orchmind/trainer/hparams"
	"orchmind/trainer/progress"
)

// TestProgressIsHonest: each training event carries that step's loss (the
// smoothed mean beside it), eval losses are reported when there is an eval
// split, and the final event's figures are the summary's.
func TestProgressIsHonest(t *testing.T) {
	m := randomModel(t, 3)
	bus := progress.NewBus()
	ch, unsub := bus.Subscribe(1 << 14)
	defer unsub()
	epochs := 2
	res, err := Run(context.Background(), Config{Model: m, Tokenizer: byteTok{}, Data: writeQA(t, 120), Name: "p", OutDir: t.TempDir(), Seed: 1, Bus: bus,
		Overrides: hparams.Overrides{Epochs: &epochs}})
	if err != nil {
		t.Fatal(err)
	}
	bus.Close()
	var steps []float64
	evals := 0
	var last progress.Event
	for ev := range ch {
		last = ev
		if ev.Phase == progress.PhaseTrain {
			steps = append(steps, ev.Loss)
			from := max(0, len(steps)-16)
			var sum float64
			for _, l := range steps[from:] {
				sum += l
			}
			if want := sum / float64(len(steps)-from); math.Abs(ev.LossAvg-want) > 1e-9 {
				t.Fatalf("step %d: smoothed loss %g, want the mean of the last steps %g", ev.Step, ev.LossAvg, want)
			}
			if ev.EvalLoss > 0 {
				evals++
			}
		}
	}
	if len(steps) != res.Steps {
		t.Fatalf("%d train events for %d steps", len(steps), res.Steps)
	}
	differ := 0
	for i := 1; i < len(steps); i++ {
		if steps[i] != steps[i-1] {
			differ++
		}
	}
	if differ < len(steps)/2 {
		t.Errorf("the per-step losses barely change: %v", steps)
	}
	if res.Summary.Eval == 0 || evals == 0 {
		t.Errorf("eval split of %d examples, %d events with an eval loss", res.Summary.Eval, evals)
	}
	if last.Phase != progress.PhaseDone || last.Loss != finite(res.TrainLossAfter) || last.EvalLoss != finite(res.EvalLossAfter) {
		t.Errorf("final event %+v; summary train %g eval %g", last, res.TrainLossAfter, res.EvalLossAfter)
	}
}
