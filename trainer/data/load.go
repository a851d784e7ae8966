package data

import (
	"bufio"
	"bytes"
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
	"ChatGPT data export (conversations.json)"

// Record is one loaded item before tokenisation: either plain text (Text,
// trained on entirely) or a conversation (Messages, only the last assistant
// turn is trained on).
type Record struct {
	Text     string
	Messages []chat.Message
	// Doc groups consecutive paragraphs of one text file for chunking.
	Doc int
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
}

// Load reads a file or a folder (recursively) and returns its records, the
// number of files read and the skipped items.
func Load(path string, opt LoadOptions) (recs []Record, files int, skips []Skip, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("read training data: %w", err)
	}
	var paths []string
	if st.IsDir() {
		err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && supportedExt(p) {
				paths = append(paths, p)
			}
			return nil
		})
		if err != nil {
			return nil, 0, nil, fmt.Errorf("read training data folder %s: %w", path, err)
		}
		sort.Strings(paths)
	} else {
		paths = []string{path}
	}
	doc := 0
	for _, p := range paths {
		r, s, err := loadFile(p, opt, &doc)
		if err != nil {
			return nil, files, skips, err
		}
		files++
		recs = append(recs, r...)
		skips = append(skips, s...)
	}
	if len(recs) == 0 {
		return nil, files, skips, fmt.Errorf("no training examples found in %s: supported formats are %s", path, SupportedFormats)
	}
	return recs, files, skips, nil
}

func supportedExt(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".txt", ".md", ".json", ".jsonl":
		return true
	}
	return false
}

func loadFile(p string, opt LoadOptions, doc *int) ([]Record, []Skip, error) {
	if strings.ToLower(filepath.Ext(p)) == ".json" {
		f, err := os.Open(p)
		if err != nil {
			return nil, nil, fmt.Errorf("read training data: %w", err)
		}
		head := make([]byte, 64<<10)
		n, _ := io.ReadFull(f, head)
		if looksLikeChatGPTExport(head[:n]) {
			defer f.Close()
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return nil, nil, fmt.Errorf("read training data: %w", err)
			}
			return loadChatGPT(p, f)
		}
		f.Close()
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, nil, fmt.Errorf("read training data: %w", err)
	}
	switch strings.ToLower(filepath.Ext(p)) {
	case ".jsonl":
		return loadJSONL(p, b, opt)
	case ".json":
		t := bytes.TrimSpace(b)
		if len(t) > 0 && t[0] == '{' && bytes.Contains(t, []byte("\n{")) && !json.Valid(t) {
			return loadJSONL(p, b, opt) // JSONL saved as .json
		}
		return loadJSON(p, t)
	default:
		*doc++
		if isFortunes(b) {
			return splitFortunes(p, b), nil, nil
		}
		return splitParagraphs(p, b, *doc), nil, nil
	}
}

func isFortunes(b []byte) bool {
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "%" {
			n++
		}
	}
	return n >= 2
}

func splitFortunes(p string, b []byte) []Record {
	var out []Record
	line, start := 1, 1
	var cur []string
	flush := func() {
		t := strings.TrimSpace(strings.Join(cur, "\n"))
		if t != "" {
			out = append(out, Record{Text: t, Where: fmt.Sprintf("%s:%d", p, start)})
		}
		cur = nil
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "%" {
			flush()
			start = line + 1
		} else {
			cur = append(cur, l)
		}
		line++
	}
	flush()
	return out
}

func splitParagraphs(p string, b []byte, doc int) []Record {
	var out []Record
	line, start := 1, 1
	var cur []string
	flush := func() {
		t := strings.TrimSpace(strings.Join(cur, "\n"))
		if t != "" {
			out = append(out, Record{Text: t, Doc: doc, Where: fmt.Sprintf("%s:%d", p, start)})
		}
		cur = nil
	}
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n") {
		if strings.TrimSpace(l) == "" {
			flush()
			start = line + 1
		} else {
			cur = append(cur, l)
		}
		line++
	}
	flush()
	return out
}

func loadJSONL(p string, b []byte, opt LoadOptions) ([]Record, []Skip, error) {
	var recs []Record
	var skips []Skip
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		t := bytes.TrimSpace(sc.Bytes())
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
					Text string `json:"text"`
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
				recs = append(recs, Record{Messages: []chat.Message{
					{Role: "user", Content: strings.TrimSpace(par.Context) + "\n\n" + q.Question},
					{Role: "assistant", Content: q.Answers[0].Text}}, Where: where})
			}
		}
	}
	return recs, skips, nil
}
