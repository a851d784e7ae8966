package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	nodebase "orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/trainer/lora"
)

// baseFlags are the flags every verb that loads a base model shares.
type baseFlags struct {
	model, tokenizer, quant *string
}

// tokenizerHelp is the --tokenizer flag's help, shared by the verbs that
// load a base.
const tokenizerHelp = "the model's tokenizer: tokenizer.json, tokenizer.model or a llama2.c tokenizer.bin (default: the GGUF file's own, the Hugging Face folder's, or tok<vocab>.bin / tokenizer.bin beside the model)"

// quantNames are the --quant values a base can be held as.
var quantNames = []string{"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1"}

// addBaseFlags adds --model, --tokenizer and --quant to c.
func addBaseFlags(c *cobra.Command) baseFlags {
	fs := c.Flags()
	b := baseFlags{
		model:     fs.String("model", "", "base model: ollama:NAME[:TAG] or hf:ORG/REPO[:QUANT] (found in Ollama's store, the Hugging Face cache or orchmind's models; see orchmind model list), a .gguf file, a Hugging Face model folder, or a llama2.c checkpoint (.bin)"),
		tokenizer: fs.String("tokenizer", "", tokenizerHelp),
		quant:     fs.String("quant", "", "hold the weights as "+strings.Join(quantNames[:len(quantNames)-1], ", ")+" or "+quantNames[len(quantNames)-1]+", quantizing on load (default: as stored)"),
	}
	completeFiles(c, "model", "gguf", "bin")
	completeFiles(c, "tokenizer", "json", "model", "bin")
	completeWords(c, "quant", quantNames...)
	return b
}

// parseQuant maps the --quant flag to a type ("" keeps the stored types).
func parseQuant(s string) (quant.Type, error) {
	if s == "" {
		return model.AsStored, nil
	}
	t, err := quant.ParseType(s)
	if err != nil {
		return 0, fmt.Errorf("%w: --quant: %v", errUsage, err)
	}
	return t, nil
}

func (b baseFlags) load() (*nodebase.Base, error) {
	if *b.model == "" {
		return nil, fmt.Errorf("%w: --model is required", errUsage)
	}
	typ, err := parseQuant(*b.quant)
	if err != nil {
		return nil, err
	}
	return nodebase.Load(*b.model, *b.tokenizer, typ)
}

// plug loads the adapters named by specs (DIR or DIR:scale) onto b.
func plug(e *env, b *nodebase.Base, specs []string) (model.Delta, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	var ws []lora.Weighted
	for _, spec := range specs {
		dir, scale := spec, float32(1)
		if i := strings.LastIndexByte(spec, ':'); i > 0 {
			if v, err := strconv.ParseFloat(spec[i+1:], 32); err == nil {
				dir, scale = spec[:i], float32(v)
			}
		}
		a, man, err := lora.ReadPEFT(dir, b.Model)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("cannot plug %s onto %s", dir, b.Path), err)
		}
		if fp := a.BaseFingerprint; fp != "" && fp != b.Fingerprint {
			shape := ""
			if man != nil {
				shape = man.BaseShapeFingerprint
			}
			if shape != b.ShapeID {
				return nil, fmt.Errorf("adapter %s was trained on base %s (%s), this base is %s: use the base it was trained on", dir, a.BaseName, fp, b.Fingerprint)
			}
			fmt.Fprintf(e.stderr, "warning: %s was trained on another copy of this model (%s, now %s): same shapes, results may differ slightly\n", dir, fp, b.Fingerprint)
		}
		ws = append(ws, lora.Weighted{Adapter: a, Weight: scale})
	}
	return lora.NewPlug(b.Model, ws...)
}
