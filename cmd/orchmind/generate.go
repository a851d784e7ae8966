package main

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/spf13/cobra"

	"orchmind/engine/model"
)

func generateCmd(e *env) *cobra.Command {
	c := verb("generate --model M [--tokenizer T] --prompt TEXT [-n N] [--temp T] [--seed S] [--quant TYPE] [--adapter DIR[:scale]]…",
		"continue a prompt with a base model and optional adapters", noArgs)
	bf := addBaseFlags(c)
	fs := c.Flags()
	prompt := fs.String("prompt", "", "text to continue")
	n := fs.IntP("n", "n", -1, "number of new tokens (default: up to 256 positions in all, prompt included, as llama2.c's run.c)")
	temp := fs.Float64("temp", 0.8, "sampling temperature; 0 = greedy")
	seed := fs.Uint64("seed", 0, "random seed for sampling (0 = from the clock)")
	topK := fs.Int("top-k", 0, "sample among the K most likely tokens (0 = all)")
	topP := fs.Float64("top-p", 0, "sample among the most likely tokens whose probability adds up to P (0 = all)")
	ads := repeatable(c, "adapter", "plug a LoRA adapter folder, DIR or DIR:scale (repeatable: adapters add up)")
	completeDirs(c, "adapter")
	c.RunE = func(c *cobra.Command, _ []string) error {
		if *n < -1 || *temp < 0 || math.IsNaN(*temp) || *topK < 0 || !(*topP >= 0 && *topP <= 1) {
			return fmt.Errorf("%w: -n, --temp and --top-k must not be negative, --top-p must be between 0 and 1", errUsage)
		}
		b, err := bf.load()
		if err != nil {
			return err
		}
		delta, err := plug(e, b, *ads)
		if err != nil {
			return err
		}
		e.log.Debug("model loaded", "dim", b.Model.Dim, "layers", len(b.Model.Layers), "bytes", b.Model.Bytes(), "type", b.Type, "fingerprint", b.Fingerprint)
		if *seed == 0 {
			*seed = rand.Uint64()
		}
		out := bufio.NewWriter(e.stdout)
		defer out.Flush()
		err = model.Generate(c.Context(), b.Model, b.Tok, *prompt, model.Sampling{MaxNew: *n, Temperature: float32(*temp), Seed: *seed, Delta: delta, TopK: *topK, TopP: float32(*topP)},
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
	return c
}
