package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/adapters"
	"orchmind/engine/chat"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tensor"
	"orchmind/engine/tokenizer"
	"orchmind/internal/testshared"
	"orchmind/trainer/data"
	"orchmind/trainer/hparams"
	"orchmind/trainer/lora"
	"orchmind/trainer/progress"
)

// byteTok is a byte-level tokenizer for random test models: id = byte+3.
type byteTok struct{}

func (byteTok) Encode(s string, bos, eos bool) []int {
	var ids []int
	if bos {
		ids = append(ids, 1)
	}
	for _, b := range []byte(s) {
		ids = append(ids, int(b)+3)
	}
	if eos {
		ids = append(ids, 2)
	}
	return ids
}
func (byteTok) BOS() int { return 1 }
func (byteTok) EOS() int { return 2 }

func randomModel(t testing.TB, seed uint64) *model.Model {
	t.Helper()
	c := model.Config{Dim: 32, HiddenDim: 64, Layers: 2, Heads: 4, KVHeads: 2, Vocab: 259, SeqLen: 96, NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true}
	m, err := model.Random(c, quant.Q8_0, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// writeQA writes n prompt/completion pairs as JSONL.
func writeQA(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"prompt\": \"q%d?\", \"completion\": \"answer %d is %d\"}\n", i, i, i*7%13)
	}
	p := filepath.Join(t.TempDir(), "qa.jsonl")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func intp(v int) *int { return &v }

// TestResumeGivesTheSameAdapter stops a run part-way (as Ctrl-C does),
// resumes it, and compares the adapter with an uninterrupted run's.
func TestResumeGivesTheSameAdapter(t *testing.T) {
	m := randomModel(t, 1)
	path := writeQA(t, 40)
	base := Config{Model: m, Tokenizer: byteTok{}, Data: path, Name: "qa", Seed: 3, CheckpointEvery: 1000,
		Overrides: hparams.Overrides{Epochs: intp(2), Dropout: new(float64)}}
	*base.Overrides.Dropout = 0.1 // exercise dropout-mask replay too

	whole := base
	whole.OutDir = t.TempDir()
	want, err := Run(context.Background(), whole)
	if err != nil {
		t.Fatal(err)
	}

	cut := base
	cut.OutDir = t.TempDir()
	cut.Bus = progress.NewBus()
	ch, unsub := cut.Bus.Subscribe(1024)
	defer unsub()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ev := range ch {
			if ev.Phase == progress.PhaseTrain && ev.Step >= 3 {
				cancel()
				return
			}
		}
	}()
	_, err = Run(ctx, cut)
	if !errors.Is(err, ErrStopped) {
		t.Fatalf("cancelled run: got %v, want ErrStopped", err)
	}
	if strings.Contains(err.Error(), "could not be saved") {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cut.OutDir, "qa")); !os.IsNotExist(err) {
		t.Fatal("a stopped run left an adapter folder behind")
	}
	cut.Resume, cut.Bus = true, nil
	got, err := Run(context.Background(), cut)
	if err != nil {
		t.Fatal(err)
	}
	if got.Steps != want.Steps {
		t.Fatalf("resumed run took %d steps, whole run %d", got.Steps, want.Steps)
	}
	for k, p := range want.Adapter.Pairs {
		q := got.Adapter.Pairs[k]
		for i := range p.B {
			if p.B[i] != q.B[i] {
				t.Fatalf("%v B[%d]: resumed %g, uninterrupted %g", k, i, q.B[i], p.B[i])
			}
		}
	}
	if _, err := os.Stat(filepath.Join(cut.OutDir, ".qa."+CheckpointFile)); !os.IsNotExist(err) {
		t.Error("the checkpoint was not removed after a finished run")
	}
	// Resuming with other settings is refused.
	cut.Overrides.Epochs = intp(3)
	cut.Name = "qa"
	if _, err := Run(context.Background(), cut); err == nil {
		t.Error("resume without a checkpoint succeeded")
	}
}

// TestSavedAdapterReloads checks the folder (PEFT files + manifest) and that
// the reloaded adapter gives the same logits as the trained one.
func TestSavedAdapterReloads(t *testing.T) {
	m := randomModel(t, 2)
	cfg := Config{Model: m, Tokenizer: byteTok{}, Data: writeQA(t, 8), Name: "tiny", OutDir: t.TempDir(), Seed: 1,
		BaseFingerprint: "sha256:test", Overrides: hparams.Overrides{Epochs: intp(3)}}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, man, err := lora.ReadPEFT(res.Dir, m)
	if err != nil {
		t.Fatal(err)
	}
	if man == nil || man.BaseFingerprint != "sha256:test" || man.TokensSeen != res.Tokens || man.TrainLossAfter >= man.TrainLossBefore {
		t.Fatalf("manifest %+v does not describe the run (loss %g → %g)", man, res.TrainLossBefore, res.TrainLossAfter)
	}
	logits := func(ad *adapters.Adapter) []float32 {
		p, err := lora.NewPlug(m, lora.Weighted{Adapter: ad, Weight: 1})
		if err != nil {
			t.Fatal(err)
		}
		st := m.NewState()
		st.SetDelta(p)
		var out []float32
		for pos, id := range (byteTok{}).Encode("q3?\n", true, false) {
			out = append(out, st.Forward(id, pos)...)
		}
		return out
	}
	x, y := logits(res.Adapter), logits(a)
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("logit %d: trained %g, reloaded %g", i, x[i], y[i])
		}
	}
}

func TestBadData(t *testing.T) {
	m := randomModel(t, 1)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	_, err := Run(context.Background(), Config{Model: m, Tokenizer: byteTok{}, Data: empty, Name: "x", OutDir: out})
	if err == nil || !strings.Contains(err.Error(), "no training examples") {
		t.Fatalf("empty data: got %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "x")); !os.IsNotExist(err) {
		t.Fatal("an adapter folder was written for empty data")
	}
	_, err = Run(context.Background(), Config{Model: m, Tokenizer: byteTok{}, Data: filepath.Join(dir, "missing"), Name: "x", OutDir: out})
	if err == nil {
		t.Fatal("missing data accepted")
	}
}

// docEnd marks the end of an example with BOS, as llama2.c models expect.
type docEnd struct{ *tokenizer.Llama2C }

func (d docEnd) EOS() int { return d.BOS() }
func (d docEnd) Encode(s string, bos, eos bool) []int {
	ids := d.Llama2C.Encode(s, bos, false)
	if eos {
		ids = append(ids, d.BOS())
	}
	return ids
}

// TestLearnsFacts is the promise to users: a dozen short facts taught with
// the smart defaults come back word for word under greedy decoding, and the
// base model does not know them.
// TestLearnsFacts teaches a dozen facts under the smart defaults and asks
// for them back greedily, in float32 and, on CPUs with bfloat16 products
// (AMX tiles, AVX512-BF16), with the
// base's products in bfloat16.
func TestLearnsFacts(t *testing.T) {
	precisions := []string{hparams.PrecisionF32}
	if tensor.BF16Tiles() {
		precisions = append(precisions, hparams.PrecisionBF16)
	} else {
		t.Log("no bfloat16 products on this CPU (no AMX tiles, no AVX512-BF16): bf16 training is not exercised")
	}
	for _, prec := range precisions {
		t.Run(prec, func(t *testing.T) { learnsFacts(t, prec) })
	}
}

func learnsFacts(t *testing.T, precision string) {
	mp := testshared.Path(t, "models/stories260K/stories260K.bin")
	m, err := model.LoadLlama2C(mp, quant.F32)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadLlama2C(filepath.Join(filepath.Dir(mp), "tok512.bin"), m.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Config{Model: m, Tokenizer: docEnd{tok}, Data: "../../examples/facts.jsonl", Name: "facts", OutDir: t.TempDir(), Seed: 1,
		Overrides: hparams.Overrides{Precision: precision}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan.Precision != precision {
		t.Fatalf("trained in %s, asked for %s", res.Plan.Precision, precision)
	}
	t.Logf("%s; train loss %.3f → %.3f in %d steps", res.StopReason, res.TrainLossBefore, res.TrainLossAfter, res.Steps)
	plug, err := lora.NewPlug(m, lora.Weighted{Adapter: res.Adapter, Weight: 1})
	if err != nil {
		t.Fatal(err)
	}
	facts, _, _, err := data.Load("../../examples/facts.jsonl", data.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	baseKnows := 0
	for _, f := range facts {
		prompt, want, err := chat.Template{Name: "plain"}.Render(f.Messages)
		if err != nil {
			t.Fatal(err)
		}
		gen := func(d model.Delta) string {
			var b strings.Builder
			err := model.Generate(context.Background(), m, tok, prompt, model.Sampling{MaxNew: 40, Delta: d}, func(s string) error {
				b.WriteString(s)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(strings.TrimPrefix(b.String(), prompt))
		}
		if got := gen(plug); got != want {
			t.Errorf("%q: adapted model says %q, taught %q", strings.TrimSpace(prompt), got, want)
		}
		if gen(nil) == want {
			baseKnows++
		}
	}
	if baseKnows > 0 {
		t.Errorf("the base model already knew %d facts: the test proves nothing", baseKnows)
	}
}

// TestRunRefusesPathNames: a name that is a path never becomes OutDir/Name.
func TestRunRefusesPathNames(t *testing.T) {
	out := filepath.Join(t.TempDir(), "adapters")
	for _, name := range []string{"../x", "a/b", ".."} {
		_, err := Run(context.Background(), Config{Name: name, OutDir: out, Data: "missing.jsonl"})
		if err == nil || !strings.Contains(err.Error(), "adapter name") {
			t.Fatalf("name %q: %v", name, err)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("the output folder was created: %v", err)
	}
}
