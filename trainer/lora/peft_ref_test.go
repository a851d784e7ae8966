package lora

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"orchmind/adapters"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/safetensors"
)

// TestMatchesPEFT compares loss, logits and LoRA gradients with PyTorch on
// the same tiny model, adapter and batch: fixtures/ from HF PEFT itself
// (testdata/peft/make_fixtures.py, needs torch, transformers and peft) and
// fixtures-torch/ from torch autograd over a transcription of the same
// model and LoRA math (make_fixtures_torch.py, needs torch only).
func TestMatchesPEFT(t *testing.T) {
	for _, c := range []struct{ dir, script string }{
		{"fixtures", "make_fixtures.py where torch, transformers and peft are installed"},
		{"fixtures-torch", "make_fixtures_torch.py where torch is installed"},
	} {
		t.Run(c.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", "peft", c.dir)
			if _, err := os.Stat(filepath.Join(dir, "batch.json")); os.IsNotExist(err) {
				t.Skipf("reference fixtures not generated here: run testdata/peft/%s", c.script)
			}
			checkPEFTFixture(t, dir)
		})
	}
}

// checkPEFTFixture runs one fixture folder's batch through orchmind and
// compares loss, logits and gradients to 1e-4 relative.
func checkPEFTFixture(t *testing.T, dir string) {
	raw, err := os.ReadFile(filepath.Join(dir, "batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var batch struct {
		IDs, Labels [][]int
		Loss        float64
		Logits0     [][]float64
	}
	if err := json.Unmarshal(raw, &batch); err != nil {
		t.Fatal(err)
	}
	m, err := model.LoadLlama2C(filepath.Join(dir, "base.bin"), quant.F32)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := ReadPEFT(filepath.Join(dir, "adapter"), m)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(m, a, 1)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	seqs := make([]Seq, len(batch.IDs))
	for i := range batch.IDs {
		seqs[i] = Seq{IDs: batch.IDs[i], Mask: make([]bool, len(batch.IDs[i]))}
		for j, l := range batch.Labels[i] {
			seqs[i].Mask[j] = l != -100
		}
		total += Counted(seqs[i])
	}
	var sum float64
	for _, s := range seqs {
		ls, _, err := e.Accumulate(s, 1/float32(total))
		if err != nil {
			t.Fatal(err)
		}
		sum += ls
	}
	if loss := sum / float64(total); math.Abs(loss-batch.Loss) > 1e-4*math.Abs(batch.Loss) {
		t.Errorf("loss %.7f, reference %.7f", loss, batch.Loss)
	}
	// Logits of sequence 0 through the inference path.
	plug, err := NewPlug(m, Weighted{a, 1})
	if err != nil {
		t.Fatal(err)
	}
	st := m.NewState()
	st.SetDelta(plug)
	var worst, scale float64
	for pos, id := range batch.IDs[0] {
		for i, v := range st.Forward(id, pos) {
			worst = max(worst, math.Abs(float64(v)-batch.Logits0[pos][i]))
			scale = max(scale, math.Abs(batch.Logits0[pos][i]))
		}
	}
	if worst > 1e-4*scale {
		t.Errorf("logits differ from the reference by %g (largest logit %g)", worst, scale)
	}
	// Gradients: PEFT's are in HF layout, ours in the model's.
	gf, err := safetensors.Open(filepath.Join(dir, "grads.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	hf := permuteB(e.Grads, m.Config, true)
	var gmax, gworst float64
	for k, p := range hf.Pairs {
		an, bn, err := adapters.PEFTNames(k)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			got  []float32
		}{{an, p.A}, {bn, p.B}} {
			want, _, err := gf.Float32(c.name)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				gmax = max(gmax, math.Abs(float64(want[i])))
				gworst = max(gworst, math.Abs(float64(c.got[i]-want[i])))
			}
		}
	}
	if gworst > 1e-4*gmax {
		t.Errorf("LoRA gradients differ from the reference by %g (largest %g)", gworst, gmax)
	}
	t.Logf("loss %.6f vs reference %.6f; logits within %.2g; gradients within %.2g of %.2g", sum/float64(total), batch.Loss, worst, gworst, gmax)
}
