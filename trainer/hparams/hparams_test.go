package hparams

import (
	"encoding/json"
	"strings"
	"testing"
)

var stories = Model{Params: 260_000, Layers: 5, Dim: 64, ContextLen: 512}
var llama7b = Model{Params: 7_000_000_000, Layers: 32, Dim: 4096, ContextLen: 4096}

func TestTinySetMemorisationRegime(t *testing.T) {
	p, err := Choose(Dataset{Examples: 12, Tokens: 12 * 30, LongestTokens: 40}, stories, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Epochs < 30 {
		t.Errorf("tiny set: epochs %d, want >= 30", p.Epochs)
	}
	if p.LearningRate < 1e-3 || p.LearningRate > 3e-3 {
		t.Errorf("tiny set: lr %g, want in [1e-3, 3e-3]", p.LearningRate)
	}
	if p.EvalFraction != 0 || p.StopTrainLoss <= 0 {
		t.Errorf("tiny set: eval %g stop %g, want no eval split and train-loss stop", p.EvalFraction, p.StopTrainLoss)
	}
	if p.Dropout != 0 {
		t.Errorf("tiny set: dropout %g, want 0", p.Dropout)
	}
	if p.MaxSeqLen < 40 {
		t.Errorf("max seq %d does not fit the longest example", p.MaxSeqLen)
	}
	if p.Alpha/float64(p.Rank) < 1 {
		t.Errorf("alpha/r = %g, too weak", p.Alpha/float64(p.Rank))
	}
	if p.TotalSteps < 100 {
		t.Errorf("tiny set: only %d optimizer steps, too few to memorise", p.TotalSteps)
	}
}

func TestLargeSetGuardsOverfitting(t *testing.T) {
	p, err := Choose(Dataset{Examples: 20000, Tokens: 20000 * 200, LongestTokens: 700}, llama7b, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Epochs > 3 || p.EvalFraction <= 0 || p.Patience <= 0 || p.Dropout <= 0 {
		t.Errorf("large set: %+v", p)
	}
	if n := p.EvalFraction * 20000; n < minEval || n > 2000.5 {
		t.Errorf("eval examples %g out of range", n)
	}
	if p.LearningRate >= 1e-3 {
		t.Errorf("large set lr %g too high", p.LearningRate)
	}
}

func TestMonotonicity(t *testing.T) {
	sizes := []int{1, 5, 12, 16, 17, 40, 64, 65, 200, 500, 501, 3000, 5000, 5001, 50000, 50001, 1_000_000}
	for _, m := range []Model{stories, llama7b} {
		prev := Plan{}
		for i, n := range sizes {
			p, err := Choose(Dataset{Examples: n, Tokens: n * 50}, m, Overrides{})
			if err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
			if i > 0 {
				if p.Epochs > prev.Epochs {
					t.Errorf("dim %d: %d examples give %d epochs > %d for fewer", m.Dim, n, p.Epochs, prev.Epochs)
				}
				if p.LearningRate > prev.LearningRate {
					t.Errorf("dim %d: %d examples give lr %g > %g for fewer", m.Dim, n, p.LearningRate, prev.LearningRate)
				}
				if p.Dropout < prev.Dropout {
					t.Errorf("dim %d: %d examples give dropout %g < %g", m.Dim, n, p.Dropout, prev.Dropout)
				}
			}
			for _, f := range Fields {
				if strings.TrimSpace(p.Why[f]) == "" {
					t.Errorf("n=%d: no explanation for %s", n, f)
				}
			}
			if p.TotalSteps <= 0 || p.WarmupSteps < 0 || p.WarmupSteps > p.TotalSteps {
				t.Errorf("n=%d: steps %d warmup %d", n, p.TotalSteps, p.WarmupSteps)
			}
			prev = p
		}
	}
}

func TestOverridesAlwaysWin(t *testing.T) {
	ep, lr, r, a, bs, ga, seq, wu, ev, pat, stop, dr, ck := 7, 0.01, 4, 3.0, 2, 5, 128, 9, 0.25, 1, 0.2, 0.3, true
	o := Overrides{Epochs: &ep, LearningRate: &lr, Rank: &r, Alpha: &a, BatchSize: &bs, GradAccum: &ga,
		MaxSeqLen: &seq, WarmupSteps: &wu, EvalFraction: &ev, Patience: &pat, StopTrainLoss: &stop,
		Dropout: &dr, TargetModules: []string{"q_proj", "v_proj"}, GradCheckpoint: &ck, Precision: PrecisionF32}
	for _, n := range []int{3, 100, 100000} {
		p, err := Choose(Dataset{Examples: n, Tokens: n * 20}, llama7b, o)
		if err != nil {
			t.Fatal(err)
		}
		if p.Epochs != ep || p.LearningRate != lr || p.Rank != r || p.Alpha != a || p.BatchSize != bs ||
			p.GradAccum != ga || p.MaxSeqLen != seq || p.WarmupSteps != wu || p.EvalFraction != ev ||
			p.Patience != pat || p.StopTrainLoss != stop || p.Dropout != dr || p.GradCheckpoint != ck || p.Precision != PrecisionF32 ||
			strings.Join(p.TargetModules, ",") != "q_proj,v_proj" {
			t.Errorf("n=%d: overrides lost: %+v", n, p)
		}
		for _, f := range Fields {
			if !strings.Contains(p.Why[f], "user") {
				t.Errorf("n=%d: %s explanation %q does not say it was set by the user", n, f, p.Why[f])
			}
		}
	}
}

func TestRankOnlyOverrideKeepsRatio(t *testing.T) {
	r := 32
	p, err := Choose(Dataset{Examples: 10, Tokens: 100}, llama7b, Overrides{Rank: &r})
	if err != nil {
		t.Fatal(err)
	}
	if p.Rank != 32 || p.Alpha != 64 {
		t.Errorf("rank %d alpha %g, want 32/64", p.Rank, p.Alpha)
	}
}

func TestErrors(t *testing.T) {
	neg, big := -1, 2.0
	cases := []struct {
		name string
		d    Dataset
		m    Model
		o    Overrides
		want string
	}{
		{"empty", Dataset{}, stories, Overrides{}, "no examples"},
		{"tokens", Dataset{Examples: 10, Tokens: 3}, stories, Overrides{}, "fewer than one"},
		{"model", Dataset{Examples: 10, Tokens: 30}, Model{}, Overrides{}, "model size unknown"},
		{"epochs", Dataset{Examples: 10, Tokens: 30}, stories, Overrides{Epochs: &neg}, "epochs must be > 0"},
		{"lr", Dataset{Examples: 10, Tokens: 30}, stories, Overrides{LearningRate: &big}, "learning rate"},
		{"module", Dataset{Examples: 10, Tokens: 30}, stories, Overrides{TargetModules: []string{"qkv"}}, `unknown target module "qkv"`},
	}
	for _, c := range cases {
		_, err := Choose(c.d, c.m, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want containing %q", c.name, err, c.want)
		}
	}
}

func TestContextCapAndString(t *testing.T) {
	p, err := Choose(Dataset{Examples: 100, Tokens: 100 * 900, LongestTokens: 3000}, stories, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxSeqLen != 512 {
		t.Errorf("max seq %d, want capped to context 512", p.MaxSeqLen)
	}
	s := p.String()
	for _, f := range Fields {
		if !strings.Contains(s, f) {
			t.Errorf("String() lacks %s:\n%s", f, s)
		}
	}
}

// TestGradCheckpointByMemory: checkpointing turns on exactly when one
// sequence's activations would take more than half of the free memory, says
// so with the sizes, warns when even checkpointing may not fit, stays off
// when memory is unknown, and a user's choice wins either way.
func TestGradCheckpointByMemory(t *testing.T) {
	llama3b := Model{Params: 3_200_000_000, Layers: 28, Dim: 3072, ContextLen: 8192, HiddenDim: 8192, Heads: 24, KVDim: 1024}
	d := Dataset{Examples: 2000, Tokens: 2000 * 900, LongestTokens: 1000} // 1024-token sequences
	full := ActivationBytes(llama3b, 16, 1024, true, false)
	ck := ActivationBytes(llama3b, 16, 1024, true, true)
	if !(ck < full/5) {
		t.Fatalf("checkpointing keeps %d of %d bytes; want far less", ck, full)
	}
	off, on := false, true
	for _, c := range []struct {
		name   string
		free   int64
		forced *bool
		want   bool
		says   string
	}{
		{"plenty of memory", 4 * full, nil, false, "off: activations take about"},
		{"exactly half", 2 * full, nil, false, "off:"},
		{"tight", 2*full - 1, nil, true, "on: activations would take about"},
		{"very tight", ck / 2, nil, true, "on:"},
		{"unknown", 0, nil, false, "unknown"},
		{"forced on", 4 * full, &on, true, "set by user"},
		{"forced off", ck / 2, &off, false, "set by user"},
	} {
		m := llama3b
		m.FreeMemory = c.free
		p, err := Choose(d, m, Overrides{GradCheckpoint: c.forced})
		if err != nil {
			t.Fatal(err)
		}
		if c.name == "very tight" {
			// The plan shortens the sequence to what memory allows.
			if p.MaxSeqLen >= 1024 || !strings.Contains(p.Why[FieldMaxSeqLen], "free memory allows") {
				t.Errorf("very tight: seq %d (%q), want less than 1024 because of memory", p.MaxSeqLen, p.Why[FieldMaxSeqLen])
			}
			continue
		}
		if p.MaxSeqLen != 1024 || p.Dropout == 0 {
			t.Fatalf("%s: plan has seq %d dropout %g; the test expects 1024 and dropout", c.name, p.MaxSeqLen, p.Dropout)
		}
		if p.GradCheckpoint != c.want || !strings.Contains(p.Why[FieldCheckpoint], c.says) {
			t.Errorf("%s: checkpoint %v (%q), want %v saying %q", c.name, p.GradCheckpoint, p.Why[FieldCheckpoint], c.want, c.says)
		}
	}
}

func TestPrecisionRules(t *testing.T) {
	for _, c := range []struct {
		tiles  bool
		forced string
		want   string
		why    string
	}{
		{true, "", PrecisionBF16, "AVX512-BF16"},
		{true, "auto", PrecisionBF16, "AMX"},
		{false, "", PrecisionF32, "AMX"},
		{true, "f32", PrecisionF32, "user"},
		{true, "bf16", PrecisionBF16, "user"},
		{false, "bf16", PrecisionF32, "no AMX"},
	} {
		m := llama7b
		m.BF16Tiles = c.tiles
		p, err := Choose(Dataset{Examples: 100, Tokens: 2000}, m, Overrides{Precision: c.forced})
		if err != nil {
			t.Fatal(err)
		}
		if p.Precision != c.want || !strings.Contains(p.Why[FieldPrecision], c.why) {
			t.Errorf("tiles=%v forced=%q: %s (%s), want %s mentioning %q", c.tiles, c.forced, p.Precision, p.Why[FieldPrecision], c.want, c.why)
		}
	}
	if _, err := Choose(Dataset{Examples: 100, Tokens: 2000}, llama7b, Overrides{Precision: "fp8"}); err == nil || !strings.Contains(err.Error(), "auto, f32 or bf16") {
		t.Errorf("precision fp8: error %v, want one naming the choices", err)
	}
}

// TestOneSetOfNames checks that an override, the plan's field and its
// explanation share one JSON name, the one orchmind.json records.
func TestOneSetOfNames(t *testing.T) {
	p, err := Choose(Dataset{Examples: 200, Tokens: 20000}, Model{Params: 1e6, Layers: 2, Dim: 64, ContextLen: 256}, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	var plan map[string]any
	b, _ := json.Marshal(p)
	if err := json.Unmarshal(b, &plan); err != nil {
		t.Fatal(err)
	}
	one, two := 1, 2.0
	yes := true
	o := Overrides{Epochs: &one, LearningRate: &two, Rank: &one, Alpha: &two, BatchSize: &one, GradAccum: &one, MaxSeqLen: &one,
		WarmupSteps: &one, EvalFraction: &two, Patience: &one, StopTrainLoss: &two, Dropout: &two, TargetModules: []string{"q_proj"},
		GradCheckpoint: &yes, Precision: PrecisionF32}
	var forced map[string]any
	b, _ = json.Marshal(o)
	if err := json.Unmarshal(b, &forced); err != nil {
		t.Fatal(err)
	}
	if len(forced) != len(Fields) {
		t.Fatalf("overrides have %d JSON fields, the plan explains %d", len(forced), len(Fields))
	}
	for _, f := range Fields {
		if _, ok := forced[f]; !ok {
			t.Errorf("override JSON has no %q", f)
		}
		if _, ok := plan[f]; !ok {
			t.Errorf("plan JSON has no %q", f)
		}
		if p.Why[f] == "" {
			t.Errorf("plan does not explain %q", f)
		}
	}
}

// TestLossMemory: the loss over Gemma's 262,144-token vocabulary adds at
// most 32 MiB of logits (plus three rows of the model's width per token)
// to the estimate whatever the sequence, not batch × sequence ×
// vocabulary; its slice of the vocabulary shrinks as sequences grow.
func TestLossMemory(t *testing.T) {
	for _, c := range []struct{ T, vocab, want int }{
		{256, 262144, LossSliceMax}, {2048, 262144, 4096}, {100, 262144, LossSliceMax}, {256, 3000, 3000},
		{1 << 20, 262144, 8}, {1 << 30, 262144, 1},
	} {
		if got := LossSlice(c.T, c.vocab); got != c.want {
			t.Errorf("LossSlice(%d, %d) = %d, want %d", c.T, c.vocab, got, c.want)
		}
	}
	base := Model{Layers: 26, Dim: 1152, HiddenDim: 6912, Heads: 4, KVDim: 256, QDim: 1024, KVHeads: 1, QKNorm: true, SandwichNorm: true}
	g := base
	g.Vocab = 262144
	for _, T := range []int{256, 2048, 8192} {
		d := ActivationBytes(g, 16, T, false, true) - ActivationBytes(base, 16, T, false, true)
		if d <= 0 || d > LossBytes+int64(T+32)*(3*1152+4)*4 {
			t.Errorf("at %d tokens the 262k loss adds %d bytes", T, d)
		}
	}
}

// TestSeqLenSaysWhatIsShortened: the sequence length follows the data up to
// the model's context, and the plan counts the longer examples.
func TestSeqLenSaysWhatIsShortened(t *testing.T) {
	d := Dataset{Examples: 4, Tokens: 100 + 300 + 2000 + 3000, LongestTokens: 3000, Lengths: []int{100, 300, 2000, 3000}}
	m := Model{Params: 1e6, Layers: 4, Dim: 64, ContextLen: 512}
	p, err := Choose(d, m, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if p.MaxSeqLen != 512 || !strings.Contains(p.Why[FieldMaxSeqLen], "2 of 4 examples are longer and are shortened") {
		t.Errorf("seq %d: %q", p.MaxSeqLen, p.Why[FieldMaxSeqLen])
	}
	d = Dataset{Examples: 2, Tokens: 150, LongestTokens: 100, Lengths: []int{50, 100}}
	if p, _ = Choose(d, m, Overrides{}); p.MaxSeqLen != 128 || strings.Contains(p.Why[FieldMaxSeqLen], "shortened") {
		t.Errorf("short data: seq %d: %q", p.MaxSeqLen, p.Why[FieldMaxSeqLen])
	}
}
