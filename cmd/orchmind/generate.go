package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"orchmind/trainer/model"
	"orchmind/trainer/quant"
	"orchmind/trainer/tokenizer"
)

func runGenerate(ctx context.Context, e *env) error {
	fs := newFlags(e, "generate", "--model M [--tokenizer T] --prompt TEXT [-n N] [--temp T] [--seed S] [--quant TYPE]")
	modelPath := fs.String("model", "", "base model: a llama2.c checkpoint (.bin)")
	tokPath := fs.String("tokenizer", "", "tokenizer.bin (default: tok<vocab>.bin or tokenizer.bin beside the model)")
	prompt := fs.String("prompt", "", "text to continue")
	n := fs.Int("n", -1, "number of new tokens (default: up to 256 positions in all, prompt included, as llama2.c's run.c)")
	temp := fs.Float64("temp", 0.8, "sampling temperature; 0 = greedy")
	seed := fs.Uint64("seed", 0, "random seed for sampling (0 = from the clock)")
	qt := fs.String("quant", "f32", "hold the weights as f32, f16, q8_0, q4_0 or q4_1")
	if err := parseFlags(fs, e); err != nil {
		return err
	}
	if *modelPath == "" {
		return fmt.Errorf("%w: --model is required", errUsage)
	}
	if *n < -1 || *temp < 0 || math.IsNaN(*temp) {
		return fmt.Errorf("%w: -n and --temp must not be negative", errUsage)
	}
	typ, err := quant.ParseType(*qt)
	if err != nil {
		return fmt.Errorf("%w: --quant: %v", errUsage, err)
	}
	m, err := model.LoadLlama2C(*modelPath, typ)
	if err != nil {
		return err
	}
	tp := *tokPath
	if tp == "" {
		if tp = findTokenizer(*modelPath, m.Vocab); tp == "" {
			return fmt.Errorf("no tokenizer found beside %s: pass --tokenizer PATH", *modelPath)
		}
	}
	tok, err := tokenizer.LoadLlama2C(tp, m.Vocab)
	if err != nil {
		return err
	}
	e.log.Debug("model loaded", "dim", m.Dim, "layers", len(m.Layers), "bytes", m.Bytes(), "type", typ)
	if *seed == 0 {
		*seed = rand.Uint64()
	}
	out := bufio.NewWriter(e.stdout)
	defer out.Flush()
	err = model.Generate(ctx, m, tok, *prompt, model.Sampling{MaxNew: *n, Temperature: float32(*temp), Seed: *seed},
		func(piece string) error {
			if _, err := out.WriteString(piece); err != nil {
				return err
			}
			return out.Flush()
		})
	if err != nil {
		return err
	}
	_, err = out.WriteString("\n")
	return err
}

// findTokenizer looks beside the model for the llama2.c tokenizer files.
func findTokenizer(modelPath string, vocab int) string {
	dir := filepath.Dir(modelPath)
	for _, name := range []string{fmt.Sprintf("tok%d.bin", vocab), "tokenizer.bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}
