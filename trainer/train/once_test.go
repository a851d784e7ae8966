package train

import (
	"context"
	"sync/atomic"
	"testing"

	"orchmind/trainer/data"
	"orchmind/trainer/hparams"
)

// countingTok is byteTok counting the bytes it is asked to encode.
type countingTok struct {
	byteTok
	bytes *atomic.Int64
}

func (c countingTok) Encode(s string, bos, eos bool) []int {
	c.bytes.Add(int64(len(s)))
	return c.byteTok.Encode(s, bos, eos)
}

// TestRunTokenizesOnce: a training run reads and tokenises its data once —
// it encodes exactly the bytes one data.Tokenize of the file encodes — and
// not a second time to plan or to fit (issue 11: training read and
// tokenised all data twice).
func TestRunTokenizesOnce(t *testing.T) {
	m := randomModel(t, 2)
	path := writeQA(t, 24)
	var once atomic.Int64
	if _, err := data.Tokenize(context.Background(), path, countingTok{bytes: &once}, data.Options{MaxSeqLen: m.SeqLen, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	var run atomic.Int64
	if _, err := Run(context.Background(), Config{Model: m, Tokenizer: countingTok{bytes: &run}, Data: path, Name: "once", OutDir: t.TempDir(), Seed: 1,
		Overrides: hparams.Overrides{Epochs: intp(1)}}); err != nil {
		t.Fatal(err)
	}
	if once.Load() == 0 || run.Load() != once.Load() {
		t.Fatalf("a training run encoded %d bytes; one tokenisation of the data encodes %d", run.Load(), once.Load())
	}
}
