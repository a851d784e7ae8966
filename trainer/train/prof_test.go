package train

import (
	"context"
	"path/filepath"
	"testing"

	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tokenizer"
	"orchmind/internal/testshared"
	"orchmind/trainer/hparams"
)

func BenchmarkSeedTasks(b *testing.B) {
	mp := testshared.Path(b, "models/stories260K/stories260K.bin")
	m, _ := model.LoadLlama2C(mp, quant.F32)
	tok, _ := tokenizer.LoadLlama2C(filepath.Join(filepath.Dir(mp), "tok512.bin"), m.Vocab)
	for range b.N {
		_, err := Run(context.Background(), Config{Model: m, Tokenizer: docEnd{tok}, Data: testshared.Path(b, "data/alpaca_seed/seed_tasks.jsonl"), Name: "s", OutDir: b.TempDir(), Seed: 1, Overrides: hparams.Overrides{Epochs: intp(1)}})
		if err != nil {
			b.Fatal(err)
		}
	}
}
