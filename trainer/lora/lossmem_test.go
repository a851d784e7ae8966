package lora

import (
	"runtime"
	"testing"

	"orchmind/engine/model"
	"orchmind/engine/quant"
)

// TestLossMemory262k measures what Gemma's 262,144-token vocabulary costs
// a training step of batch 8 × 256 beyond a 256-token vocabulary in the
// same model: every byte the engine allocates from its creation through
// the eight sequences' forward and backward passes (the weights are made
// before). The bound is 64 MB; the sliced loss holds the logits
// of the sequence's tokens for 8,192 vocabulary entries at a time (8 MiB).
// The same step with the whole vocabulary's logits at once (256 MiB a
// sequence) must exceed the bound, so the measurement can tell the two
// apart.
func TestLossMemory262k(t *testing.T) {
	if testing.Short() {
		t.Skip("a 262,144-token vocabulary: skipped in -short")
	}
	const batch, seq, bound = 8, 256, 64 << 20
	step := func(vocab, slice int) uint64 {
		c := model.Config{Dim: 16, HiddenDim: 24, Layers: 1, Heads: 2, KVHeads: 1, Vocab: vocab, SeqLen: seq, NormEps: 1e-6,
			RopeTheta: 10000, SharedClassifier: true}
		m := randomModel(t, c, quant.Q8_0, 5)
		a := randomAdapter(t, m, 2, 6)
		seqs := make([]Seq, batch)
		for i := range seqs {
			seqs[i] = randomSeq(seq, vocab, uint64(i))
			seqs[i].Mask = nil
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		e, err := NewEngine(m, a, 1)
		if err != nil {
			t.Fatal(err)
		}
		if slice > 0 {
			e.grow(seq)
			e.growLoss(seq, slice)
		}
		for _, s := range seqs {
			if _, _, err := e.Accumulate(s, 1/float32(batch*(seq-1))); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	small := step(256, 0)
	big := step(262144, 0)
	whole := step(262144, 262144)
	t.Logf("allocated in a batch-8 × 256 step: %.1f MiB with 256 tokens, %.1f MiB with 262,144 (sliced loss), %.1f MiB with the whole vocabulary's logits at once",
		float64(small)/(1<<20), float64(big)/(1<<20), float64(whole)/(1<<20))
	if big-small > bound {
		t.Errorf("the 262,144-token loss adds %.1f MiB to a batch 8 × 256 step, more than 64 MiB", float64(big-small)/(1<<20))
	}
	if whole-small <= bound {
		t.Errorf("the unsliced loss added only %.1f MiB: the measurement cannot see the logits", float64(whole-small)/(1<<20))
	}
}
