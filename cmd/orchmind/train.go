package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"orchmind/adapters"
	"orchmind/engine/chat"
	"orchmind/engine/tensor"
	"orchmind/trainer/data"
	"orchmind/trainer/hparams"
	"orchmind/trainer/progress"
	"orchmind/trainer/train"
)

func trainCmd(e *env) *cobra.Command {
	c := verb("train --model M [--tokenizer T] --data PATH [--name N] [--out DIR] [overrides…] [--json]",
		"train a LoRA adapter on your own data", noArgs)
	bf := addBaseFlags(c)
	fs := c.Flags()
	dataPath := fs.String("data", "", "training data: a file or folder of .txt, .md, .jsonl, .json (prompt/completion, Alpaca, chat, SQuAD), .csv, .tsv, .pdf, .docx, .odt, .html")
	name := fs.String("name", "", "adapter name (default: the data file or folder name)")
	out := fs.String("out", "lora_adapters", "folder that receives the adapter folder <out>/<name>")
	tmpl := fs.String("template", "", "chat template for conversations: "+strings.Join(chat.TemplateNames, ", ")+" (default: the one the model's chat template shows; plain for base models)")
	seed := fs.Uint64("seed", 1, "random seed (initialisation, shuffling, eval split, dropout)")
	jsonOut := fs.Bool("json", false, "print progress as JSON lines on stdout instead of a progress bar")
	resume := fs.Bool("resume", false, "continue an interrupted run from its checkpoint")
	ckEvery := fs.Int("checkpoint-every", 0, "save a resumable checkpoint every N steps (0 = about every 5%)")
	strict := fs.Bool("strict", false, "stop at the first malformed JSONL line instead of skipping it")
	qCol, aCol := addColumnFlags(fs)
	var o hparams.Overrides
	optInt(c, &o.Epochs, flagName(hparams.FieldEpochs), "number of passes over the data")
	optFloat(c, &o.LearningRate, flagName(hparams.FieldLearningRate), "peak learning rate")
	optInt(c, &o.Rank, flagName(hparams.FieldRank), "LoRA rank r")
	optFloat(c, &o.Alpha, flagName(hparams.FieldAlpha), "LoRA alpha (scale = alpha/r)")
	optInt(c, &o.BatchSize, flagName(hparams.FieldBatchSize), "examples per micro-batch")
	optInt(c, &o.GradAccum, flagName(hparams.FieldGradAccum), "micro-batches per optimiser step")
	optInt(c, &o.MaxSeqLen, flagName(hparams.FieldMaxSeqLen), "truncate examples to this many tokens")
	optInt(c, &o.WarmupSteps, flagName(hparams.FieldWarmupSteps), "linear warm-up steps")
	optFloat(c, &o.EvalFraction, flagName(hparams.FieldEvalFraction), "fraction of examples held out for evaluation")
	optInt(c, &o.Patience, flagName(hparams.FieldPatience), "evaluations without improvement before stopping early")
	optFloat(c, &o.StopTrainLoss, flagName(hparams.FieldStopTrainLoss), "stop when the mean train loss of an epoch falls below this")
	optFloat(c, &o.Dropout, flagName(hparams.FieldDropout), "LoRA dropout")
	optBool(c, &o.GradCheckpoint, flagName(hparams.FieldCheckpoint), "recompute activations in the backward pass: far less memory, ~30% more time; =false keeps them (default: on when they would take more than half the free memory)")
	fs.StringVar(&o.Precision, flagName(hparams.FieldPrecision), "auto", "compute type of the frozen base's products: auto (bf16 where the CPU has AMX tiles or AVX512-BF16, else f32), f32 or bf16")
	targets := fs.String(flagName(hparams.FieldTargetModules), "", "comma-separated target modules (default: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)")
	// The hyperparameter flags are the JSON names of hparams.Overrides with
	// dashes; the short names of earlier versions still work.
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if long, ok := oldHyperparameterFlags[name]; ok {
			name = long
		}
		return pflag.NormalizedName(name)
	})
	completeFiles(c, "data")
	completeDirs(c, "out")
	completeWords(c, "template", chat.TemplateNames...)
	completeWords(c, "precision", "auto", "f32", "bf16")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if *dataPath == "" {
			return fmt.Errorf("%w: --data is required", errUsage)
		}
		if *targets != "" {
			o.TargetModules = strings.Split(*targets, ",")
		}
		if *name == "" {
			*name = adapterName(*dataPath)
		}
		if err := adapters.CheckName(*name); err != nil {
			return fmt.Errorf("%w: --name: %v", errUsage, err)
		}
		if *tmpl != "" {
			if _, err := chat.TemplateByName(*tmpl); err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
		}
		b, err := bf.load()
		if err != nil {
			return err
		}
		t, err := b.Template(*tmpl)
		if err != nil {
			return err
		}
		// The progress renderer and the plan printer share stderr.
		stderr := &lockedWriter{w: e.stderr}
		bus := progress.NewBus()
		ch, unsub := bus.Subscribe(64)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if *jsonOut {
				_ = progress.WriteJSONL(context.Background(), e.stdout, ch)
				return
			}
			_ = progress.Show(context.Background(), stderr, progress.OptionsFor(e.stderr), ch)
		}()
		res, err := train.Run(c.Context(), train.Config{
			Model: b.Model, Tokenizer: b.Train, Data: *dataPath, Template: t, Overrides: o, Name: *name, OutDir: *out,
			Seed: *seed, CheckpointEvery: *ckEvery, Resume: *resume, StopOnBadLine: *strict, QuestionColumn: *qCol, AnswerColumn: *aCol,
			BaseName: b.Name, BaseFingerprint: b.Fingerprint, BaseShapeID: b.ShapeID,
			Version: e.version, Bus: bus, Log: e.log,
			OnPlan: func(p hparams.Plan, s data.Summary) {
				if *jsonOut {
					return
				}
				printPlan(stderr, p, s)
				fmt.Fprintln(stderr, "kernels", tensor.ISASummary())
				fmt.Fprintln(stderr, "threads", threadsSummary(e.getenv))
			},
		})
		bus.Close()
		wg.Wait()
		unsub()
		if err != nil {
			if errors.Is(err, train.ErrStopped) {
				return fmt.Errorf("%v: run the same command with --resume to continue", err)
			}
			return err
		}
		if !*jsonOut {
			fmt.Fprintf(e.stderr, "adapter %q saved in %s: %s\n", *name, res.Dir, res.StopReason)
			fmt.Fprintf(e.stderr, "train loss %.4f → %.4f", res.TrainLossBefore, res.TrainLossAfter)
			if len(res.Summary.Skipped) == 0 && res.Summary.Eval > 0 {
				fmt.Fprintf(e.stderr, ", eval loss %.4f → %.4f", res.EvalLossBefore, res.EvalLossAfter)
			}
			fmt.Fprintf(e.stderr, "; %d steps, %d tokens in %s\n", res.Steps, res.Tokens, res.Duration.Round(1e8))
			fmt.Fprintf(e.stderr, "try it: orchmind generate --model %s --adapter %s --temp 0 --prompt \"…\"\n", b.Path, res.Dir)
			fmt.Fprintf(e.stderr, "    or: orchmind chat --model %s --adapter %s\n", b.Path, res.Dir)
		}
		return nil
	}
	return c
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func printPlan(w io.Writer, p hparams.Plan, s data.Summary) {
	fmt.Fprintf(w, "data: %d examples (%d train, %d eval), %d tokens (%d in the loss), longest %d, %d shortened to %d tokens (answers kept), %d duplicates, %d skipped, template %s\n",
		s.Examples, s.Train, s.Eval, s.Tokens, s.MaskTokens, s.Longest, s.Shortened, s.SeqLen, s.Duplicates, len(s.Skipped), s.Template)
	if s.Split > 0 {
		fmt.Fprintf(w, "long texts: %d split into %d overlapping pieces\n", s.Split, s.Pieces)
	}
	reasons := make([]string, 0, len(s.SkipReasons))
	for r, n := range s.SkipReasons {
		reasons = append(reasons, fmt.Sprintf("%d × %s", n, r))
	}
	sort.Strings(reasons)
	if len(reasons) > 0 {
		fmt.Fprintf(w, "skipped by reason: %s\n", strings.Join(reasons, "; "))
	}
	if s.Conversations > 0 {
		fmt.Fprintf(w, "chat history: %d conversations, %d answers kept\n", s.Conversations, s.Turns)
	}
	for i, sk := range s.Skipped {
		if i == 5 {
			fmt.Fprintf(w, "  … %d more skipped\n", len(s.Skipped)-5)
			break
		}
		fmt.Fprintf(w, "  skipped %s: %s\n", sk.Where, sk.Reason)
	}
	fmt.Fprintf(w, "plan: %d steps (%d per epoch)\n", p.TotalSteps, p.StepsPerEpoch)
	keys := make([]string, 0, len(p.Why))
	for k := range p.Why {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-14s %s\n", k, p.Why[k])
	}
}

// adapterName derives a name from the data path ("adapter" when that is
// not a valid name).
func adapterName(p string) string {
	p = strings.TrimRight(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	if i := strings.IndexByte(p, '.'); i > 0 {
		p = p[:i]
	}
	if !adapters.ValidName(p) {
		return "adapter"
	}
	return p
}

// flagName is the CLI flag of a hyperparameter: its JSON name with dashes.
func flagName(field string) string { return strings.ReplaceAll(field, "_", "-") }

// oldHyperparameterFlags maps the flag names of earlier versions to today's.
var oldHyperparameterFlags = map[string]string{
	"lr": "learning-rate", "batch": "batch-size", "warmup": "warmup-steps",
	"stop-loss": "stop-train-loss", "targets": "target-modules",
}
