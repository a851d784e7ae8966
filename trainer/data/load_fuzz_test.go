package data

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/engine/chat"
	"orchmind/internal/fuzzcheck"
	"orchmind/internal/testshared"
)

// sharedSeed returns up to limit bytes of a file of the shared folder, or
// nil when it is absent (the fuzz targets then use only their own seeds).
func sharedSeed(rel string) []byte {
	d := testshared.Dir()
	if d == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(d, rel))
	if err != nil {
		return nil
	}
	return b
}

// firstLines returns the first n lines of b.
func firstLines(b []byte, n int) []byte {
	var out []byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for i := 0; i < n && sc.Scan(); i++ {
		out = append(append(out, sc.Bytes()...), '\n')
	}
	return out
}

// fuzzLoad writes data as a file called name, loads it and builds a dataset
// from it, checking what every loader promises: no panic; errors, skip
// reasons and places on one line; each record is non-empty text or a
// conversation ending with a non-empty assistant turn; every built example
// has a mask as long as its tokens, within MaxSeqLen, with something to
// learn.
func fuzzLoad(t *testing.T, dir, name string, data []byte) {
	fuzzcheck.Reset(t, dir)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	oneLine := func(what, s string) {
		if strings.ContainsAny(s, "\r\n") {
			t.Fatalf("%s is not one line: %q", what, s)
		}
	}
	for _, stop := range []bool{false, true} {
		recs, files, skips, err := Load(p, LoadOptions{StopOnBadLine: stop})
		if err != nil {
			oneLine("error", err.Error())
			continue
		}
		if files != 1 || len(recs) == 0 {
			t.Fatalf("Load succeeded with %d files and %d records", files, len(recs))
		}
		for _, s := range skips {
			oneLine("skip place", s.Where)
			oneLine("skip reason", s.Reason)
		}
		for _, r := range recs {
			if !strings.HasPrefix(r.Where, p) {
				t.Fatalf("record place %q does not name the file", r.Where)
			}
			switch {
			case r.Messages == nil:
				if strings.TrimSpace(r.Text) == "" {
					t.Fatalf("%s: empty text record", r.Where)
				}
			default:
				last := r.Messages[len(r.Messages)-1]
				if last.Role != "assistant" || strings.TrimSpace(last.Content) == "" {
					t.Fatalf("%s: conversation ends with %q turn %q", r.Where, last.Role, last.Content)
				}
				for _, m := range r.Messages {
					switch m.Role {
					case "system", "user", "assistant":
					default:
						t.Fatalf("%s: role %q", r.Where, m.Role)
					}
				}
			}
		}
	}
	for _, tpl := range []string{"plain", "chatml"} {
		tp, err := chat.TemplateByName(tpl)
		if err != nil {
			t.Fatal(err)
		}
		const maxLen = 48
		ds, err := Build(context.Background(), p, byteEnc{}, Options{Template: tp, MaxSeqLen: maxLen, EvalFraction: 0.25, Seed: 1})
		if err != nil {
			oneLine("error", err.Error())
			continue
		}
		if len(ds.Train) == 0 || ds.Summary.Examples != len(ds.Train)+len(ds.Eval) {
			t.Fatalf("%d train, %d eval, summary says %d examples", len(ds.Train), len(ds.Eval), ds.Summary.Examples)
		}
		for _, ex := range append(append([]Example(nil), ds.Train...), ds.Eval...) {
			if len(ex.IDs) != len(ex.Mask) || len(ex.IDs) > maxLen || countTrue(ex.Mask) == 0 {
				t.Fatalf("%s: %d ids, %d mask (%d true), max %d", ex.Where, len(ex.IDs), len(ex.Mask), countTrue(ex.Mask), maxLen)
			}
		}
	}
}

// FuzzLoadText fuzzes plain text and fortunes files (.txt, .md).
func FuzzLoadText(f *testing.F) {
	f.Add([]byte("First paragraph.\nStill first.\n\nSecond paragraph.\r\n\r\nThird.\n"), false)
	f.Add([]byte("# Title\n\nSome *markdown* text.\n"), true)
	f.Add([]byte("one fortune\n%\ntwo\n  fortune\n%\n%\nthree\n"), false)
	if b := sharedSeed("data/fortunes-br/brasil.txt"); b != nil {
		f.Add(firstLines(b, 40), false)
	}
	dir := fuzzcheck.Dir(f)
	f.Fuzz(func(t *testing.T, data []byte, md bool) {
		name := "in.txt"
		if md {
			name = "in.md"
		}
		fuzzLoad(t, dir, name, data)
	})
}

// FuzzLoadJSONL fuzzes .jsonl files: {prompt,completion}, Alpaca,
// self-instruct seed tasks, chat messages, {text}, Pirá lines.
func FuzzLoadJSONL(f *testing.F) {
	f.Add([]byte(`{"prompt": "2+2?", "completion": "4"}
{"instruction": "Translate", "input": "bom dia", "output": "good morning"}
{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
{"text": "a plain text line"}
{"question_en_origin": "What is FPSO?", "answer_en_origin": null}
not json
{"unknown": 1}
`))
	if b := sharedSeed("data/alpaca_seed/seed_tasks.jsonl"); b != nil {
		f.Add(firstLines(b, 4))
	}
	dir := fuzzcheck.Dir(f)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzLoad(t, dir, "in.jsonl", data) })
}

// FuzzLoadJSON fuzzes .json files: arrays of the JSONL shapes, one object,
// SQuAD (FaQuAD) and Pirá files, JSONL saved as .json.
func FuzzLoadJSON(f *testing.F) {
	f.Add([]byte(`[{"prompt": "2+2?", "completion": "4"}, {"instruction": "Say hi", "output": "hi"}, 3, {"text": " "}]`))
	f.Add([]byte(`{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}`))
	f.Add([]byte(`{"data": [{"paragraphs": [{"context": "Brasília é a capital.", "qas": [{"question": "Qual a capital?", "answers": [{"text": "Brasília"}]}, {"question": "x", "answers": []}]}]}]}`))
	f.Add([]byte("{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"c\", \"completion\": \"d\"}\n"))
	// Real files, cut to a few items so each run stays fast.
	if b := sharedSeed("data/faquad/train.json"); b != nil {
		var sq struct {
			Data []struct {
				Paragraphs []json.RawMessage `json:"paragraphs"`
			} `json:"data"`
		}
		if json.Unmarshal(b, &sq) == nil && len(sq.Data) > 0 && len(sq.Data[0].Paragraphs) > 0 {
			sq.Data = sq.Data[:1]
			sq.Data[0].Paragraphs = sq.Data[0].Paragraphs[:1]
			if s, err := json.Marshal(sq); err == nil {
				f.Add(s)
			}
		}
	}
	if b := sharedSeed("data/pira/Pira-C-Total.json"); b != nil {
		var items []json.RawMessage
		if json.Unmarshal(b, &items) == nil && len(items) > 3 {
			if s, err := json.Marshal(items[:3]); err == nil {
				f.Add(s)
			}
		}
	}
	dir := fuzzcheck.Dir(f)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzLoad(t, dir, "in.json", data) })
}

// FuzzLoadChatGPT fuzzes ChatGPT data exports (conversations.json): the
// streamed reader, branch following (cycles, missing parents) and parts.
func FuzzLoadChatGPT(f *testing.F) {
	f.Add([]byte(gptExport))
	f.Add([]byte(`[{"title": "loop", "mapping": {"a": {"message": {"author": {"role": "user"}, "content": {"content_type": "text", "parts": ["q"]}}, "parent": "b", "children": ["b"]},
 "b": {"message": {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["r"]}}, "parent": "a", "children": ["a"]}}}]`))
	dir := fuzzcheck.Dir(f)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzLoad(t, dir, "conversations.json", data) })
}
