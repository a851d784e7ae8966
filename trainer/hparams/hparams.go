package hparams

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"orchmind/adapters"
)

// Dataset describes the training data in sizes only.
type Dataset struct {
	// Examples is the number of training examples (after de-duplication).
	Examples int
	// Tokens is the total number of tokens over all examples.
	Tokens int
	// LongestTokens is the token length of the longest example (0 = unknown,
	// the mean is used instead).
	LongestTokens int
	// Lengths, when known, holds every example's token length: the plan
	// then says how many are longer than the sequence length it picks.
	Lengths []int
}

// Model describes the base model in sizes only.
type Model struct {
	// Params is the number of parameters of the base model.
	Params int64
	// Layers is the number of transformer blocks.
	Layers int
	// Dim is the model (embedding) dimension.
	Dim int
	// ContextLen is the maximum sequence length the model supports (0 = unknown).
	ContextLen int
	// HiddenDim, Heads and KVDim (key/value width) size the activations
	// training keeps; 0 leaves memory out of the plan.
	HiddenDim, Heads, KVDim int
	// QDim is the width of the query projection when it is not Dim (heads
	// of another size than Dim/Heads); 0 means Dim.
	QDim int
	// KVHeads and QKNorm: per-head query/key norms (Qwen3) keep q and k
	// before them and an inverse RMS per head.
	KVHeads int
	QKNorm  bool
	// Vocab sizes the loss's logits (held for LossSlice entries at a time).
	Vocab int
	// SandwichNorm (Gemma 2/3: norms after attention and the MLP),
	// AttnSoftcap (Gemma 2: capped attention scores, kept for the backward
	// pass) and FinalSoftcap (capped logits) add to the activations.
	SandwichNorm, AttnSoftcap, FinalSoftcap bool
	// FreeMemory is the memory free for training on this machine in bytes
	// (0 = unknown: gradient checkpointing is then only used when asked for).
	FreeMemory int64
	// BF16Tiles reports that this CPU takes bfloat16 matrix products
	// faster than float32 ones (AMX tiles or AVX512-BF16;
	// tensor.BF16Tiles), which makes PrecisionBF16 the default.
	BF16Tiles bool
}

// Overrides holds a user-forced value for every hyperparameter; nil fields
// are chosen by the rules. An override always wins. The JSON names are those
// of adapters.Hyperparameters (the API takes them as they are).
type Overrides struct {
	Epochs        *int     `json:"epochs,omitempty"`
	LearningRate  *float64 `json:"learning_rate,omitempty"`
	Rank          *int     `json:"rank,omitempty"`
	Alpha         *float64 `json:"alpha,omitempty"`
	BatchSize     *int     `json:"batch_size,omitempty"`
	GradAccum     *int     `json:"grad_accum,omitempty"`
	MaxSeqLen     *int     `json:"max_seq_len,omitempty"`
	WarmupSteps   *int     `json:"warmup_steps,omitempty"`
	EvalFraction  *float64 `json:"eval_fraction,omitempty"`
	Patience      *int     `json:"patience,omitempty"`
	StopTrainLoss *float64 `json:"stop_train_loss,omitempty"`
	Dropout       *float64 `json:"dropout,omitempty"`
	TargetModules []string `json:"target_modules,omitempty"`
	// GradCheckpoint forces gradient checkpointing on or off.
	GradCheckpoint *bool `json:"grad_checkpoint,omitempty"`
	// Precision forces the compute type of the base's products:
	// PrecisionF32 or PrecisionBF16 ("" or "auto" = choose).
	Precision string `json:"precision,omitempty"`
}

// Compute types of the frozen base's matrix products in training.
const (
	// PrecisionF32 takes them in float32.
	PrecisionF32 = "f32"
	// PrecisionBF16 rounds their operands to bfloat16 and sums in float32,
	// on AMX tiles or with AVX512-BF16 (QLoRA's compute type); the adapter,
	// its gradients and the optimiser stay float32.
	PrecisionBF16 = "bf16"
)

// AllTargetModules lists every linear projection of a Llama block, in PEFT
// naming.
var AllTargetModules = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// Plan is the chosen set of hyperparameters, each with the reason it was
// chosen.
type Plan struct {
	adapters.Hyperparameters
	// StepsPerEpoch counts optimizer updates per pass over the data.
	StepsPerEpoch int `json:"steps_per_epoch"`
	// Why maps a field's JSON name (the Field constants) to a one-line
	// explanation.
	Why map[string]string `json:"why"`
}

// Field names used as keys of Plan.Why: the JSON names of
// adapters.Hyperparameters and Overrides.
const (
	FieldEpochs        = "epochs"
	FieldLearningRate  = "learning_rate"
	FieldRank          = "rank"
	FieldAlpha         = "alpha"
	FieldBatchSize     = "batch_size"
	FieldGradAccum     = "grad_accum"
	FieldMaxSeqLen     = "max_seq_len"
	FieldWarmupSteps   = "warmup_steps"
	FieldEvalFraction  = "eval_fraction"
	FieldPatience      = "patience"
	FieldStopTrainLoss = "stop_train_loss"
	FieldDropout       = "dropout"
	FieldTargetModules = "target_modules"
	FieldCheckpoint    = "grad_checkpoint"
	FieldPrecision     = "precision"
)

// Fields lists every key of Plan.Why in display order.
var Fields = []string{FieldEpochs, FieldLearningRate, FieldRank, FieldAlpha, FieldBatchSize,
	FieldGradAccum, FieldMaxSeqLen, FieldWarmupSteps, FieldEvalFraction, FieldPatience,
	FieldStopTrainLoss, FieldDropout, FieldTargetModules, FieldCheckpoint, FieldPrecision}

// Size thresholds (in examples) separating the regimes.
const (
	tinyMax   = 64    // memorisation regime: no eval split possible
	smallMax  = 500   // small: eval split, still several epochs
	mediumMax = 5000  // medium
	largeMax  = 50000 // beyond this: one or two epochs
	minEval   = 16    // fewest eval examples worth having
)

// Choose picks hyperparameters for dataset d and model m, then applies the
// overrides in o. It returns an error for empty or inconsistent sizes or an
// out-of-range override.
func Choose(d Dataset, m Model, o Overrides) (Plan, error) {
	if d.Examples <= 0 {
		return Plan{}, errors.New("hparams: dataset has no examples")
	}
	if d.Tokens < d.Examples {
		return Plan{}, fmt.Errorf("hparams: dataset has %d tokens for %d examples (fewer than one per example)", d.Tokens, d.Examples)
	}
	if m.Layers <= 0 || m.Dim <= 0 {
		return Plan{}, fmt.Errorf("hparams: model size unknown (layers=%d dim=%d)", m.Layers, m.Dim)
	}
	if err := o.validate(); err != nil {
		return Plan{}, err
	}
	p := Plan{Why: make(map[string]string, len(Fields))}
	n := d.Examples
	mean := d.Tokens / n

	// Epochs: monotone non-increasing in the number of examples.
	switch {
	case n <= 16:
		p.Epochs = 60
		p.Why[FieldEpochs] = fmt.Sprintf("60 epochs: only %d examples, they must be seen many times to be recalled word for word", n)
	case n <= tinyMax:
		p.Epochs = 30
		p.Why[FieldEpochs] = fmt.Sprintf("30 epochs: %d examples is a memorisation-size set", n)
	case n <= smallMax:
		p.Epochs = 8
		p.Why[FieldEpochs] = fmt.Sprintf("8 epochs: small set (%d examples); early stopping guards against overfitting", n)
	case n <= mediumMax:
		p.Epochs = 3
		p.Why[FieldEpochs] = fmt.Sprintf("3 epochs: medium set (%d examples)", n)
	case n <= largeMax:
		p.Epochs = 2
		p.Why[FieldEpochs] = fmt.Sprintf("2 epochs: large set (%d examples), more passes would overfit", n)
	default:
		p.Epochs = 1
		p.Why[FieldEpochs] = fmt.Sprintf("1 epoch: very large set (%d examples)", n)
	}

	// Rank: small rank for memorisation of few facts, larger for more data
	// and wider models; never above dim/4.
	rank := 8
	switch {
	case n > mediumMax:
		rank = 32
	case n > smallMax:
		rank = 16
	}
	if m.Dim >= 2048 && rank < 16 {
		rank = 16
	}
	if lim := m.Dim / 4; rank > lim {
		rank = max(lim, 1)
	}
	p.Rank = rank
	p.Why[FieldRank] = fmt.Sprintf("rank %d: enough capacity for %d examples on a %d-dim model", rank, n, m.Dim)
	p.Alpha = float64(2 * rank)
	p.Why[FieldAlpha] = fmt.Sprintf("alpha %g = 2×rank: LoRA scale alpha/r = 2 keeps the update strong enough to learn", p.Alpha)

	// Learning rate: high for tiny sets (so they learn), lower for larger
	// sets and wider models.
	var lr float64
	switch {
	case n <= tinyMax:
		lr = 2e-3
		p.Why[FieldLearningRate] = "2e-3: tiny set and small rank, a high LoRA learning rate is needed to memorise"
	case n <= smallMax:
		lr = 1e-3
		p.Why[FieldLearningRate] = "1e-3: small set, still a fairly high LoRA learning rate"
	case n <= mediumMax:
		lr = 5e-4
		p.Why[FieldLearningRate] = "5e-4: medium set, moderate learning rate"
	default:
		lr = 2e-4
		p.Why[FieldLearningRate] = "2e-4: large set, low learning rate for stable training"
	}
	if m.Dim >= 4096 {
		lr /= 2
		p.Why[FieldLearningRate] += fmt.Sprintf("; halved to %g for a wide (%d-dim) model", lr, m.Dim)
	}
	p.LearningRate = lr

	// Max sequence length: fits the longest example, rounded up to a
	// power of two, capped by the model context and by memory.
	longest := d.LongestTokens
	if longest <= 0 {
		longest = 2 * mean
	}
	seq := 64
	for seq < longest && seq < 4096 {
		seq *= 2
	}
	p.MaxSeqLen = seq
	p.Why[FieldMaxSeqLen] = fmt.Sprintf("%d tokens: power of two that fits the longest example (%d tokens)", seq, longest)
	if m.ContextLen > 0 && seq > m.ContextLen {
		p.MaxSeqLen = m.ContextLen
		p.Why[FieldMaxSeqLen] = fmt.Sprintf("%d tokens: the model's context length (longest example is %d tokens)", m.ContextLen, longest)
	}
	if m.FreeMemory > 0 && m.HiddenDim > 0 && m.Heads > 0 && (o.GradCheckpoint == nil || *o.GradCheckpoint) {
		capped := p.MaxSeqLen
		for capped > 256 && ActivationBytes(m, rank, capped, false, true) > m.FreeMemory/2 {
			capped /= 2
		}
		if capped < p.MaxSeqLen {
			p.MaxSeqLen = capped
			p.Why[FieldMaxSeqLen] = fmt.Sprintf("%d tokens: what the %s of free memory allows (longest example is %d tokens)", capped, gib(m.FreeMemory), longest)
		}
	}
	if over := countOver(d.Lengths, p.MaxSeqLen); over > 0 {
		p.Why[FieldMaxSeqLen] += fmt.Sprintf("; %d of %d examples are longer and are shortened (context cut, answers kept) or split with overlap", over, len(d.Lengths))
	}

	// Batch and gradient accumulation: tiny sets use every example every
	// step; larger sets use an effective batch of 16.
	switch {
	case n <= tinyMax:
		p.BatchSize = min(n, 4)
		p.GradAccum = 1
		p.Why[FieldBatchSize] = fmt.Sprintf("%d: small batches give more updates per epoch on a tiny set", p.BatchSize)
		p.Why[FieldGradAccum] = "1: no accumulation needed for a tiny set"
	default:
		p.BatchSize = 4
		if p.MaxSeqLen >= 1024 {
			p.BatchSize = 1
		}
		p.GradAccum = 16 / p.BatchSize
		p.Why[FieldBatchSize] = fmt.Sprintf("%d: fits memory at %d tokens per sequence", p.BatchSize, p.MaxSeqLen)
		p.Why[FieldGradAccum] = fmt.Sprintf("%d: effective batch %d smooths gradients on a larger set", p.GradAccum, p.BatchSize*p.GradAccum)
	}

	// Eval split, patience, stop-on-train-loss.
	if n <= tinyMax {
		p.EvalFraction = 0
		p.Why[FieldEvalFraction] = fmt.Sprintf("none: %d examples are too few to hold any out, every fact must be trained on", n)
		p.Patience = 0
		p.Why[FieldPatience] = "none: no eval split, training stops on train loss instead"
		p.StopTrainLoss = 0.05
		p.Why[FieldStopTrainLoss] = "0.05: stop once the set is memorised (mean train loss below 0.05)"
	} else {
		frac := 0.1
		if float64(n)*frac < minEval {
			frac = float64(minEval) / float64(n)
		}
		if float64(n)*frac > 2000 {
			frac = 2000 / float64(n)
		}
		p.EvalFraction = frac
		p.Why[FieldEvalFraction] = fmt.Sprintf("%.3g: hold out about %d examples to detect overfitting", frac, int(math.Round(frac*float64(n))))
		p.Patience = 3
		p.Why[FieldPatience] = "3: stop after 3 evaluations without eval-loss improvement"
		p.StopTrainLoss = 0
		p.Why[FieldStopTrainLoss] = "disabled: early stopping on eval loss is used instead"
	}

	// Dropout.
	switch {
	case n <= tinyMax:
		p.Dropout = 0
		p.Why[FieldDropout] = "0: dropout would fight memorisation of a tiny set"
	case n <= mediumMax:
		p.Dropout = 0.05
		p.Why[FieldDropout] = "0.05: light regularisation"
	default:
		p.Dropout = 0.1
		p.Why[FieldDropout] = "0.1: regularisation for a large set"
	}

	p.TargetModules = append([]string(nil), AllTargetModules...)
	p.Why[FieldTargetModules] = "all attention and MLP projections: best quality per trainable parameter"

	o.apply(&p)
	p.chooseCheckpoint(m, o.GradCheckpoint)
	if err := p.choosePrecision(m, o.Precision); err != nil {
		return Plan{}, err
	}
	p.finishSteps(n)
	return p, nil
}

// choosePrecision takes the base's products in bfloat16 where the CPU has
// fast bfloat16 products (AMX tiles, AVX512-BF16), in float32 elsewhere or
// when asked.
func (p *Plan) choosePrecision(m Model, forced string) error {
	switch forced {
	case PrecisionF32:
		p.Precision = PrecisionF32
		p.Why[FieldPrecision] = "f32: set by user"
	case PrecisionBF16:
		p.Precision = PrecisionBF16
		p.Why[FieldPrecision] = "bf16: set by user"
		if !m.BF16Tiles {
			p.Precision = PrecisionF32
			p.Why[FieldPrecision] = "f32: bf16 was asked for, but this CPU has no AMX tiles and no AVX512-BF16 (or ORCHMIND_ISA is below them), where it would run as float32 anyway"
		}
	case "", "auto":
		if m.BF16Tiles {
			p.Precision = PrecisionBF16
			p.Why[FieldPrecision] = "bf16: the frozen base's products in bfloat16 on this CPU (AMX tiles or AVX512-BF16), faster steps; the adapter, its gradients and AdamW stay float32 (--precision f32 for float32 throughout)"
		} else {
			p.Precision = PrecisionF32
			p.Why[FieldPrecision] = "f32: float32 throughout (bf16 needs a CPU with AMX tiles or AVX512-BF16, and ORCHMIND_ISA not below them)"
		}
	default:
		return fmt.Errorf("hparams: precision %q: use auto, f32 or bf16", forced)
	}
	return nil
}

// chooseCheckpoint turns gradient checkpointing on when the activations of
// one sequence would take more than half of the free memory.
func (p *Plan) chooseCheckpoint(m Model, forced *bool) {
	if forced != nil {
		p.GradCheckpoint = *forced
		p.Why[FieldCheckpoint] = fmt.Sprintf("%v: set by user", *forced)
		return
	}
	if m.HiddenDim <= 0 || m.Heads <= 0 || m.FreeMemory <= 0 {
		p.Why[FieldCheckpoint] = "off: free memory unknown (--grad-checkpoint saves memory at ~30% more time)"
		return
	}
	full := ActivationBytes(m, p.Rank, p.MaxSeqLen, p.Dropout > 0, false)
	if full <= m.FreeMemory/2 {
		p.Why[FieldCheckpoint] = fmt.Sprintf("off: activations take about %s of the %s free", gib(full), gib(m.FreeMemory))
		return
	}
	p.GradCheckpoint = true
	ck := ActivationBytes(m, p.Rank, p.MaxSeqLen, p.Dropout > 0, true)
	p.Why[FieldCheckpoint] = fmt.Sprintf("on: activations would take about %s of the %s free; recomputing each layer keeps %s, at ~30%% more time", gib(full), gib(m.FreeMemory), gib(ck))
	if ck > m.FreeMemory {
		p.Why[FieldCheckpoint] += fmt.Sprintf("; even that may not fit: lower --max-seq-len (now %d)", p.MaxSeqLen)
	}
}

// ActivationBytes estimates the memory the LoRA engine (trainer/lora) holds
// to train on one sequence of T tokens: per layer and token the block's
// input, normalised inputs, q, attention output, residual (model width
// each), k, v and their transposes (key/value width), the MLP's three hidden
// vectors, one row of attention probabilities per head (T values), the
// rank-r LoRA down-projections, and with dropout the masks and dropped
// inputs; with checkpointing, each layer's input plus one layer's cache;
// and the scratch of the backward pass.
//
// The loss over the vocabulary takes every token of the sequence at once
// and the vocabulary LossSlice rows at a time, so its logits never take
// more than about LossBytes (twice that with soft-capped logits), whatever
// the batch, sequence or vocabulary.
func ActivationBytes(m Model, rank, T int, dropout, checkpoint bool) int64 {
	d, kv, f, h := int64(m.Dim), int64(m.KVDim), int64(m.HiddenDim), int64(m.Heads)
	q := d // the width of q and the attention output
	if m.QDim > 0 {
		q = int64(m.QDim)
	}
	t, r, layers := int64(T), int64(rank), int64(m.Layers)
	perLayer := t * (4*d + 2*q + 4*kv + 3*f + 2 + h*t + 7*r)
	if m.QKNorm {
		perLayer += t * (q + kv + h + int64(m.KVHeads))
	}
	if m.SandwichNorm {
		perLayer += t * (2*d + 2)
	}
	if m.AttnSoftcap {
		perLayer += h * t * t
	}
	if dropout {
		perLayer += 2 * t * (5*d + q + f)
	}
	hd := q / max(h, 1)
	scratch := t*(5*d+1) + t*(3*f+d+2*q) + t*(2*kv+max(d, f)+r) + 2*r*max(d, f, kv, q) + 2*kv*t + t*(6*hd) + t*t
	if m.SandwichNorm {
		scratch += t * d
	}
	if m.Vocab > 0 {
		// The logits of every token (rows padded to 32) for one slice of
		// the vocabulary (and their tanh where soft-capped), the counted
		// tokens' inputs, the running sum of probabilities times output
		// rows and one slice's share of it, and per token its running
		// maximum, sum and target logit.
		tp := (t + 31) / 32 * 32
		slice := int64(LossSlice(T, m.Vocab))
		logits := tp * slice
		if m.FinalSoftcap {
			logits += t * slice
		}
		scratch += logits + 3*tp*d + 4*t
	}
	cached := layers * perLayer
	if checkpoint {
		cached = layers*t*d + perLayer
	}
	return 4 * (cached + scratch)
}

// LossBytes bounds the logits the loss holds at once: 32 MiB.
const LossBytes = 32 << 20

// LossSliceMax is the most vocabulary rows the loss takes in one slice
// even where LossBytes would allow more: a slice's logits for a 256-token
// sequence (8 MiB) then stay near the caches, and the slice is still long
// enough that converting the output matrix's rows is a small part of its
// products.
const LossSliceMax = 8192

// LossSlice is how many rows of the output layer (vocabulary entries) the
// loss takes at once for a sequence of T tokens and a vocabulary of vocab:
// the logits of all T tokens for that many entries stay within LossBytes
// (and LossSliceMax), in whole multiples of 32 where the vocabulary is
// larger (8,192 for Gemma's 262,144 tokens at 256 tokens, 4,096 at 2,048).
// Each slice of the (quantized) output matrix is converted once per
// sequence, not once per few tokens.
func LossSlice(T, vocab int) int {
	s := LossBytes / 4 / ((max(T, 1) + 31) / 32 * 32) // rows padded to whole tiles of 32
	if s >= 32 {
		s = s / 32 * 32
	}
	return max(1, min(vocab, s, LossSliceMax))
}

// countOver counts the lengths above seq.
func countOver(lengths []int, seq int) int {
	n := 0
	for _, l := range lengths {
		if l > seq {
			n++
		}
	}
	return n
}

// gib formats bytes for the plan's explanations.
func gib(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
}

// Recount sets the step counts for train training examples, when fitting
// the data to the plan's sequence length split or skipped some; the warm-up
// follows unless o forces it.
func (p *Plan) Recount(train int, o Overrides) {
	per := max(p.BatchSize*p.GradAccum, 1)
	p.StepsPerEpoch = (max(train, 1) + per - 1) / per
	p.TotalSteps = p.StepsPerEpoch * p.Epochs
	if o.WarmupSteps == nil {
		w := min(max(p.TotalSteps*3/100, 1), 100)
		p.WarmupSteps = w
		p.Why[FieldWarmupSteps] = fmt.Sprintf("%d: about 3%% of %d total steps", w, p.TotalSteps)
	}
}

// finishSteps computes steps and warm-up (warm-up unless overridden).
func (p *Plan) finishSteps(n int) {
	train := n - int(math.Round(p.EvalFraction*float64(n)))
	train = max(train, 1)
	per := p.BatchSize * p.GradAccum
	p.StepsPerEpoch = (train + per - 1) / per
	p.TotalSteps = p.StepsPerEpoch * p.Epochs
	if _, forced := p.Why[FieldWarmupSteps]; !forced {
		w := p.TotalSteps * 3 / 100
		w = min(max(w, 1), 100)
		p.WarmupSteps = w
		p.Why[FieldWarmupSteps] = fmt.Sprintf("%d: about 3%% of %d total steps", w, p.TotalSteps)
	}
}

func (o Overrides) validate() error {
	var bad []string
	pos := func(name string, v *int) {
		if v != nil && *v <= 0 {
			bad = append(bad, fmt.Sprintf("%s must be > 0 (got %d)", name, *v))
		}
	}
	pos("epochs", o.Epochs)
	pos("rank", o.Rank)
	pos("batch size", o.BatchSize)
	pos("gradient accumulation", o.GradAccum)
	pos("max sequence length", o.MaxSeqLen)
	if o.WarmupSteps != nil && *o.WarmupSteps < 0 {
		bad = append(bad, fmt.Sprintf("warm-up steps must be >= 0 (got %d)", *o.WarmupSteps))
	}
	if o.Patience != nil && *o.Patience < 0 {
		bad = append(bad, fmt.Sprintf("patience must be >= 0 (got %d)", *o.Patience))
	}
	if o.LearningRate != nil && !(*o.LearningRate > 0 && *o.LearningRate < 1) {
		bad = append(bad, fmt.Sprintf("learning rate must be in (0, 1) (got %g)", *o.LearningRate))
	}
	if o.Alpha != nil && !(*o.Alpha > 0) {
		bad = append(bad, fmt.Sprintf("alpha must be > 0 (got %g)", *o.Alpha))
	}
	if o.EvalFraction != nil && !(*o.EvalFraction >= 0 && *o.EvalFraction < 1) {
		bad = append(bad, fmt.Sprintf("eval fraction must be in [0, 1) (got %g)", *o.EvalFraction))
	}
	if o.Dropout != nil && !(*o.Dropout >= 0 && *o.Dropout < 1) {
		bad = append(bad, fmt.Sprintf("dropout must be in [0, 1) (got %g)", *o.Dropout))
	}
	if o.StopTrainLoss != nil && !(*o.StopTrainLoss >= 0) {
		bad = append(bad, fmt.Sprintf("stop train loss must be >= 0 (got %g)", *o.StopTrainLoss))
	}
	for _, t := range o.TargetModules {
		ok := false
		for _, a := range AllTargetModules {
			ok = ok || a == t
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("unknown target module %q (known: %s)", t, strings.Join(AllTargetModules, ", ")))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("hparams: invalid override: %s", strings.Join(bad, "; "))
	}
	return nil
}

func (o Overrides) apply(p *Plan) {
	const forced = "set by user"
	setI := func(dst *int, v *int, field string) {
		if v != nil {
			*dst = *v
			p.Why[field] = fmt.Sprintf("%d: %s", *v, forced)
		}
	}
	setF := func(dst *float64, v *float64, field string) {
		if v != nil {
			*dst = *v
			p.Why[field] = fmt.Sprintf("%g: %s", *v, forced)
		}
	}
	setI(&p.Epochs, o.Epochs, FieldEpochs)
	setF(&p.LearningRate, o.LearningRate, FieldLearningRate)
	if o.Rank != nil && o.Alpha == nil {
		// Keep alpha/r = 2 when only the rank is forced.
		p.Alpha = float64(2 * *o.Rank)
		p.Why[FieldAlpha] = fmt.Sprintf("alpha %g = 2×rank (rank set by user)", p.Alpha)
	}
	setI(&p.Rank, o.Rank, FieldRank)
	setF(&p.Alpha, o.Alpha, FieldAlpha)
	setI(&p.BatchSize, o.BatchSize, FieldBatchSize)
	setI(&p.GradAccum, o.GradAccum, FieldGradAccum)
	setI(&p.MaxSeqLen, o.MaxSeqLen, FieldMaxSeqLen)
	setI(&p.WarmupSteps, o.WarmupSteps, FieldWarmupSteps)
	setF(&p.EvalFraction, o.EvalFraction, FieldEvalFraction)
	setI(&p.Patience, o.Patience, FieldPatience)
	setF(&p.StopTrainLoss, o.StopTrainLoss, FieldStopTrainLoss)
	setF(&p.Dropout, o.Dropout, FieldDropout)
	if o.TargetModules != nil {
		p.TargetModules = append([]string(nil), o.TargetModules...)
		p.Why[FieldTargetModules] = strings.Join(o.TargetModules, ",") + ": " + forced
	}
}

// String renders the plan as one "name = value  (why)" line per field.
func (p Plan) String() string {
	var b strings.Builder
	val := map[string]string{
		FieldEpochs: fmt.Sprint(p.Epochs), FieldLearningRate: fmt.Sprintf("%g", p.LearningRate),
		FieldRank: fmt.Sprint(p.Rank), FieldAlpha: fmt.Sprintf("%g", p.Alpha),
		FieldBatchSize: fmt.Sprint(p.BatchSize), FieldGradAccum: fmt.Sprint(p.GradAccum),
		FieldMaxSeqLen: fmt.Sprint(p.MaxSeqLen), FieldWarmupSteps: fmt.Sprint(p.WarmupSteps),
		FieldEvalFraction: fmt.Sprintf("%.3g", p.EvalFraction), FieldPatience: fmt.Sprint(p.Patience),
		FieldStopTrainLoss: fmt.Sprintf("%g", p.StopTrainLoss), FieldDropout: fmt.Sprintf("%g", p.Dropout),
		FieldTargetModules: strings.Join(p.TargetModules, ","), FieldCheckpoint: fmt.Sprint(p.GradCheckpoint),
		FieldPrecision: p.Precision,
	}
	for _, f := range Fields {
		fmt.Fprintf(&b, "%-14s = %-12s (%s)\n", f, val[f], p.Why[f])
	}
	return b.String()
}
