package data

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"orchmind/engine/chat"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SupportedFormats describes the accepted inputs, for error messages.
const SupportedFormats = ".txt/.md (plain text), fortunes (%-separated), .jsonl/.json with {prompt,completion}, " +
	"Alpaca {instruction,input,output}, chat {messages:[{role,content}]}, SQuAD {data[].paragraphs[]}, Pirá [{question_en_origin,answer_en_origin}], " +
	"ChatGPT data export (conversations.json), .csv/.tsv (question/answer columns, else rows as text), .pdf (text layer), .docx, .odt, .html"

// Record is one loaded item before tokenisation: either plain text (Text,
// trained on entirely) or a conversation (Messages, only the last assistant
// turn is trained on).
type Record struct {
	Text     string
	Messages []chat.Message
	// Doc groups consecutive paragraphs of one text file for chunking.
	Doc int
	// Cont marks a piece of a paragraph too long to hand to the encoder in
	// one go; it continues the previous record of the same Doc.
	Cont bool
	// Context is the passage a reading-comprehension question (SQuAD) is
	// about; the last user message is Context + "\n\n" + question. When the
	// example is too long, the context is shortened around AnswerStart (the
	// answer's byte offset in Context, -1 when unknown).
	Context     string
	AnswerStart int
	// Conversation names the chat conversation a record came from (ChatGPT
	// exports), "" otherwise.
	Conversation string
	// Where is "file:line" or "file" for reporting.
	Where string
}

// Skip is an input item that was not used, with the reason.
type Skip struct {
	Where  string `json:"where"`
	Reason string `json:"reason"`
}

// LoadOptions controls loading.
type LoadOptions struct {
	// StopOnBadLine makes a malformed JSONL line an error instead of a skip.
	StopOnBadLine bool
	// QuestionColumn and AnswerColumn name the CSV/TSV columns holding the
	// question and the answer; empty means recognise them by name.
	QuestionColumn, AnswerColumn string
}

// pieceBytes bounds the text handed to the encoder at once: a paragraph
// longer than this is split (at a space) into several records.
const pieceBytes = 2048

// ErrNoExamples is wrapped by the error returned when the input holds no
// usable example.
var ErrNoExamples = errors.New("no training examples found")

// Load reads a file or a folder (recursively) and returns its records, the
// number of files read and the skipped items.
func Load(path string, opt LoadOptions) (recs []Record, files int, skips []Skip, err error) {
	return LoadContext(context.Background(), path, opt)
}

// LoadContext is Load that stops when ctx is done, with an error saying
// where it stopped. Text files are streamed, so a large one never sits in
// memory whole.
func LoadContext(ctx context.Context, path string, opt LoadOptions) (recs []Record, files int, skips []Skip, err error) {
	l := &loader{ctx: ctx, opt: opt}
	if err := l.load(path); err != nil {
		return nil, l.files, l.skips, err
	}
	if l.n == 0 {
		return nil, l.files, l.skips, noExamples(path, l.files, l.skips)
	}
	return l.recs, l.files, l.skips, nil
}

// noExamples explains why path gave nothing.
func noExamples(path string, files int, skips []Skip) error {
	if files == 0 {
		return fmt.Errorf("%w in %s: no file of a known kind; supported formats are %s", ErrNoExamples, path, SupportedFormats)
	}
	if len(skips) > 0 {
		return fmt.Errorf("%w in %s: %d items skipped, the first %s: %s", ErrNoExamples, path, len(skips), skips[0].Where, skips[0].Reason)
	}
	return fmt.Errorf("%w in %s: the files are empty; supported formats are %s", ErrNoExamples, path, SupportedFormats)
}

// loader accumulates records across files.
type loader struct {
	ctx   context.Context
	opt   LoadOptions
	recs  []Record
	skips []Skip
	files int
	doc   int
	// at and line are the file and line being read, for the message when
	// stopped (line 0: unknown).
	at   string
	line int
	// sink, when set, takes each record as it is read instead of recs.
	sink func(Record) error
	// n counts the records.
	n int
}

// add hands records to the sink, or keeps them.
func (l *loader) add(rs ...Record) error {
	for _, r := range rs {
		l.n++
		if l.sink == nil {
			l.recs = append(l.recs, r)
			continue
		}
		if err := l.sink(r); err != nil {
			return err
		}
	}
	return nil
}

// stopped returns a non-nil error once the context is done.
func (l *loader) stopped() error {
	if err := l.ctx.Err(); err != nil {
		at := l.at
		if l.line > 0 {
			at = fmt.Sprintf("%s:%d", l.at, l.line)
		}
		return fmt.Errorf("data stage stopped at %s after %d records: %w", at, l.n, stopCause(err))
	}
	return nil
}

// Stopped wraps the context's error when the data stage was interrupted.
type Stopped struct{ err error }

func (s Stopped) Error() string {
	if errors.Is(s.err, context.Canceled) {
		return "interrupted (Ctrl-C or SIGTERM)"
	}
	return s.err.Error()
}

func (s Stopped) Unwrap() error { return s.err }

func stopCause(err error) error { return Stopped{err} }

func (l *loader) skip(where, reason string) { l.skips = append(l.skips, Skip{where, reason}) }

func (l *loader) load(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("read training data: %w", err)
	}
	var paths []string
	if st.IsDir() {
		err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != path && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "~$") {
				return nil // hidden files, office lock files
			}
			if supportedExt(p) {
				paths = append(paths, p)
			} else {
				l.skip(p, "not a supported kind of file ("+kindHint(p)+")")
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read training data folder %s: %w", path, err)
		}
		sort.Strings(paths)
	} else {
		paths = []string{path}
	}
	for _, p := range paths {
		l.at, l.line = p, 0
		if err := l.stopped(); err != nil {
			return err
		}
		before, skipped := l.n, len(l.skips)
		if err := l.loadFile(p); err != nil {
			if l.ctx.Err() != nil {
				return l.stopped()
			}
			var fe fileErr
			if errors.As(err, &fe) && len(paths) > 1 {
				l.skip(p, fe.Error())
				continue
			}
			return err
		}
		l.files++
		if l.n == before && len(l.skips) == skipped && st.IsDir() {
			l.skip(p, "no text or examples in it")
		}
	}
	return nil
}

// fileErr is a problem with one file that, inside a folder, skips that file
// instead of stopping.
type fileErr struct{ msg string }

func (e fileErr) Error() string { return e.msg }

func supportedExt(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".txt", ".md", ".markdown", ".text", ".json", ".jsonl", ".csv", ".tsv", ".pdf", ".docx", ".odt", ".html", ".htm", ".xhtml":
		return true
	}
	return false
}

func kindHint(p string) string {
	e := strings.ToLower(filepath.Ext(p))
	switch e {
	case ".doc":
		return "old Word .doc: save it as .docx or .odt"
	case ".xls", ".xlsx", ".ods":
		return "spreadsheet: save it as .csv"
	case ".rtf":
		return "RTF: save it as .docx, .odt or .txt"
	case "":
		return "no extension"
	}
	return e
}

func (l *loader) loadFile(p string) error {
	ext := strings.ToLower(filepath.Ext(p))
	switch ext {
	case ".csv", ".tsv":
		return l.loadCSV(p)
	case ".pdf":
		return l.loadPDF(p)
	case ".docx", ".odt":
		return l.loadOffice(p)
	case ".html", ".htm", ".xhtml":
		return l.loadHTML(p)
	case ".json", ".jsonl":
	default:
		return l.loadText(p)
	}
	if ext == ".json" {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("read training data: %w", err)
		}
		head := make([]byte, 64<<10)
		n, _ := io.ReadFull(f, head)
		if looksLikeChatGPTExport(head[:n]) {
			defer f.Close()
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("read training data: %w", err)
			}
			recs, skips, err := loadChatGPT(p, f)
			l.skips = append(l.skips, skips...)
			if err != nil {
				return err
			}
			return l.add(recs...)
		}
		f.Close()
	}
	if ext == ".jsonl" {
		return l.loadJSONLFile(p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("read training data: %w", err)
	}
	var recs []Record
	var skips []Skip
	t := bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")))
	if len(t) > 0 && t[0] == '{' && bytes.Contains(t, []byte("\n{")) && !json.Valid(t) {
		recs, skips, err = loadJSONL(p, bytes.NewReader(t), l.opt) // JSONL saved as .json
	} else {
		recs, skips, err = loadJSON(p, t)
	}
	l.skips = append(l.skips, skips...)
	if err != nil {
		return err
	}
	return l.add(recs...)
}

func (l *loader) loadJSONLFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("read training data: %w", err)
	}
	defer f.Close()
	recs, skips, err := loadJSONLCtx(l.ctx, p, f, l.opt)
	l.skips = append(l.skips, skips...)
	if err != nil {
		return err
	}
	return l.add(recs...)
}

// loadText streams a text file: paragraphs (blank-line separated) or
// fortunes (%-separated) become records; a paragraph longer than
// pieceBytes is cut at spaces into continuation records.
func (l *loader) loadText(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("read training data: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(64 << 10)
	fortunes := isFortunes(head)
	l.doc++
	return l.textRecords(p, br, fortunes, !fortunes)
}

// textRecords reads r line by line (a line may be longer than memory
// should hold: it is consumed in buffer-sized parts) into records.
func (l *loader) textRecords(p string, r *bufio.Reader, fortunes, chunked bool) error {
	doc := 0
	if chunked {
		doc = l.doc
	}
	line, start := 0, 1
	var cur strings.Builder
	cont := false
	var sinkErr error
	emit := func(s string, more bool) {
		t := strings.TrimSpace(s)
		if t != "" && sinkErr == nil {
			sinkErr = l.add(Record{Text: t, Doc: doc, Cont: cont, Where: fmt.Sprintf("%s:%d", p, start)})
		}
		cont = more && t != ""
	}
	flush := func() {
		emit(cur.String(), false)
		cur.Reset()
		cont = false
	}
	first, inLine := true, false
	for {
		part, err := r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return fmt.Errorf("read %s: %w", p, err)
		}
		full := err != bufio.ErrBufferFull // part ends its line
		if first {
			part = bytes.TrimPrefix(part, []byte("\xef\xbb\xbf"))
			first = false
		}
		s := string(part)
		if full {
			s = strings.TrimRight(s, "\r\n")
		}
		if !inLine && len(part) > 0 {
			line++
			l.line = line
			if line%256 == 0 {
				l.line = line
				if err := l.stopped(); err != nil {
					return err
				}
			}
			sep := strings.TrimSpace(s) == ""
			if fortunes {
				sep = strings.TrimSpace(s) == "%"
			}
			if full && sep {
				flush()
				start = line + 1
				if sinkErr != nil {
					return sinkErr
				}
				if err == io.EOF {
					break
				}
				continue
			}
		}
		cur.WriteString(s)
		if full && err != io.EOF {
			cur.WriteString("\n")
		}
		for cur.Len() > pieceBytes {
			l.line = line
			if err := l.stopped(); err != nil {
				return err
			}
			txt := cur.String()
			cut := strings.LastIndexAny(txt[:pieceBytes], " \t\n")
			if cut < pieceBytes/2 {
				cut = pieceBytes
				for cut > 0 && !utf8Start(txt[cut]) {
					cut--
				}
			}
			emit(txt[:cut], true)
			rest := txt[cut:]
			cur.Reset()
			cur.WriteString(rest)
		}
		inLine = !full
		if sinkErr != nil {
			return sinkErr
		}
		if err == io.EOF {
			break
		}
	}
	flush()
	return sinkErr
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func isFortunes(b []byte) bool {
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "%" {
			n++
		}
	}
	return n >= 2
}

// addText splits extracted document text (PDF, DOCX, ODT, HTML) into
// paragraph records of one document.
func (l *loader) addText(p, text string) error {
	l.doc++
	return l.textRecords(p, bufio.NewReaderSize(strings.NewReader(text), 64<<10), false, true)
}

func loadJSONL(p string, r io.Reader, opt LoadOptions) ([]Record, []Skip, error) {
	return loadJSONLCtx(context.Background(), p, r, opt)
}

func loadJSONLCtx(ctx context.Context, p string, r io.Reader, opt LoadOptions) ([]Record, []Skip, error) {
	var recs []Record
	var skips []Skip
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		if line%256 == 0 && ctx.Err() != nil {
			return nil, nil, fmt.Errorf("data stage stopped at %s:%d: %w", p, line, stopCause(ctx.Err()))
		}
		t := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			t = bytes.TrimPrefix(t, []byte("\xef\xbb\xbf"))
		}
		if len(t) == 0 {
			continue
		}
		where := fmt.Sprintf("%s:%d", p, line)
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(t, &obj); err != nil {
			if opt.StopOnBadLine {
				return nil, nil, fmt.Errorf("%s: line is not a JSON object: %w", where, err)
			}
			skips = append(skips, Skip{where, "not a JSON object: " + err.Error()})
			continue
		}
		rs, err := fromObject(obj, where)
		if err != nil {
			if opt.StopOnBadLine {
				return nil, nil, err
			}
			skips = append(skips, Skip{where, err.Error()})
			continue
		}
		recs = append(recs, rs...)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", p, err)
	}
	return recs, skips, nil
}

func loadJSON(p string, b []byte) ([]Record, []Skip, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, nil, fmt.Errorf("%s: not valid JSON: %w", p, err)
	}
	var items []json.RawMessage
	switch v.(type) {
	case []any:
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
	case map[string]any:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		if _, ok := obj["data"]; ok {
			return loadSQuAD(p, obj["data"])
		}
		rs, err := fromObject(obj, p)
		return rs, nil, err
	default:
		return nil, nil, fmt.Errorf("%s: top-level JSON must be an object or an array", p)
	}
	var recs []Record
	var skips []Skip
	for i, it := range items {
		where := fmt.Sprintf("%s[%d]", p, i)
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(it, &obj); err != nil {
			skips = append(skips, Skip{where, "not a JSON object"})
			continue
		}
		rs, err := fromObject(obj, where)
		if err != nil {
			var e emptyErr
			if errors.As(err, &e) {
				skips = append(skips, Skip{where, err.Error()})
				continue
			}
			return nil, nil, err
		}
		recs = append(recs, rs...)
	}
	return recs, skips, nil
}

type emptyErr struct{ msg string }

func (e emptyErr) Error() string { return e.msg }

func str(obj map[string]json.RawMessage, k string) (string, bool) {
	raw, ok := obj[k]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func qa(q, a, where string) ([]Record, error) {
	if strings.TrimSpace(a) == "" {
		return nil, emptyErr{"empty answer"}
	}
	if strings.TrimSpace(q) == "" {
		return nil, emptyErr{"empty prompt"}
	}
	return []Record{{Messages: []chat.Message{{Role: "user", Content: q}, {Role: "assistant", Content: a}}, Where: where}}, nil
}

// fromObject recognises one JSON object's shape.
func fromObject(obj map[string]json.RawMessage, where string) ([]Record, error) {
	if p, ok := str(obj, "prompt"); ok {
		c, _ := str(obj, "completion")
		return qa(p, c, where)
	}
	if ins, ok := str(obj, "instruction"); ok {
		if raw, ok := obj["instances"]; ok { // self-instruct seed tasks
			var inst []struct{ Input, Output string }
			if err := json.Unmarshal(raw, &inst); err != nil {
				return nil, fmt.Errorf("%s: instances: %w", where, err)
			}
			var out []Record
			for _, in := range inst {
				r, err := qa(joinInput(ins, in.Input), in.Output, where)
				if err == nil {
					out = append(out, r...)
				}
			}
			if len(out) == 0 {
				return nil, emptyErr{"no instance with an output"}
			}
			return out, nil
		}
		in, _ := str(obj, "input")
		o, _ := str(obj, "output")
		return qa(joinInput(ins, in), o, where)
	}
	if raw, ok := obj["messages"]; ok {
		var msgs []chat.Message
		if err := json.Unmarshal(raw, &msgs); err != nil {
			return nil, fmt.Errorf("%s: messages must be [{role, content}]: %w", where, err)
		}
		for _, m := range msgs {
			switch m.Role {
			case "system", "user", "assistant":
			default:
				return nil, fmt.Errorf("%s: unknown message role %q (want system, user or assistant)", where, m.Role)
			}
		}
		if len(msgs) == 0 || msgs[len(msgs)-1].Role != "assistant" || strings.TrimSpace(msgs[len(msgs)-1].Content) == "" {
			return nil, emptyErr{"conversation does not end with a non-empty assistant message"}
		}
		return []Record{{Messages: msgs, Where: where}}, nil
	}
	if _, ok := obj["question_en_origin"]; ok { // Pirá (some fields are null)
		q, _ := str(obj, "question_en_origin")
		a, _ := str(obj, "answer_en_origin")
		return qa(q, a, where)
	}
	if t, ok := str(obj, "text"); ok {
		if strings.TrimSpace(t) == "" {
			return nil, emptyErr{"empty text"}
		}
		return []Record{{Text: t, Where: where}}, nil
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return nil, fmt.Errorf("%s: unknown JSON shape with keys [%s]: want {prompt,completion}, {instruction,input,output}, {messages}, {text} or SQuAD/Pirá", where, strings.Join(keys, ", "))
}

func joinInput(ins, in string) string {
	if strings.TrimSpace(in) == "" {
		return ins
	}
	return ins + "\n\n" + in
}

func loadSQuAD(p string, raw json.RawMessage) ([]Record, []Skip, error) {
	var data []struct {
		Paragraphs []struct {
			Context string `json:"context"`
			QAs     []struct {
				Question string `json:"question"`
				Answers  []struct {
					Text  string `json:"text"`
					Start *int   `json:"answer_start"`
				} `json:"answers"`
			} `json:"qas"`
		} `json:"paragraphs"`
	}
	if err := json.Unmarshal(raw, &data); err != nil {
		return nil, nil, fmt.Errorf("%s: SQuAD data[] shape: %w", p, err)
	}
	var recs []Record
	var skips []Skip
	for i, d := range data {
		for j, par := range d.Paragraphs {
			for k, q := range par.QAs {
				where := fmt.Sprintf("%s:data[%d].paragraphs[%d].qas[%d]", p, i, j, k)
				if len(q.Answers) == 0 || strings.TrimSpace(q.Answers[0].Text) == "" {
					skips = append(skips, Skip{where, "no answer"})
					continue
				}
				ctx := strings.TrimSpace(par.Context)
				ans := q.Answers[0]
				at := -1
				if ans.Start != nil {
					// answer_start counts characters of the untrimmed context.
					lead := len(par.Context) - len(strings.TrimLeft(par.Context, " \t\r\n"))
					if b := runeOffset(par.Context, *ans.Start) - lead; b >= 0 && strings.HasPrefix(ctx[b:], ans.Text) {
						at = b
					}
				}
				if at < 0 {
					at = strings.Index(ctx, ans.Text)
				}
				recs = append(recs, Record{Messages: []chat.Message{
					{Role: "user", Content: ctx + "\n\n" + q.Question},
					{Role: "assistant", Content: ans.Text}}, Context: ctx, AnswerStart: at, Where: where})
			}
		}
	}
	return recs, skips, nil
}

// runeOffset is the byte offset of the n-th character of s (-1 past the end).
func runeOffset(s string, n int) int {
	if n < 0 {
		return -1
	}
	i := 0
	for b := range s {
		if i == n {
			return b
		}
		i++
	}
	if i == n {
		return len(s)
	}
	return -1
}
