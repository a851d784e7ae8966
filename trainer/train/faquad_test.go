package train

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tokenizer"
	"orchmind/internal/testshared"
	"orchmind/trainer/data"
	"orchmind/trainer/hparams"
)

// TestFAQuADKeepsAnswers: FAQuAD's contexts are far longer than
// stories260K's 512-token context; with the default settings at least 95%
// of the questions are kept with their whole answer (the context is cut
// around it), and with a sequence too short for any answer the error names
// the reason and the fix.
func TestFAQuADKeepsAnswers(t *testing.T) {
	fq := testshared.Path(t, "data/faquad/train.json")
	mp := testshared.Path(t, "models/stories260K/stories260K.bin")
	m, err := model.LoadLlama2C(mp, quant.F32)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadLlama2C(filepath.Join(filepath.Dir(mp), "tok512.bin"), m.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Data []struct {
			Paragraphs []struct {
				QAs []struct {
					Answers []struct{ Text string } `json:"answers"`
				} `json:"qas"`
			} `json:"paragraphs"`
		} `json:"data"`
	}
	b, err := os.ReadFile(fq)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	questions := 0
	for _, d := range raw.Data {
		for _, p := range d.Paragraphs {
			questions += len(p.QAs)
		}
	}
	enc := docEnd{tok}
	cfg := &Config{Model: m, Tokenizer: enc, Data: fq, Seed: 1}
	ds, plan, err := Prepare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := ds.Summary
	kept := s.Examples + s.Duplicates
	t.Logf("%d questions: %d examples kept (%d shortened, %d duplicates, %d skipped: %v) at %d tokens; plan: %s",
		questions, s.Examples, s.Shortened, s.Duplicates, len(s.Skipped), s.SkipReasons, plan.MaxSeqLen, plan.Why[hparams.FieldMaxSeqLen])
	if float64(kept) < 0.95*float64(questions) {
		t.Errorf("kept %d of %d questions, want at least 95%%", kept, questions)
	}
	if s.Shortened == 0 || !strings.Contains(plan.Why[hparams.FieldMaxSeqLen], "shortened") {
		t.Errorf("no example shortened (%d) or the plan does not say so: %q", s.Shortened, plan.Why[hparams.FieldMaxSeqLen])
	}
	// Every kept example ends with its whole answer, in the loss.
	answers := map[string]bool{}
	for _, d := range raw.Data {
		for _, p := range d.Paragraphs {
			for _, q := range p.QAs {
				if len(q.Answers) > 0 {
					var ids []string
					for _, id := range enc.Encode(q.Answers[0].Text, false, true) {
						ids = append(ids, itoa(id))
					}
					answers[strings.Join(ids, ",")] = true
				}
			}
		}
	}
	for _, ex := range append(ds.Train, ds.Eval...) {
		if len(ex.IDs) > plan.MaxSeqLen {
			t.Fatalf("%s: %d tokens, more than %d", ex.Where, len(ex.IDs), plan.MaxSeqLen)
		}
		var ans []string
		for i, id := range ex.IDs {
			if ex.Mask[i] {
				ans = append(ans, itoa(id))
			}
		}
		if !answers[strings.Join(ans, ",")] {
			t.Fatalf("%s: the trained part is not a whole answer", ex.Where)
		}
	}

	short := 24
	cfg.Overrides.MaxSeqLen = &short
	_, _, err = Prepare(context.Background(), cfg)
	if err == nil || !errors.Is(err, data.ErrNoExamples) || !strings.Contains(err.Error(), "raise --max-seq-len") || strings.Contains(err.Error(), "supported formats") {
		t.Errorf("every example too long: %v", err)
	}
}

func itoa(v int) string {
	b, _ := json.Marshal(v)
	return string(b)
}
