package data

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"orchmind/engine/chat"
	"orchmind/engine/tokenizer"
	"regexp"
	"slices"
	"strings"
)

// Options controls Build.
type Options struct {
	Load LoadOptions
	// Template formats conversations; zero value means plain.
	Template chat.Template
	// MaxSeqLen is the longest example (0 = no limit): longer ones are
	// shortened or split (see Corpus.Fit).
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
	Files      int `json:"files"`
	Examples   int `json:"examples"`
	Train      int `json:"train"`
	Eval       int `json:"eval"`
	Tokens     int `json:"tokens"`
	MaskTokens int `json:"loss_tokens"`
	Longest    int `json:"longest"`
	// Shortened counts the examples longer than the sequence whose context
	// was shortened (a chat's oldest turns dropped, the text around a
	// SQuAD answer kept); their answers are whole.
	Shortened int `json:"shortened"`
	// Split counts the long plain texts cut into overlapping pieces, and
	// Pieces the pieces they gave.
	Split      int    `json:"split,omitempty"`
	Pieces     int    `json:"pieces,omitempty"`
	Duplicates int    `json:"duplicates"`
	Skipped    []Skip `json:"skipped,omitempty"`
	// SkipReasons counts the skipped items by reason (the reason's text up
	// to its first colon).
	SkipReasons map[string]int `json:"skip_reasons,omitempty"`
	Template    string         `json:"template"`
	// SeqLen is the sequence length the examples were fitted to (0: none).
	SeqLen int `json:"seq_len,omitempty"`
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
// (exact after whitespace normalisation), fits the examples to MaxSeqLen
// (see Corpus.Fit) and splits off a seeded eval set.
func Build(ctx context.Context, path string, enc tokenizer.Encoder, opt Options) (*Dataset, error) {
	c, err := Tokenize(ctx, path, enc, opt)
	if err != nil {
		return nil, err
	}
	return c.Fit(ctx, opt.MaxSeqLen, opt.EvalFraction, opt.Seed)
}

// pieceEncoder hands the encoder text in pieces of at most pieceBytes,
// cut at white space, and joins their tokens. Whether the space at a cut
// goes with the next piece depends on the tokenizer: SentencePiece adds a
// word-start mark to every piece itself, byte-level BPE needs the space.
type pieceEncoder struct {
	enc       tokenizer.Encoder
	keepSpace bool
}

func newPieceEncoder(enc tokenizer.Encoder) *pieceEncoder {
	ab := enc.Encode("a b", false, false)
	split := append(enc.Encode("a", false, false), enc.Encode("b", false, false)...)
	return &pieceEncoder{enc: enc, keepSpace: !slices.Equal(ab, split)}
}

// continued encodes a piece that follows the previous one after a space.
func (p *pieceEncoder) continued(text string) []int {
	if p.keepSpace {
		text = " " + text
	}
	return p.encode(text, false, false)
}

// encode is Encode in bounded pieces.
func (p *pieceEncoder) encode(text string, bos, eos bool) []int {
	if len(text) <= pieceBytes {
		return p.enc.Encode(text, bos, eos)
	}
	var out []int
	if bos {
		out = append(out, p.enc.BOS())
	}
	first := true
	for len(text) > 0 {
		n := len(text)
		if n > pieceBytes {
			n = strings.LastIndexAny(text[:pieceBytes], " \t\n")
			if n < pieceBytes/2 {
				n = pieceBytes
				for n > 0 && !utf8Start(text[n]) {
					n--
				}
			}
		}
		piece := text[:n]
		text = text[n:]
		if !first && !p.keepSpace {
			piece = strings.TrimLeft(piece, " ")
		}
		if piece != "" {
			out = append(out, p.enc.Encode(piece, false, false)...)
		}
		first = false
	}
	if eos {
		out = append(out, p.enc.EOS())
	}
	return out
}

// item is one tokenised example before fitting to a sequence length.
type item struct {
	rec Record
	// prompt and completion of a conversation; text holds a plain text's
	// tokens (without BOS/EOS).
	prompt, completion, text []int
}

func (it *item) length() int {
	if it.rec.Messages != nil {
		return len(it.prompt) + len(it.completion)
	}
	return len(it.text) + 2
}

// Corpus is the tokenised data, not yet fitted to a sequence length.
type Corpus struct {
	path  string
	enc   tokenizer.Encoder
	pe    *pieceEncoder
	tmpl  chat.Template
	items []item
	sum   Summary
}

// Lengths returns the token length of every example as it is, before any
// shortening.
func (c *Corpus) Lengths() []int {
	out := make([]int, len(c.items))
	for i := range c.items {
		out[i] = c.items[i].length()
	}
	return out
}

// Tokenize loads path and tokenises every record once: conversations are
// formatted with opt.Template, consecutive paragraphs of a text document
// are merged while they fit the chunk budget (ChunkTokens, else MaxSeqLen,
// else 256 tokens). The encoder sees one bounded piece at a time and ctx is
// checked between pieces, so a stop request is answered at once with where
// it stopped.
func Tokenize(ctx context.Context, path string, enc tokenizer.Encoder, opt Options) (*Corpus, error) {
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
	c := &Corpus{path: path, enc: enc, tmpl: opt.Template, sum: Summary{Template: opt.Template.Name}}
	seen := map[string]bool{}
	sep := enc.Encode("\n\n", false, false)
	pe := newPieceEncoder(enc)
	c.pe = pe
	var doc *item
	docN := 0
	var bad []Skip
	n := 0
	// Records are tokenised as the files are read: a text's characters are
	// not kept once they are tokens.
	l := &loader{ctx: ctx, opt: opt.Load}
	l.sink = func(r Record) error {
		n++
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("data stage stopped while tokenising %s (record %d): %w", r.Where, n, stopCause(err))
		}
		if r.Messages == nil && r.Doc != 0 {
			if r.Cont && doc != nil && doc.rec.Doc == r.Doc {
				doc.text = append(doc.text, pe.continued(r.Text)...)
				return nil
			}
			ids := pe.encode(r.Text, false, false)
			if doc != nil && doc.rec.Doc == r.Doc && docN+len(sep)+len(ids)+2 <= budget {
				doc.text = append(append(doc.text, sep...), ids...)
				docN += len(sep) + len(ids)
				return nil
			}
			r.Text = "" // the tokens are kept, not the text
			c.items = append(c.items, item{rec: r, text: ids})
			doc, docN = &c.items[len(c.items)-1], len(ids)
			return nil
		}
		doc = nil
		if r.Messages == nil {
			ids := pe.encode(r.Text, false, false)
			r.Text = ""
			c.items = append(c.items, item{rec: r, text: ids})
			return nil
		}
		prompt, completion, err := c.tmpl.Render(r.Messages)
		if err != nil {
			bad = append(bad, Skip{r.Where, err.Error()})
			return nil
		}
		key := normKey(r)
		if seen[key] {
			c.sum.Duplicates++
			return nil
		}
		seen[key] = true
		c.items = append(c.items, item{rec: r, prompt: pe.encode(prompt, true, false), completion: pe.encode(completion, false, true)})
		return nil
	}
	if err := l.load(path); err != nil {
		return nil, err
	}
	c.sum.Files = l.files
	c.sum.Skipped = append(l.skips, bad...)
	if n == 0 {
		return nil, noExamples(path, l.files, l.skips)
	}
	// Texts are de-duplicated after merging paragraphs.
	kept := c.items[:0]
	for _, it := range c.items {
		if it.rec.Messages == nil {
			key := idsKey(it.text)
			if seen[key] {
				c.sum.Duplicates++
				continue
			}
			seen[key] = true
		}
		kept = append(kept, it)
	}
	c.items = kept
	c.sum.Turns = 0
	convs := map[string]bool{}
	for _, it := range c.items {
		if it.rec.Conversation != "" {
			convs[it.rec.Conversation] = true
			c.sum.Turns++
		}
	}
	c.sum.Conversations = len(convs)
	if len(c.items) == 0 {
		return nil, noExamples(path, l.files, c.sum.Skipped)
	}
	return c, nil
}

// Fit turns the corpus into examples of at most maxLen tokens (0: no
// limit) and splits off a seeded eval set of evalFraction. An example that
// is too long is shortened, never cut in its answer: a chat loses its
// oldest turns first, then the last question's context is cut around the
// answer (SQuAD) or in its middle; a plain text is split into overlapping
// pieces (the overlap is context, not trained on twice). Examples whose
// answer alone does not fit are skipped with the reason; when nothing is
// left the error names the reason and the fix.
func (c *Corpus) Fit(ctx context.Context, maxLen int, evalFraction float64, seed uint64) (*Dataset, error) {
	sum := c.sum
	sum.Skipped = append([]Skip(nil), c.sum.Skipped...)
	sum.SeqLen = maxLen
	var all []Example
	tooLong := 0
	for i := range c.items {
		it := &c.items[i]
		if i%64 == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("data stage stopped while fitting %s: %w", it.rec.Where, stopCause(ctx.Err()))
		}
		if it.rec.Messages == nil {
			exs := c.fitText(it, maxLen)
			if len(exs) > 1 {
				sum.Split++
				sum.Pieces += len(exs)
			}
			all = append(all, exs...)
			continue
		}
		ex, shortened, reason := c.fitChat(it, maxLen)
		if reason != "" {
			tooLong++
			sum.Skipped = append(sum.Skipped, Skip{it.rec.Where, reason})
			continue
		}
		if shortened {
			sum.Shortened++
		}
		all = append(all, ex)
	}
	sum.SkipReasons = map[string]int{}
	for _, s := range sum.Skipped {
		r := s.Reason
		if i := strings.IndexAny(r, ":("); i > 0 {
			r = strings.TrimSpace(r[:i])
		}
		sum.SkipReasons[digits.ReplaceAllString(r, "N")]++
	}
	if len(all) == 0 {
		if tooLong > 0 {
			return nil, fmt.Errorf("%w in %s: all %d examples are longer than the sequence length of %d tokens even with their context shortened (the answers alone do not fit, and answers are never cut): raise --max-seq-len, up to the model's context length",
				ErrNoExamples, c.path, tooLong, maxLen)
		}
		return nil, noExamples(c.path, sum.Files, sum.Skipped)
	}
	ds := &Dataset{}
	nEval := int(evalFraction*float64(len(all)) + 0.5)
	if evalFraction > 0 && nEval == 0 {
		nEval = 1
	}
	if nEval >= len(all) {
		return nil, fmt.Errorf("eval fraction %g leaves no training examples out of %d", evalFraction, len(all))
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
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
	ds.Summary = sum
	return ds, nil
}

// fitText makes one example of a plain text, or overlapping pieces of at
// most maxLen tokens when it is longer.
func (c *Corpus) fitText(it *item, maxLen int) []Example {
	bos, eos := c.enc.BOS(), c.enc.EOS()
	whole := func(ids []int, first, last bool, overlap int) Example {
		ex := Example{Where: it.rec.Where}
		if first {
			ex.IDs = append(ex.IDs, bos)
		}
		ex.IDs = append(ex.IDs, ids...)
		if last {
			ex.IDs = append(ex.IDs, eos)
		}
		ex.Mask = make([]bool, len(ex.IDs))
		from := overlap
		if first {
			from = 1 // BOS is never predicted
		}
		for j := from; j < len(ex.Mask); j++ {
			ex.Mask[j] = true
		}
		return ex
	}
	t := it.text
	if maxLen <= 0 || len(t)+2 <= maxLen {
		return []Example{whole(t, true, true, 0)}
	}
	if maxLen < 8 {
		return []Example{whole(t[:maxLen-1], true, false, 0)}
	}
	overlap := maxLen / 8
	var out []Example
	for lo := 0; lo < len(t); {
		first := lo == 0
		room := maxLen
		if first {
			room--
		}
		hi := min(lo+room, len(t))
		last := hi == len(t)
		if last && hi-lo+1 > room {
			hi--
			last = false
		}
		ov := 0
		if !first {
			ov = overlap
		}
		ex := whole(t[lo:hi], first, last, ov)
		ex.Where = fmt.Sprintf("%s (piece %d)", it.rec.Where, len(out)+1)
		out = append(out, ex)
		if last {
			break
		}
		lo = hi - overlap
	}
	return out
}

// fitChat fits a conversation to maxLen tokens, shortening its prompt when
// needed. It returns the reason when it cannot.
func (c *Corpus) fitChat(it *item, maxLen int) (Example, bool, string) {
	mk := func(p, comp []int) Example {
		ex := Example{IDs: append(append([]int(nil), p...), comp...), Where: it.rec.Where}
		ex.Mask = make([]bool, len(ex.IDs))
		for j := len(p); j < len(ex.IDs); j++ {
			ex.Mask[j] = true
		}
		return ex
	}
	p, comp := it.prompt, it.completion
	if maxLen <= 0 || len(p)+len(comp) <= maxLen {
		return mk(p, comp), false, ""
	}
	if len(comp)+2 > maxLen {
		return Example{}, false, fmt.Sprintf("answer is %d tokens, longer than the sequence length %d: raise --max-seq-len (answers are never cut)", len(comp), maxLen)
	}
	msgs := append([]chat.Message(nil), it.rec.Messages...)
	render := func() ([]int, bool) {
		pr, _, err := c.tmpl.Render(msgs)
		if err != nil {
			return nil, false
		}
		return c.pe.encode(pr, true, false), true
	}
	// A chat's oldest turns go first (a leading system message stays).
	for len(p)+len(comp) > maxLen {
		first := 0
		if msgs[0].Role == "system" {
			first = 1
		}
		next := -1
		for j := first + 1; j < len(msgs)-1; j++ {
			if msgs[j].Role == "user" {
				next = j
				break
			}
		}
		if next < 0 {
			break
		}
		msgs = append(msgs[:first], msgs[next:]...)
		np, ok := render()
		if !ok {
			break
		}
		p = np
	}
	// Then the last question is shortened: the context around the answer
	// (SQuAD), or the middle of the message.
	last := len(msgs) - 2
	for last >= 0 && msgs[last].Role != "user" {
		last--
	}
	if len(p)+len(comp) > maxLen && last >= 0 {
		orig := msgs[last].Content
		question := ""
		body := orig
		if it.rec.Context != "" && strings.HasPrefix(orig, it.rec.Context) {
			body, question = it.rec.Context, orig[len(it.rec.Context):]
		}
		keep := len(body)
		for tries := 0; tries < 12 && len(p)+len(comp) > maxLen; tries++ {
			excess := len(p) + len(comp) - maxLen
			perTok := float64(len(orig)) / float64(max(len(p), 1))
			keep -= int(float64(excess)*perTok*1.1) + 4
			if keep < 0 {
				keep = 0 // last try: the question without its context
			}
			if question != "" {
				msgs[last].Content = window(body, it.rec.AnswerStart, len(it.rec.Messages[len(it.rec.Messages)-1].Content), keep) + question
			} else {
				msgs[last].Content = cutMiddle(body, keep)
			}
			orig = msgs[last].Content
			np, ok := render()
			if !ok {
				break
			}
			p = np
			if keep == 0 {
				break
			}
		}
	}
	if len(p)+len(comp) > maxLen {
		return Example{}, false, fmt.Sprintf("question and answer are %d tokens even with the context shortened, longer than the sequence length %d: raise --max-seq-len", len(p)+len(comp), maxLen)
	}
	return mk(p, comp), true, ""
}

// window keeps about keep bytes of s around [at, at+n) (the answer, kept
// whole when keep allows), cut at spaces, with "…" where text was left
// out. Unknown at (-1) keeps the start.
func window(s string, at, n, keep int) string {
	if keep >= len(s) {
		return s
	}
	if keep <= 0 {
		return ""
	}
	if at < 0 || at > len(s) {
		at, n = 0, 0
	}
	n = min(max(n, 0), len(s)-at)
	lo := at // not room for the whole answer: start at it
	if keep >= n {
		lo = at + n/2 - keep/2
		lo = min(max(lo, at+n-keep), at)
	}
	lo = min(max(lo, 0), len(s)-keep)
	hi := lo + keep
	// Cut at spaces and character boundaries, inwards.
	for lo > 0 && lo < hi && s[lo-1] != ' ' {
		lo++
	}
	for hi < len(s) && hi > lo && s[hi] != ' ' {
		hi--
	}
	for lo < hi && !utf8Start(s[lo]) {
		lo++
	}
	for hi < len(s) && hi > lo && !utf8Start(s[hi]) {
		hi--
	}
	out := strings.TrimSpace(s[lo:hi])
	if lo > 0 {
		out = "… " + out
	}
	if hi < len(s) {
		out += " …"
	}
	return out
}

// cutMiddle keeps about keep bytes of s: its start and its end.
func cutMiddle(s string, keep int) string {
	if keep >= len(s) {
		return s
	}
	keep = max(keep, 0)
	head := keep / 2
	tail := len(s) - (keep - head)
	for head > 0 && !utf8Start(s[head]) {
		head--
	}
	for tail < len(s) && !utf8Start(s[tail]) {
		tail++
	}
	return s[:head] + " … " + s[tail:]
}

// digits are replaced by N in the skip reasons counted together.
var digits = regexp.MustCompile(`[0-9]+`)

// idsKey identifies a token sequence for de-duplication.
func idsKey(ids []int) string {
	h := fnv.New128a()
	var b [8]byte
	for _, id := range ids {
		binary.LittleEndian.PutUint64(b[:], uint64(id))
		h.Write(b[:])
	}
	return "i\x00" + string(h.Sum(nil))
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
