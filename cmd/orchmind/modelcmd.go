package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	nodebase "orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/tensor"
)

func modelCmd(e *env) *cobra.Command {
	return parentCmd("model <command>", "model list: the bases on this computer; model pull NAME (gemma3:1b, hf:ORG/REPO[:Q4_K_M]); model info PATH: architecture, size, fingerprint; model convert IN --out X.gguf [--quant q8_0|q4_0|f16|f32]",
		"use orchmind model list, model pull NAME, model info PATH or model convert IN --out X.gguf [--quant TYPE]",
		"unknown model command %q (use list, pull, info or convert)", modelListCmd(e), modelPullCmd(e), modelInfoCmd(e), modelConvertCmd(e))
}

func modelInfoCmd(e *env) *cobra.Command {
	c := verb("info PATH [--tokenizer T] [--quant TYPE]", "architecture, size, tensor types, tokenizer and fingerprint of a model", cobra.ArbitraryArgs)
	tok := c.Flags().String("tokenizer", "", tokenizerHelp)
	qt := c.Flags().String("quant", "", "show the model as it would be held with this type (default: as stored)")
	completeFiles(c, "tokenizer", "json", "model", "bin")
	completeWords(c, "quant", quantNames...)
	c.RunE = func(_ *cobra.Command, pos []string) error {
		if len(pos) != 1 {
			return fmt.Errorf("%w: give one model path", errUsage)
		}
		return modelInfo(e, pos[0], *tok, *qt)
	}
	return c
}

func modelInfo(e *env, path, tok, qt string) error {
	typ, err := parseQuant(qt)
	if err != nil {
		return err
	}
	b, err := nodebase.Load(path, tok, typ)
	tokLine := ""
	if errors.Is(err, nodebase.ErrNoTokenizer) {
		// The weights alone are enough to describe the model.
		var m *model.Model
		if m, _, err = model.Load(path, typ); err != nil {
			return err
		}
		b = &nodebase.Base{Path: path, Model: m, Fingerprint: model.Fingerprint(m), ShapeID: model.ShapeID(m)}
		tokLine = "none found beside the model (generate and train need --tokenizer PATH)"
	} else if err != nil {
		return err
	}
	m := b.Model
	c := m.Config
	if tokLine == "" {
		tokLine = describeTokenizer(b)
	}
	types := map[string]int{}
	var params int64
	m.EachTensor(func(_ string, w *tensor.Matrix, norm []float32) {
		if w != nil {
			if w == m.Output && m.SharedClassifier && w != m.Embed {
				return
			}
			types[w.Type.String()]++
			params += int64(w.Rows) * int64(w.Cols)
			return
		}
		types["F32 vectors (norms, biases)"]++
		params += int64(len(norm))
	})
	var tl []string
	for k, v := range types {
		tl = append(tl, fmt.Sprintf("%s ×%d", k, v))
	}
	sort.Strings(tl)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "path\t%s\n", b.Path)
	fmt.Fprintf(tw, "architecture\t%s\n", c.ArchName())
	fmt.Fprintf(tw, "dims\twidth %d, MLP %d, head %d\n", c.Dim, c.HiddenDim, c.HeadDim())
	fmt.Fprintf(tw, "layers\t%d\n", c.Layers)
	fmt.Fprintf(tw, "heads\t%d query, %d key/value\n", c.Heads, c.KVHeads)
	fmt.Fprintf(tw, "vocabulary\t%d\n", c.Vocab)
	fmt.Fprintf(tw, "context\t%d\n", c.SeqLen)
	fmt.Fprintf(tw, "rope theta / norm eps\t%g / %g\n", c.RopeTheta, c.NormEps)
	if m.RopeFactors != nil {
		fmt.Fprintf(tw, "rope scaling\tper-pair frequency factors %g … %g (Llama 3.1+)\n", m.RopeFactors[0], m.RopeFactors[len(m.RopeFactors)-1])
	}
	if c.SlidingWindow > 0 {
		n := 0
		for l := range c.Layers {
			if c.Sliding(l) {
				n++
			}
		}
		fmt.Fprintf(tw, "attention	%d of %d layers slide over the last %d positions, the others are global\n", n, c.Layers, c.SlidingWindow)
	}
	if c.RopeLocalTheta > 0 && c.RopeLocalTheta != c.RopeTheta {
		fmt.Fprintf(tw, "rope theta, sliding layers	%g\n", c.RopeLocalTheta)
	}
	if c.RopeScale > 1 {
		fmt.Fprintf(tw, "rope scaling	linear ×%g (global layers)\n", c.RopeScale)
	}
	if c.AttnSoftcap > 0 || c.FinalSoftcap > 0 {
		fmt.Fprintf(tw, "soft-capping	attention scores %g, logits %g (0: none)\n", c.AttnSoftcap, c.FinalSoftcap)
	}
	if m.Skipped != "" {
		fmt.Fprintf(tw, "skipped	%s\n", m.Skipped)
	}
	fmt.Fprintf(tw, "classifier\t%s\n", map[bool]string{true: "shared with the embedding", false: "separate"}[c.SharedClassifier])
	fmt.Fprintf(tw, "parameters\t%d\n", params)
	fmt.Fprintf(tw, "tensor types\t%s\n", strings.Join(tl, ", "))
	fmt.Fprintf(tw, "size in memory\t%s\n", humanBytes(int64(m.Bytes())))
	fmt.Fprintf(tw, "tokenizer\t%s\n", tokLine)
	fmt.Fprintf(tw, "fingerprint\t%s\n", b.Fingerprint)
	fmt.Fprintf(tw, "shape id\t%s\n", b.ShapeID)
	fmt.Fprintf(tw, "kernels\t%s\n", tensor.ISASummary())
	fmt.Fprintf(tw, "threads\t%s\n", threadsSummary(e.getenv))
	fmt.Fprintf(tw, "generation\t%s\n", tensor.Int8Summary())
	return tw.Flush()
}

func modelConvertCmd(e *env) *cobra.Command {
	c := verb("convert IN --out X.gguf [--quant q8_0|q4_0|f16|f32] [--tokenizer T]", "write a model (GGUF, Hugging Face folder, llama2.c .bin) as a GGUF file", cobra.ArbitraryArgs)
	out := c.Flags().String("out", "", "GGUF file to write")
	qt := c.Flags().String("quant", "", "store the weights as q8_0, q4_0, q4_1, q4_k, q5_k, q6_k, f16, bf16 or f32 (default: as they are)")
	tok := c.Flags().String("tokenizer", "", tokenizerHelp)
	completeFiles(c, "out", "gguf")
	completeWords(c, "quant", "q8_0", "q4_0", "q4_1", "q4_k", "q5_k", "q6_k", "f16", "bf16", "f32")
	completeFiles(c, "tokenizer", "json", "model", "bin")
	c.RunE = func(_ *cobra.Command, pos []string) error {
		if len(pos) != 1 || *out == "" {
			return fmt.Errorf("%w: give one input model and --out X.gguf", errUsage)
		}
		return modelConvert(e, pos[0], *out, *qt, *tok)
	}
	return c
}

func modelConvert(e *env, in, out, qt, tok string) error {
	typ, err := parseQuant(qt)
	if err != nil {
		return err
	}
	b, err := nodebase.Load(in, tok, model.AsStored)
	if err != nil {
		return err
	}
	v, err := nodebase.VocabOf(b.Tok, b.Model.Vocab)
	if err != nil {
		return fmt.Errorf("convert %s: %w", in, err)
	}
	extra := map[string]string{}
	if b.ChatTemplate != "" {
		extra["tokenizer.chat_template"] = b.ChatTemplate
	}
	if _, ok := b.Train.(nodebase.DocEnd); ok {
		extra[nodebase.DocEndKey] = "bos"
	}
	if b.PromptTemplate != "" {
		extra[nodebase.PromptTemplateKey] = b.PromptTemplate
	}
	if typ != model.AsStored {
		fallback := map[int]int{}
		b.Model.EachTensor(func(_ string, w *tensor.Matrix, _ []float32) {
			if w != nil && model.StorageType(typ, w.Cols) != typ {
				fallback[w.Cols]++
			}
		})
		for _, cols := range slices.Sorted(maps.Keys(fallback)) {
			n := fallback[cols]
			fmt.Fprintf(e.stderr, "note: %d matrices with %d-wide rows are stored as F16: %d is not a multiple of the %s block size %d\n", n, cols, cols, typ, typ.BlockSize())
		}
	}
	if err := model.WriteGGUF(out, b.Model, b.Name, typ, v, extra); err != nil {
		return err
	}
	st, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s (%s)\n", out, humanBytes(st.Size()))
	return nil
}

// describeTokenizer is model info's tokenizer line: kind, size, special
// tokens and the chat template the model's files name.
func describeTokenizer(b *nodebase.Base) string {
	kind := "SentencePiece"
	if t, ok := b.Tok.(*nodebase.BPETokenizer); ok {
		_, _, _, pre, err := t.GGUFVocab()
		if err != nil {
			pre = "?"
		}
		kind = "byte-level BPE (" + pre + " split)"
		if !t.AddBOS() {
			kind += ", no BOS added"
		}
	}
	line := fmt.Sprintf("%s, BOS %d, EOS %d", kind, b.Tok.BOS(), b.Tok.EOS())
	if t, err := b.Template(""); err == nil {
		line += "; prompt template " + t.Name
	} else {
		line += "; chat template not recognised (train and chat need --template)"
	}
	return line
}
