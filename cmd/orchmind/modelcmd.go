package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	nodebase "orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/tensor"
)

func runModel(_ context.Context, e *env) error {
	if len(e.args) == 0 {
		return fmt.Errorf("%w: use orchmind model info PATH or orchmind model convert IN --out X.gguf [--quant TYPE]", errUsage)
	}
	sub := *e
	sub.args = e.args[1:]
	switch e.args[0] {
	case "info":
		return modelInfo(&sub)
	case "convert":
		return modelConvert(&sub)
	}
	return fmt.Errorf("%w: unknown model command %q (use info or convert)", errUsage, e.args[0])
}

// splitArgs lets flags come before or after the positional arguments.
func splitArgs(args []string, valued map[string]bool) (flags, pos []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if valued[name] && !strings.Contains(a, "=") && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return flags, pos
}

func modelInfo(e *env) error {
	fs := newFlags(e, "model info", "PATH [--tokenizer T] [--quant TYPE]")
	tok := fs.String("tokenizer", "", tokenizerHelp)
	qt := fs.String("quant", "", "show the model as it would be held with this type (default: as stored)")
	flags, pos := splitArgs(e.args, map[string]bool{"tokenizer": true, "quant": true})
	e.args = flags
	if err := parseFlags(fs, e); err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: give one model path", errUsage)
	}
	typ, err := parseQuant(*qt)
	if err != nil {
		return err
	}
	b, err := nodebase.Load(pos[0], *tok, typ)
	tokLine := ""
	if errors.Is(err, nodebase.ErrNoTokenizer) {
		// The weights alone are enough to describe the model.
		var m *model.Model
		if m, _, err = model.Load(pos[0], typ); err != nil {
			return err
		}
		b = &nodebase.Base{Path: pos[0], Model: m, Fingerprint: model.Fingerprint(m), ShapeID: model.ShapeID(m)}
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
	fmt.Fprintf(tw, "classifier\t%s\n", map[bool]string{true: "shared with the embedding", false: "separate"}[c.SharedClassifier])
	fmt.Fprintf(tw, "parameters\t%d\n", params)
	fmt.Fprintf(tw, "tensor types\t%s\n", strings.Join(tl, ", "))
	fmt.Fprintf(tw, "size in memory\t%s\n", humanBytes(int64(m.Bytes())))
	fmt.Fprintf(tw, "tokenizer\t%s\n", tokLine)
	fmt.Fprintf(tw, "fingerprint\t%s\n", b.Fingerprint)
	fmt.Fprintf(tw, "shape id\t%s\n", b.ShapeID)
	fmt.Fprintf(tw, "kernels\t%s\n", tensor.ISASummary())
	return tw.Flush()
}

func modelConvert(e *env) error {
	fs := newFlags(e, "model convert", "IN --out X.gguf [--quant q8_0|q4_0|f16|f32] [--tokenizer T]")
	out := fs.String("out", "", "GGUF file to write")
	qt := fs.String("quant", "", "store the weights as q8_0, q4_0, q4_1, q4_k, q5_k, q6_k, f16, bf16 or f32 (default: as they are)")
	tok := fs.String("tokenizer", "", tokenizerHelp)
	flags, pos := splitArgs(e.args, map[string]bool{"out": true, "quant": true, "tokenizer": true})
	e.args = flags
	if err := parseFlags(fs, e); err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		return fmt.Errorf("%w: give one input model and --out X.gguf", errUsage)
	}
	typ, err := parseQuant(*qt)
	if err != nil {
		return err
	}
	b, err := nodebase.Load(pos[0], *tok, model.AsStored)
	if err != nil {
		return err
	}
	v, err := nodebase.VocabOf(b.Tok, b.Model.Vocab)
	if err != nil {
		return fmt.Errorf("convert %s: %w", pos[0], err)
	}
	extra := map[string]string{}
	if b.ChatTemplate != "" {
		extra["tokenizer.chat_template"] = b.ChatTemplate
	}
	if _, ok := b.Train.(nodebase.DocEnd); ok {
		extra[nodebase.DocEndKey] = "bos"
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
	if err := model.WriteGGUF(*out, b.Model, b.Name, typ, v, extra); err != nil {
		return err
	}
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s (%s)\n", *out, humanBytes(st.Size()))
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
