package data

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"orchmind/internal/testshared"
)

// byteEnc is a test tokenizer: one token per byte, BOS=1, EOS=2.
type byteEnc struct{}

func (byteEnc) Encode(s string, bos, eos bool) []int {
	var out []int
	if bos {
		out = append(out, 1)
	}
	for _, c := range []byte(s) {
		out = append(out, int(c)+3)
	}
	if eos {
		out = append(out, 2)
	}
	return out
}
func (byteEnc) BOS() int { return 1 }
func (byteEnc) EOS() int { return 2 }

func write(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func decodeMasked(ex Example) string {
	var b []byte
	for i, id := range ex.IDs {
		if ex.Mask[i] && id >= 3 {
			b = append(b, byte(id-3))
		}
	}
	return string(b)
}

func TestFormats(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, body string
		n          int
		answer     string // masked text of the first example
	}{
		{"pc.jsonl", `{"prompt":"Capital of France?","completion":"Paris"}` + "\n\n" + `{"prompt":"2+2?","completion":"4"}`, 2, "Paris"},
		{"alpaca.json", `[{"instruction":"Translate","input":"gato","output":"cat"},{"instruction":"x","input":"","output":""}]`, 1, "cat"},
		{"chat.jsonl", `{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}`, 1, "hello"},
		{"squad.json", `{"version":"1","data":[{"paragraphs":[{"context":"The sky is blue.","qas":[{"question":"Sky colour?","answers":[{"text":"blue"}]},{"question":"none","answers":[]}]}]}]}`, 1, "blue"},
		{"pira.json", `[{"question_en_origin":"Most common unit?","answer_en_origin":"FPSO"},{"question_en_origin":"q","answer_en_origin":""}]`, 1, "FPSO"},
		{"notes.md", "# Title\n\nFirst paragraph.\n\n\nSecond paragraph.\n", 1, "# Title\n\nFirst paragraph.\n\nSecond paragraph."},
		{"fortunes.txt", "one fortune\n%\ntwo\nlines\n%\nthree\n", 3, "one fortune"},
	}
	for _, c := range cases {
		p := write(t, dir, c.name, c.body)
		ds, err := Build(context.Background(), p, byteEnc{}, Options{MaxSeqLen: 512})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(ds.Train) != c.n {
			t.Fatalf("%s: %d examples, want %d (%+v)", c.name, len(ds.Train), c.n, ds.Summary)
		}
		got := decodeMasked(ds.Train[0])
		if strings.HasSuffix(c.name, ".json") || strings.HasSuffix(c.name, ".jsonl") {
			// Instruction data: only the answer is in the loss.
			if got != c.answer {
				t.Errorf("%s: masked text %q, want %q", c.name, got, c.answer)
			}
		} else if got != c.answer {
			t.Errorf("%s: text %q, want %q", c.name, got, c.answer)
		}
		if ds.Train[0].IDs[0] != 1 || ds.Train[0].IDs[len(ds.Train[0].IDs)-1] != 2 {
			t.Errorf("%s: missing BOS/EOS", c.name)
		}
	}
}

func TestParagraphChunkBudget(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 10 {
		b.WriteString("abcdefghi" + string(rune('0'+i)) + "\n\n")
	}
	p := write(t, dir, "a.txt", b.String())
	ds, err := Build(context.Background(), p, byteEnc{}, Options{ChunkTokens: 30})
	if err != nil {
		t.Fatal(err)
	}
	// 10-token paragraphs + 2 separator tokens: two per 30-token chunk.
	if len(ds.Train) != 5 {
		t.Errorf("%d chunks, want 5", len(ds.Train))
	}
}

func TestDedupTruncateSplitSummary(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 40 {
		b.WriteString(`{"prompt":"q` + string(rune('A'+i%26)) + string(rune('a'+i/26)) + `","completion":"answer"}` + "\n")
	}
	b.WriteString(`{"prompt":"qAa ","completion":"answer"}` + "\n") // duplicate of "qAa" after whitespace normalisation
	b.WriteString(`{"prompt":"  qAa","completion":"answer"}` + "\n")
	b.WriteString("not json\n")
	b.WriteString(`{"foo":1,"bar":2}` + "\n")
	b.WriteString(`{"prompt":"` + strings.Repeat("x", 100) + `","completion":"y"}` + "\n")
	p := write(t, dir, "d.jsonl", b.String())
	opt := Options{MaxSeqLen: 50, EvalFraction: 0.25, Seed: 7}
	ds, err := Build(context.Background(), p, byteEnc{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	s := ds.Summary
	if s.Duplicates != 2 {
		t.Errorf("duplicates %d, want 2", s.Duplicates)
	}
	if s.Shortened != 1 {
		t.Errorf("shortened %d, want 1", s.Shortened)
	}
	// The long example's prompt is shortened, its answer kept.
	if s.Examples != 41 || s.Eval != 10 || s.Train != 31 {
		t.Errorf("summary %+v", s)
	}
	var reasons []string
	for _, sk := range s.Skipped {
		reasons = append(reasons, sk.Where+" "+sk.Reason)
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{"d.jsonl:43 not a JSON object", "d.jsonl:44", "keys [bar, foo]"} {
		if !strings.Contains(all, want) {
			t.Errorf("skips lack %q:\n%s", want, all)
		}
	}
	for _, ex := range append(ds.Train, ds.Eval...) {
		if len(ex.IDs) > 50 || len(ex.IDs) != len(ex.Mask) {
			t.Fatalf("bad example %+v", ex)
		}
	}
	ds2, err := Build(context.Background(), p, byteEnc{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ds.Eval {
		if ds.Eval[i].Where != ds2.Eval[i].Where {
			t.Fatal("eval split not reproducible with the same seed")
		}
	}
	opt.Load.StopOnBadLine = true
	if _, err := Build(context.Background(), p, byteEnc{}, opt); err == nil || !strings.Contains(err.Error(), "d.jsonl:43") {
		t.Errorf("stop on bad line: %v", err)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	empty := write(t, dir, "empty/x.txt", "\n\n")
	if _, err := Build(context.Background(), filepath.Dir(empty), byteEnc{}, Options{}); err == nil || !strings.Contains(err.Error(), "no training examples found") || !strings.Contains(err.Error(), "no text") {
		t.Errorf("empty: %v", err)
	}
	if _, err := Build(context.Background(), filepath.Join(dir, "missing"), byteEnc{}, Options{}); err == nil {
		t.Error("missing path accepted")
	}
	odd := write(t, dir, "odd.json", `{"question":"a","reply":"b"}`)
	if _, err := Build(context.Background(), odd, byteEnc{}, Options{}); err == nil || !strings.Contains(err.Error(), "keys [question, reply]") {
		t.Errorf("unknown shape: %v", err)
	}
	bad := write(t, dir, "bad.json", `{"prompt":`)
	if _, err := Build(context.Background(), bad, byteEnc{}, Options{}); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("bad json: %v", err)
	}
}

func TestPack(t *testing.T) {
	exs := []Example{
		{IDs: []int{1, 5, 6}, Mask: []bool{false, true, true}},
		{IDs: []int{1, 7}, Mask: []bool{false, true}},
		{IDs: []int{1, 8, 9, 10}, Mask: []bool{false, true, true, true}},
	}
	rows, err := Pack(exs, 6, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Len != 5 || len(rows[0].IDs) != 6 || rows[0].Mask[5] || rows[0].IDs[5] != 0 {
		t.Fatalf("rows %+v", rows)
	}
	if rows[0].Starts[0] != 0 || rows[0].Starts[1] != 3 || rows[1].Starts[0] != 0 {
		t.Errorf("starts %+v", rows)
	}
	if _, err := Pack(exs, 3, 0); err == nil {
		t.Error("over-long example accepted")
	}
}

func TestSharedSets(t *testing.T) {
	for _, c := range []struct {
		rel string
		min int
	}{
		{"data/faquad/train.json", 500},
		{"data/pira/Pira-C-Total.json", 500},
		{"data/fortunes-br/brasil.txt", 100},
		{"data/alpaca_seed/seed_tasks.jsonl", 100},
	} {
		p := testshared.Path(t, c.rel)
		ds, err := Build(context.Background(), p, byteEnc{}, Options{MaxSeqLen: 4096, EvalFraction: 0.1, Seed: 1})
		if err != nil {
			t.Fatalf("%s: %v", c.rel, err)
		}
		t.Logf("%s: %+v skipped=%d", c.rel, ds.Summary.Examples, len(ds.Summary.Skipped))
		if ds.Summary.Examples < c.min {
			t.Errorf("%s: only %d examples", c.rel, ds.Summary.Examples)
		}
	}
}

// TestSQuADContextAroundAnswer: a reading-comprehension example longer than
// the sequence keeps the part of its passage around the answer and the
// whole answer; a long chat loses its oldest turns first.
func TestSQuADContextAroundAnswer(t *testing.T) {
	dir := t.TempDir()
	before := strings.Repeat("filler words before the fact. ", 20)
	after := strings.Repeat("more filler after the fact. ", 20)
	ctx := before + "The treasure is buried under the old oak tree." + after
	at := len([]rune(before))
	squad := `{"data":[{"paragraphs":[{"context":` + jsonString(ctx) + `,"qas":[{"question":"Where is the treasure?","answers":[{"text":"under the old oak tree","answer_start":` +
		itoa(at+strings.Index("The treasure is buried under the old oak tree.", "under")) + `}]}]}]}]}`
	p := write(t, dir, "s.json", squad)
	ds, err := Build(context.Background(), p, byteEnc{}, Options{MaxSeqLen: 200})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Summary.Shortened != 1 || len(ds.Train) != 1 {
		t.Fatalf("summary %+v", ds.Summary)
	}
	ex := ds.Train[0]
	var prompt []byte
	for i, id := range ex.IDs {
		if !ex.Mask[i] && id >= 3 {
			prompt = append(prompt, byte(id-3))
		}
	}
	if len(ex.IDs) > 200 || decodeMasked(ex) != "under the old oak tree" ||
		!strings.Contains(string(prompt), "buried under the old oak tree") || !strings.HasPrefix(string(prompt), "… ") ||
		!strings.HasSuffix(string(prompt), "…\n\nWhere is the treasure?\n") {
		t.Errorf("%d tokens, prompt %q, answer %q", len(ex.IDs), prompt, decodeMasked(ex))
	}
	chat := `{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"` + strings.Repeat("old question ", 10) + `"},{"role":"assistant","content":"` +
		strings.Repeat("old answer ", 10) + `"},{"role":"user","content":"new question"},{"role":"assistant","content":"new answer"}]}`
	p = write(t, dir, "c.jsonl", chat+"\n")
	ds, err = Build(context.Background(), p, byteEnc{}, Options{MaxSeqLen: 60})
	if err != nil {
		t.Fatal(err)
	}
	ex = ds.Train[0]
	var all []byte
	for _, id := range ex.IDs {
		if id >= 3 {
			all = append(all, byte(id-3))
		}
	}
	if ds.Summary.Shortened != 1 || string(all) != "be brief\nnew question\nnew answer" {
		t.Errorf("chat shortened to %q (%+v)", all, ds.Summary)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func itoa(v int) string { return strconv.Itoa(v) }

// TestSkipReasonsGrouped: skip reasons that differ only in numbers are
// counted together.
func TestSkipReasonsGrouped(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "a.jsonl", `{"prompt":"q1","completion":"`+strings.Repeat("x", 40)+`"}`+"\n"+
		`{"prompt":"q2","completion":"`+strings.Repeat("y", 50)+`"}`+"\n"+`{"prompt":"q3","completion":"ok"}`+"\n")
	ds, err := Build(context.Background(), p, byteEnc{}, Options{MaxSeqLen: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Summary.SkipReasons) != 1 || ds.Summary.SkipReasons["answer is N tokens, longer than the sequence length N"] != 2 {
		t.Errorf("reasons %v", ds.Summary.SkipReasons)
	}
}
