package main

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"orchmind/adapters"
	nodebase "orchmind/node/base"
	"orchmind/trainer/lora"
	"orchmind/trainer/model"
	"orchmind/trainer/quant"
	"orchmind/trainer/tokenizer"
)

// baseFlags are the flags every verb that loads a base model shares.
type baseFlags struct {
	model, tokenizer, quant *string
}

func addBaseFlags(fs *flag.FlagSet) baseFlags {
	return baseFlags{
		model:     fs.String("model", "", "base model: a llama2.c checkpoint (.bin)"),
		tokenizer: fs.String("tokenizer", "", "tokenizer.bin (default: tok<vocab>.bin or tokenizer.bin beside the model)"),
		quant:     fs.String("quant", "f32", "hold the weights as f32, f16, q8_0, q4_0 or q4_1 (quantized on load)"),
	}
}

// base is a loaded base model with its tokenizer and identity.
type base struct {
	path string
	m    *model.Model
	tok  *tokenizer.Llama2C
	typ  quant.Type
	// fingerprint and shapeID pin adapters to this base (see node/base).
	fingerprint, shapeID string
}

// extraFiles writes the adapter files beyond PEFT's (the GGUF LoRA) into dir.
func (b *base) extraFiles(dir string, a *adapters.Adapter) error { return nil }

func (b baseFlags) load() (*base, error) {
	if *b.model == "" {
		return nil, fmt.Errorf("%w: --model is required", errUsage)
	}
	typ, err := quant.ParseType(*b.quant)
	if err != nil {
		return nil, fmt.Errorf("%w: --quant: %v", errUsage, err)
	}
	m, err := model.LoadLlama2C(*b.model, typ)
	if err != nil {
		return nil, err
	}
	tp := *b.tokenizer
	if tp == "" {
		if tp = findTokenizer(*b.model, m.Vocab); tp == "" {
			return nil, fmt.Errorf("no tokenizer found beside %s: pass --tokenizer PATH", *b.model)
		}
	}
	tok, err := tokenizer.LoadLlama2C(tp, m.Vocab)
	if err != nil {
		return nil, err
	}
	fp, err := nodebase.FileFingerprint(*b.model)
	if err != nil {
		return nil, err
	}
	return &base{path: *b.model, m: m, tok: tok, typ: typ, fingerprint: fp, shapeID: nodebase.ShapeID(m.Config)}, nil
}

// docEnd wraps a llama2.c tokenizer for training: llama2.c models were
// pretrained with BOS between documents and never saw EOS (run.c stops on
// BOS), so the end of a training example is marked with BOS, the token the
// model already predicts at the end of a text.
type docEnd struct{ *tokenizer.Llama2C }

func (d docEnd) EOS() int { return d.BOS() }

func (d docEnd) Encode(text string, addBOS, addEOS bool) []int {
	ids := d.Llama2C.Encode(text, addBOS, false)
	if addEOS {
		ids = append(ids, d.BOS())
	}
	return ids
}

// trainTokenizer is the tokenizer the trainer should use for this base.
func (b *base) trainTokenizer() docEnd { return docEnd{b.tok} }

// name is the base model's display name.
func (b *base) name() string { return strings.TrimSuffix(filepath.Base(b.path), filepath.Ext(b.path)) }

// adapterFlag collects repeatable --adapter DIR[:scale] values.
type adapterFlag []string

func (a *adapterFlag) String() string     { return strings.Join(*a, ",") }
func (a *adapterFlag) Set(v string) error { *a = append(*a, v); return nil }

// plug loads the adapters named by specs (DIR or DIR:scale) onto b.
func (b *base) plug(specs []string) (model.Delta, error) {
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
		a, _, err := lora.ReadPEFT(dir, b.m)
		if err != nil {
			return nil, err
		}
		ws = append(ws, lora.Weighted{Adapter: a, Weight: scale})
	}
	p, err := lora.NewPlug(b.m, ws...)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cannot plug the adapter onto %s", b.path), err)
	}
	return p, nil
}
