package data

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"orchmind/engine/chat"
	"orchmind/engine/tokenizer"
	"strings"
)

// Options controls Build.
type Options struct {
	Load LoadOptions
	// Template formats conversations; zero value means plain.
	Template chat.Template
	// MaxSeqLen truncates longer examples (0 = no limit).
	MaxSeqLen int
	// ChunkTokens is the token budget when merging paragraphs of a text file
	// (0 = MaxSeqLen, or 256 when that is 0 too).
	ChunkTokens int
	// EvalFraction of examples is held out for evaluation (0 = none).
	EvalFraction float64
	// Seed makes the eval split reproducible.
	Seed uint64
}

// Example is one tokenised training example. Mask[i] says whether token i
// counts in the loss (predicting IDs[i] from IDs[:i]).
type Example struct {
	IDs   []int
	Mask  []bool
	Where string
}

// Summary describes what Build did.
type Summary struct {
	Files      int    `json:"files"`
	Examples   int    `json:"examples"`
	Train      int    `json:"train"`
	Eval       int    `json:"eval"`
	Tokens     int    `json:"tokens"`
	MaskTokens int    `json:"loss_tokens"`
	Longest    int    `json:"longest"`
	Truncated  int    `json:"truncated"`
	Duplicates int    `json:"duplicates"`
	Skipped    []Skip `json:"skipped,omitempty"`
	Template   string `json:"template"`
	// Conversations counts the chat conversations (ChatGPT exports) the
	// examples came from; Turns the answers kept from them.
	Conversations int `json:"conversations,omitempty"`
	Turns         int `json:"turns,omitempty"`
}

// Dataset is the result of Build.
type Dataset struct {
	Train   []Example
	Eval    []Example
	Summary Summary
}

// Build loads path, formats and tokenises every record, removes duplicates
// (exact after whitespace normalisation), truncates to MaxSeqLen and splits
// off a seeded eval set.
func Build(ctx context.Context, path string, enc tokenizer.Encoder, opt Options) (*Dataset, error) {
	recs, files, skips, err := Load(path, opt.Load)
	if err != nil {
		return nil, err
	}
	if opt.Template.Name == "" {
		opt.Template = chat.Template{Name: "plain"}
	}
	budget := opt.ChunkTokens
	if budget <= 0 {
		budget = opt.MaxSeqLen
	}
	if budget <= 0 {
		budget = 256
	}
	recs = chunkText(recs, enc, budget)
	sum := Summary{Files: files, Skipped: skips, Template: opt.Template.Name}
	seen := make(map[string]bool, len(recs))
	var all []Example
	for i, r := range recs {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("build dataset: %w", ctx.Err())
		}
		key := normKey(r)
		if seen[key] {
			sum.Duplicates++
			continue
		}
		seen[key] = true
		var ex Example
		if r.Messages != nil {
			prompt, completion, err := opt.Template.Render(r.Messages)
			if err != nil {
				sum.Skipped = append(sum.Skipped, Skip{r.Where, err.Error()})
				continue
			}
			p := enc.Encode(prompt, true, false)
			c := enc.Encode(completion, false, true)
			ex.IDs = append(p, c...)
			ex.Mask = make([]bool, len(ex.IDs))
			for j := len(p); j < len(ex.IDs); j++ {
				ex.Mask[j] = true
			}
		} else {
			ex.IDs = enc.Encode(r.Text, true, true)
			ex.Mask = make([]bool, len(ex.IDs))
			for j := 1; j < len(ex.Mask); j++ { // BOS is never predicted
				ex.Mask[j] = true
			}
		}
		ex.Where = r.Where
		if opt.MaxSeqLen > 0 && len(ex.IDs) > opt.MaxSeqLen {
			ex.IDs, ex.Mask = ex.IDs[:opt.MaxSeqLen], ex.Mask[:opt.MaxSeqLen]
			sum.Truncated++
		}
		if countTrue(ex.Mask) == 0 {
			sum.Skipped = append(sum.Skipped, Skip{r.Where, "no answer tokens left after truncation"})
			continue
		}
		all = append(all, ex)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no training examples found in %s: supported formats are %s", path, SupportedFormats)
	}
	ds := &Dataset{}
	nEval := int(opt.EvalFraction*float64(len(all)) + 0.5)
	if opt.EvalFraction > 0 && nEval == 0 {
		nEval = 1
	}
	if nEval >= len(all) {
		return nil, fmt.Errorf("eval fraction %g leaves no training examples out of %d", opt.EvalFraction, len(all))
	}
	rng := rand.New(rand.NewPCG(opt.Seed, opt.Seed^0x9e3779b97f4a7c15))
	perm := rng.Perm(len(all))
	isEval := make([]bool, len(all))
	for _, i := range perm[:nEval] {
		isEval[i] = true
	}
	for i, ex := range all {
		if isEval[i] {
			ds.Eval = append(ds.Eval, ex)
		} else {
			ds.Train = append(ds.Train, ex)
		}
		sum.Tokens += len(ex.IDs)
		sum.MaskTokens += countTrue(ex.Mask)
		sum.Longest = max(sum.Longest, len(ex.IDs))
	}
	sum.Examples, sum.Train, sum.Eval = len(all), len(ds.Train), len(ds.Eval)
	convs := map[string]bool{}
	for _, r := range recs {
		if r.Conversation != "" {
			convs[r.Conversation] = true
			sum.Turns++
		}
	}
	sum.Conversations = len(convs)
	ds.Summary = sum
	return ds, nil
}

func countTrue(m []bool) int {
	n := 0
	for _, b := range m {
		if b {
			n++
		}
	}
	return n
}

func normKey(r Record) string {
	if r.Messages == nil {
		return "t\x00" + strings.Join(strings.Fields(r.Text), " ")
	}
	var b strings.Builder
	b.WriteString("m")
	for _, m := range r.Messages {
		b.WriteString("\x00" + m.Role + "\x00" + strings.Join(strings.Fields(m.Content), " "))
	}
	return b.String()
}

// chunkText merges consecutive paragraphs of the same text document while
// they fit the token budget.
func chunkText(recs []Record, enc tokenizer.Encoder, budget int) []Record {
	var out []Record
	var cur *Record
	curTok := 0
	for _, r := range recs {
		if r.Messages != nil || r.Doc == 0 {
			cur = nil
			out = append(out, r)
			continue
		}
		n := len(enc.Encode(r.Text, false, false))
		if cur != nil && cur.Doc == r.Doc && curTok+n+2 <= budget {
			cur.Text += "\n\n" + r.Text
			curTok += n + 2
			continue
		}
		out = append(out, r)
		cur = &out[len(out)-1]
		curTok = n + 2
	}
	return out
}

// Row is one packed fixed-length training row.
type Row struct {
	IDs  []int
	Mask []bool
	// Starts holds the offset of each example inside the row; attention must
	// not cross from one example into the next.
	Starts []int
	// Len is the number of real (non-padding) tokens.
	Len int
}

// Pack places examples greedily (in order) into rows of rowLen tokens,
// padding with pad (masked out). Examples longer than rowLen are an error:
// truncate them first with Options.MaxSeqLen.
func Pack(examples []Example, rowLen, pad int) ([]Row, error) {
	if rowLen <= 0 {
		return nil, errors.New("pack: row length must be > 0")
	}
	var rows []Row
	var cur *Row
	for _, ex := range examples {
		if len(ex.IDs) > rowLen {
			return nil, fmt.Errorf("pack: example %s has %d tokens, longer than the row length %d", ex.Where, len(ex.IDs), rowLen)
		}
		if cur == nil || cur.Len+len(ex.IDs) > rowLen {
			rows = append(rows, Row{})
			cur = &rows[len(rows)-1]
		}
		cur.Starts = append(cur.Starts, cur.Len)
		cur.IDs = append(cur.IDs, ex.IDs...)
		cur.Mask = append(cur.Mask, ex.Mask...)
		cur.Len += len(ex.IDs)
	}
	for i := range rows {
		for len(rows[i].IDs) < rowLen {
			rows[i].IDs = append(rows[i].IDs, pad)
			rows[i].Mask = append(rows[i].Mask, false)
		}
	}
	return rows, nil
}
