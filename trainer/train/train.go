package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"orchmind/adapters"
	"orchmind/engine/chat"
	"orchmind/engine/model"
	"orchmind/engine/tensor"
	"orchmind/engine/tokenizer"
	"orchmind/internal/sysmem"
	"orchmind/trainer/data"
	"orchmind/trainer/hparams"
	"orchmind/trainer/lora"
	"orchmind/trainer/progress"
)

// Config describes a training job.
type Config struct {
	Model     *model.Model
	Tokenizer tokenizer.Encoder
	// Data is a file or folder of training data (see trainer/data).
	Data     string
	Template chat.Template
	// Overrides replace the smart hyperparameters.
	Overrides hparams.Overrides
	// Name of the adapter; its folder is OutDir/Name.
	Name, OutDir string
	Seed         uint64
	// CheckpointEvery saves a resumable checkpoint every so many optimiser
	// steps (0: about every 5% of the run, at least every 200 steps). A
	// checkpoint is also saved when the context is cancelled.
	CheckpointEvery int
	// Resume continues from the checkpoint in the adapter folder.
	Resume bool
	// StopOnBadLine stops at a malformed JSONL line instead of skipping it.
	StopOnBadLine bool
	// QuestionColumn and AnswerColumn name the CSV columns of questions
	// and answers (empty: recognised by name).
	QuestionColumn, AnswerColumn string
	// Base identifies the base model in the manifest.
	BaseName, BaseFingerprint, BaseShapeID string
	// Extra writes additional files into the finished adapter folder (which
	// already holds the PEFT files, adapter.gguf and orchmind.json); it may
	// be nil.
	Extra   func(dir string, a *adapters.Adapter) error
	Version string
	Bus     *progress.Bus
	Log     *slog.Logger
	// OnPlan is called once the dataset is built and the plan chosen, before
	// training starts (the CLI prints the explanations).
	OnPlan func(hparams.Plan, data.Summary)
	// FreeMemory is the memory free for training in bytes, for the choice
	// of gradient checkpointing (0: ask the machine; negative: unknown).
	FreeMemory int64
}

// Result is what a finished (or stopped) job produced.
type Result struct {
	Dir     string
	Adapter *adapters.Adapter
	Plan    hparams.Plan
	Summary data.Summary
	// Losses are mean cross-entropies per counted token.
	TrainLossBefore, TrainLossAfter float64
	EvalLossBefore, EvalLossAfter   float64
	Steps                           int
	Tokens                          int64
	Duration                        time.Duration
	// StopReason says why training ended.
	StopReason string
}

// ErrStopped is returned (wrapped) when the context was cancelled; a
// checkpoint was saved and the job can be resumed.
var ErrStopped = errors.New("training stopped")

// Prepare builds the dataset and chooses the plan without training.
func Prepare(ctx context.Context, cfg *Config) (*data.Dataset, hparams.Plan, error) {
	m := cfg.Model
	opt := data.Options{Load: data.LoadOptions{StopOnBadLine: cfg.StopOnBadLine, QuestionColumn: cfg.QuestionColumn, AnswerColumn: cfg.AnswerColumn},
		Template: cfg.Template, MaxSeqLen: m.SeqLen, Seed: cfg.Seed}
	corpus, err := data.Tokenize(ctx, cfg.Data, cfg.Tokenizer, opt)
	if err != nil {
		return nil, hparams.Plan{}, err
	}
	lengths := corpus.Lengths()
	tokens, longest := 0, 0
	for _, n := range lengths {
		tokens += min(n, m.SeqLen)
		longest = max(longest, n)
	}
	plan, err := hparams.Choose(
		hparams.Dataset{Examples: len(lengths), Tokens: max(tokens, len(lengths)), LongestTokens: longest, Lengths: lengths},
		hparams.Model{Params: Params(m), Layers: len(m.Layers), Dim: m.Dim, ContextLen: m.SeqLen,
			HiddenDim: m.HiddenDim, Heads: m.Heads, KVDim: m.KVDim(), QDim: m.QDim(), KVHeads: m.KVHeads, QKNorm: m.QKNorm(), FreeMemory: freeMemory(cfg),
			Vocab: m.Vocab, SandwichNorm: m.SandwichNorm(), AttnSoftcap: m.AttnSoftcap > 0, FinalSoftcap: m.FinalSoftcap > 0,
			BF16Tiles: tensor.BF16Tiles()},
		cfg.Overrides)
	if err != nil {
		return nil, plan, err
	}
	plan.MaxSeqLen = min(plan.MaxSeqLen, m.SeqLen)
	ds, err := corpus.Fit(ctx, plan.MaxSeqLen, plan.EvalFraction, cfg.Seed)
	if err != nil {
		return nil, plan, err
	}
	if ds.Summary.Examples != len(lengths) {
		// Long texts were split or examples skipped: count the steps on
		// the examples there are.
		plan.Recount(ds.Summary.Train, cfg.Overrides)
	}
	return ds, plan, nil
}

// freeMemory is the memory the plan may count on: cfg.FreeMemory, else what
// the machine says is available.
func freeMemory(cfg *Config) int64 {
	if cfg.FreeMemory != 0 {
		return max(cfg.FreeMemory, 0)
	}
	n, _ := sysmem.Available()
	return n
}

// Params counts the base model's parameters.
func Params(m *model.Model) int64 {
	c := m.Config
	n := int64(c.Vocab) * int64(c.Dim)
	if !c.SharedClassifier {
		n *= 2
	}
	per := int64(c.Dim)*int64(2*c.Dim+2*c.KVDim()+3*c.HiddenDim) + 2*int64(c.Dim)
	return n + int64(c.Layers)*per + int64(c.Dim)
}

// job is the mutable state of a run; everything a checkpoint must hold.
type job struct {
	cfg    *Config
	plan   hparams.Plan
	ds     *data.Dataset
	ad     *adapters.Adapter
	opt    *lora.AdamW
	eng    *lora.Engine
	dir    string
	st     state
	best   *adapters.Adapter
	start  time.Time
	tokens int64 // this process's tokens, for tokens/s
	// firstStep is the step this process started at (after a resume).
	firstStep int
}

// state is the resumable scalar state, stored in the checkpoint.
type state struct {
	Step            int     `json:"step"`
	Draws           uint64  `json:"draws"`
	Tokens          int64   `json:"tokens"`
	EpochLossSum    float64 `json:"epoch_loss_sum"`
	EpochLossCount  int     `json:"epoch_loss_count"`
	LastEpochLoss   float64 `json:"last_epoch_loss"`
	BestEval        float64 `json:"best_eval"`
	BadEvals        int     `json:"bad_evals"`
	TrainLossBefore float64 `json:"train_loss_before"`
	EvalLossBefore  float64 `json:"eval_loss_before"`
	Seconds         float64 `json:"seconds"`
	Seed            uint64  `json:"seed"`
	PlanDigest      string  `json:"plan_digest"`
}

// Run trains an adapter as cfg says and writes it to OutDir/Name.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		return nil, errors.New("train: the adapter needs a name (--name)")
	}
	if err := adapters.CheckName(cfg.Name); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if cfg.OutDir == "" {
		cfg.OutDir = "lora_adapters"
	}
	j := &job{cfg: &cfg, dir: filepath.Join(cfg.OutDir, cfg.Name), start: time.Now()}
	j.emit(progress.Event{Phase: progress.PhaseData, Message: "reading " + cfg.Data})
	ds, plan, err := Prepare(ctx, &cfg)
	if err != nil {
		return nil, j.fail(err)
	}
	j.ds, j.plan = ds, plan
	if cfg.OnPlan != nil {
		cfg.OnPlan(plan, ds.Summary)
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, j.fail(fmt.Errorf("train: output folder: %w", err))
	}
	mods := make([]adapters.Module, len(plan.TargetModules))
	for i, s := range plan.TargetModules {
		mods[i] = adapters.Module(s)
	}
	j.ad, err = lora.New(cfg.Model, plan.Rank, float32(plan.Alpha), mods, cfg.Seed)
	if err != nil {
		return nil, j.fail(err)
	}
	j.ad.Dropout = float32(plan.Dropout)
	j.ad.BaseFingerprint, j.ad.BaseName = cfg.BaseFingerprint, cfg.BaseName
	j.opt = lora.NewAdamW(j.ad)
	j.eng, err = lora.NewEngine(cfg.Model, j.ad, cfg.Seed)
	if err != nil {
		return nil, j.fail(err)
	}
	j.eng.Dropout = float32(plan.Dropout)
	j.eng.Checkpoint = plan.GradCheckpoint
	j.eng.BF16 = plan.Precision == hparams.PrecisionBF16
	j.st = state{BestEval: math.MaxFloat64, Seed: cfg.Seed, PlanDigest: planDigest(plan, ds)}

	if cfg.Resume {
		if err := j.loadCheckpoint(); err != nil {
			return nil, j.fail(err)
		}
		cfg.Log.Info("resumed", "step", j.st.Step, "of", plan.TotalSteps)
		j.firstStep = j.st.Step
	} else {
		j.emit(progress.Event{Phase: progress.PhaseEval, Message: "measuring the base model's loss"})
		j.st.TrainLossBefore = finite(j.meanLoss(ctx, ds.Train, 64))
		j.st.EvalLossBefore = finite(j.meanLoss(ctx, ds.Eval, 0))
		if ctx.Err() != nil {
			return nil, j.fail(fmt.Errorf("training stopped before its first step: nothing to resume, %w", ctx.Err()))
		}
	}
	stop, err := j.loop(ctx)
	if err != nil {
		return nil, j.fail(err)
	}
	if j.best != nil {
		copyAdapter(j.ad, j.best)
	}
	res := &Result{Dir: j.dir, Adapter: j.ad, Plan: plan, Summary: ds.Summary, Steps: j.st.Step, Tokens: j.st.Tokens,
		TrainLossBefore: j.st.TrainLossBefore, EvalLossBefore: j.st.EvalLossBefore, StopReason: stop,
		Duration: time.Duration((j.st.Seconds + time.Since(j.start).Seconds()) * float64(time.Second))}
	j.emit(progress.Event{Phase: progress.PhaseEval, Message: "measuring the adapter's loss"})
	res.TrainLossAfter = j.meanLoss(ctx, ds.Train, 64)
	res.EvalLossAfter = j.meanLoss(ctx, ds.Eval, 0)
	j.emit(progress.Event{Phase: progress.PhaseSave, Message: "writing " + j.dir})
	if err := j.save(res); err != nil {
		return nil, j.fail(err)
	}
	_ = os.Remove(j.checkpointPath())
	j.emit(progress.Event{Phase: progress.PhaseDone, Step: res.Steps, Total: plan.TotalSteps, Percent: 100,
		Loss: finite(res.TrainLossAfter), EvalLoss: finite(res.EvalLossAfter), Final: true,
		Message: fmt.Sprintf("adapter saved in %s (%s)", j.dir, stop)})
	return res, nil
}

func (j *job) emit(ev progress.Event) {
	if j.cfg.Bus == nil {
		return
	}
	ev.Time = time.Now()
	if ev.RSSBytes == 0 {
		ev.RSSBytes = rss()
	}
	j.cfg.Bus.Publish(ev)
}

func (j *job) fail(err error) error {
	j.emit(progress.Event{Phase: progress.PhaseError, Message: err.Error(), Final: true})
	return err
}

// order is the shuffled order of the training examples in an epoch; it
// depends only on the seed and the epoch, so a resumed run sees the same.
func (j *job) order(epoch int) []int {
	rng := rand.New(rand.NewPCG(j.cfg.Seed, uint64(epoch)+1))
	return rng.Perm(len(j.ds.Train))
}

// loop runs the optimiser steps and returns why it stopped.
func (j *job) loop(ctx context.Context) (string, error) {
	p, cfg := j.plan, j.cfg
	per := p.BatchSize * p.GradAccum
	every := cfg.CheckpointEvery
	if every <= 0 {
		every = min(max(p.TotalSteps/20, 1), 200)
	}
	evalEvery := p.StepsPerEpoch
	if p.StepsPerEpoch > 200 {
		evalEvery = max(p.StepsPerEpoch/4, 50)
	}
	j.eng.ZeroGrads()
	var order []int
	lastEpoch := -1
	recent := make([]float64, 0, 16)
	for j.st.Step < p.TotalSteps {
		if ctx.Err() != nil {
			if err := j.saveCheckpoint(); err != nil {
				return "", fmt.Errorf("%w (and the checkpoint could not be saved: %v)", ErrStopped, err)
			}
			return "", fmt.Errorf("%w: checkpoint at step %d in %s", ErrStopped, j.st.Step, j.dir)
		}
		step := j.st.Step
		epoch, within := step/p.StepsPerEpoch, step%p.StepsPerEpoch
		if epoch != lastEpoch {
			order, lastEpoch = j.order(epoch), epoch
		}
		lo := within * per
		hi := min(lo+per, len(order))
		var batch []data.Example
		for _, i := range order[lo:hi] {
			batch = append(batch, j.ds.Train[i])
		}
		seqs := pack(batch, min(p.MaxSeqLen, cfg.Model.SeqLen))
		total := 0
		for _, s := range seqs {
			total += lora.Counted(s)
		}
		var sum float64
		var toks int64
		j.eng.SetDraws(j.st.Draws)
		for _, s := range seqs {
			ls, _, err := j.eng.Accumulate(s, 1/float32(max(total, 1)))
			if err != nil {
				return "", err
			}
			sum += ls
			toks += int64(len(s.IDs))
		}
		j.st.Draws = j.eng.Draws()
		lora.ClipGradNorm(j.eng.Grads, gradClip)
		lr := lora.LR(p.LearningRate, step, p.WarmupSteps, p.TotalSteps)
		if err := j.opt.Update(j.ad, j.eng.Grads, lr); err != nil {
			return "", err
		}
		j.eng.ZeroGrads()
		loss := sum / float64(max(total, 1))
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return "", fmt.Errorf("train: the loss became %v at step %d: lower the learning rate (--lr)", loss, step+1)
		}
		j.st.Step++
		j.st.Tokens += toks
		j.tokens += toks
		j.st.EpochLossSum += sum
		j.st.EpochLossCount += total
		if len(recent) == cap(recent) {
			recent = recent[1:]
		}
		recent = append(recent, loss)
		elapsed := time.Since(j.start).Seconds()
		tps := float64(j.tokens) / max(elapsed, 1e-9)
		left := p.TotalSteps - j.st.Step
		eta := time.Duration(float64(left) * elapsed / float64(max(j.st.Step-j.firstStep, 1)) * float64(time.Second))
		ev := progress.Event{Phase: progress.PhaseTrain, Step: j.st.Step, Total: p.TotalSteps, Epoch: epoch + 1,
			Percent: 100 * float64(j.st.Step) / float64(p.TotalSteps), Loss: loss, LossAvg: mean(recent), LR: lr, TokensPS: tps, ETA: eta}

		endOfEpoch := j.st.Step%p.StepsPerEpoch == 0
		if endOfEpoch {
			j.st.LastEpochLoss = j.st.EpochLossSum / float64(max(j.st.EpochLossCount, 1))
			j.st.EpochLossSum, j.st.EpochLossCount = 0, 0
		}
		var stop string
		if len(j.ds.Eval) > 0 && (j.st.Step%evalEvery == 0 || j.st.Step == p.TotalSteps) {
			ev.EvalLoss = j.meanLoss(ctx, j.ds.Eval, 0)
			if math.IsNaN(ev.EvalLoss) {
				ev.EvalLoss = 0
			}
			if ev.EvalLoss < j.st.BestEval-1e-4 {
				j.st.BestEval, j.st.BadEvals = ev.EvalLoss, 0
				j.best = cloneAdapter(j.ad)
			} else {
				j.st.BadEvals++
				if p.Patience > 0 && j.st.BadEvals >= p.Patience {
					stop = fmt.Sprintf("early stop: eval loss has not improved for %d evaluations (best %.4f)", j.st.BadEvals, j.st.BestEval)
				}
			}
		}
		if endOfEpoch && p.StopTrainLoss > 0 && j.st.LastEpochLoss < p.StopTrainLoss {
			stop = fmt.Sprintf("memorised: mean train loss %.4f below %.4g after epoch %d", j.st.LastEpochLoss, p.StopTrainLoss, epoch+1)
		}
		j.emit(ev)
		if stop != "" {
			return stop, nil
		}
		if j.st.Step%every == 0 && j.st.Step < p.TotalSteps {
			if err := j.saveCheckpoint(); err != nil {
				cfg.Log.Warn("checkpoint not saved", "err", err)
			}
		}
	}
	return fmt.Sprintf("completed %d steps", p.TotalSteps), nil
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(max(len(v), 1))
}

// meanLoss is the mean loss per counted token over up to limit examples
// (0: all); NaN when there are none.
func (j *job) meanLoss(ctx context.Context, exs []data.Example, limit int) float64 {
	if limit > 0 && len(exs) > limit {
		exs = exs[:limit]
	}
	var sum float64
	var n int
	for _, ex := range exs {
		if ctx.Err() != nil {
			break
		}
		s, c, err := j.eng.Loss(lora.Seq{IDs: ex.IDs, Mask: ex.Mask})
		if err != nil {
			continue
		}
		sum += s
		n += c
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// pack concatenates examples greedily into sequences of at most maxLen
// tokens; attention and positions restart at each example.
func pack(exs []data.Example, maxLen int) []lora.Seq {
	var out []lora.Seq
	var cur *lora.Seq
	for _, ex := range exs {
		if len(ex.IDs) < 2 {
			continue
		}
		if cur == nil || len(cur.IDs)+len(ex.IDs) > maxLen {
			out = append(out, lora.Seq{})
			cur = &out[len(out)-1]
		}
		cur.Starts = append(cur.Starts, len(cur.IDs))
		cur.IDs = append(cur.IDs, ex.IDs...)
		cur.Mask = append(cur.Mask, ex.Mask...)
	}
	return out
}

func cloneAdapter(a *adapters.Adapter) *adapters.Adapter {
	c := *a
	c.Pairs = make(map[adapters.Key]*adapters.Pair, len(a.Pairs))
	for k, p := range a.Pairs {
		q := *p
		q.A, q.B = append([]float32(nil), p.A...), append([]float32(nil), p.B...)
		c.Pairs[k] = &q
	}
	return &c
}

func copyAdapter(dst, src *adapters.Adapter) {
	for k, p := range src.Pairs {
		copy(dst.Pairs[k].A, p.A)
		copy(dst.Pairs[k].B, p.B)
	}
}

// rss is the process's resident memory in bytes (0 when unknown).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.Sys
	}
	var size, res uint64
	if _, err := fmt.Sscan(string(b), &size, &res); err != nil {
		return 0
	}
	return res * uint64(os.Getpagesize())
}
