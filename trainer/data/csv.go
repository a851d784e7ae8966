package data

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Column names recognised as the question and the answer of a CSV/TSV row,
// in English and Portuguese, most specific first. A header matches a name
// exactly, or starts with it followed by "_", " " or "-" (Pirá's
// question_en_origin).
var (
	questionColumns = []string{"question", "pergunta", "prompt", "instruction", "instrução", "instrucao", "query", "consulta", "input", "entrada", "q"}
	answerColumns   = []string{"answer", "resposta", "completion", "output", "saída", "saida", "response", "reply", "target", "resposta_correta", "a"}
)

// loadCSV reads a CSV or TSV file. With question and answer columns (named
// by LoadOptions or recognised by name) each row is a question/answer
// example; otherwise each row's cells, joined, are a paragraph of text.
// The separator (comma, semicolon or tab) is sniffed from the header; a
// UTF-8 byte-order mark and quoted cells with newlines are handled.
func (l *loader) loadCSV(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("read training data: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	head, _ := br.Peek(16 << 10)
	r := csv.NewReader(br)
	r.Comma = sniffComma(head, strings.EqualFold(filepath.Ext(p), ".tsv"))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.ReuseRecord = false
	header, err := r.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fileErr{fmt.Sprintf("%s: not a readable CSV file: %v", p, err)}
	}
	qi, ai, err := csvColumns(header, l.opt.QuestionColumn, l.opt.AnswerColumn)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if qi < 0 {
		l.doc++
	}
	for n := 2; ; n++ {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		line, _ := r.FieldPos(0)
		where := fmt.Sprintf("%s:%d", p, line)
		l.line = line
		if n%256 == 0 {
			if err := l.stopped(); err != nil {
				return err
			}
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				l.skip(fmt.Sprintf("%s:%d", p, pe.Line), "not a CSV row: "+pe.Err.Error())
				continue
			}
			return fmt.Errorf("read %s: %w", p, err)
		}
		if qi < 0 {
			var cells []string
			for _, c := range row {
				if c = strings.TrimSpace(c); c != "" {
					cells = append(cells, c)
				}
			}
			if len(cells) == 0 {
				continue
			}
			if err := l.add(Record{Text: strings.Join(cells, "\n"), Where: where}); err != nil {
				return err
			}
			continue
		}
		if qi >= len(row) || ai >= len(row) {
			l.skip(where, fmt.Sprintf("row has %d cells, the question/answer columns are %d and %d", len(row), qi+1, ai+1))
			continue
		}
		rs, err := qa(strings.TrimSpace(row[qi]), strings.TrimSpace(row[ai]), where)
		if err != nil {
			l.skip(where, err.Error())
			continue
		}
		if err := l.add(rs...); err != nil {
			return err
		}
	}
	return nil
}

// sniffComma picks the separator that splits the header line into the most
// cells: tab, semicolon or comma.
func sniffComma(head []byte, tsv bool) rune {
	first := head
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		first = head[:i]
	}
	best, n := ',', bytes.Count(first, []byte(","))
	if c := bytes.Count(first, []byte(";")); c > n {
		best, n = ';', c
	}
	if c := bytes.Count(first, []byte("\t")); c > n || (tsv && c > 0) {
		best = '\t'
	}
	return best
}

// csvColumns finds the question and answer columns in header: the named
// ones when given (an error when absent), else by recognised names; -1, -1
// means none (rows are text).
func csvColumns(header []string, q, a string) (int, int, error) {
	norm := make([]string, len(header))
	for i, h := range header {
		norm[i] = strings.ToLower(strings.TrimSpace(strings.Trim(h, "\ufeff\"")))
	}
	find := func(name string) int {
		for i, h := range norm {
			if h == strings.ToLower(strings.TrimSpace(name)) {
				return i
			}
		}
		return -1
	}
	if q != "" || a != "" {
		if q == "" || a == "" {
			return -1, -1, errors.New("name both --question-column and --answer-column")
		}
		qi, ai := find(q), find(a)
		if qi < 0 || ai < 0 {
			return -1, -1, fmt.Errorf("columns %q and %q not both in the header [%s]: give the names of the question and answer columns as the header spells them (--question-column and --answer-column)", q, a, strings.Join(header, ", "))
		}
		return qi, ai, nil
	}
	match := func(names []string) int {
		for _, n := range names {
			if i := find(n); i >= 0 {
				return i
			}
		}
		for _, n := range names {
			if len(n) < 3 {
				continue
			}
			for i, h := range norm {
				if strings.HasPrefix(h, n+"_") || strings.HasPrefix(h, n+" ") || strings.HasPrefix(h, n+"-") {
					return i
				}
			}
		}
		return -1
	}
	qi, ai := match(questionColumns), match(answerColumns)
	if qi < 0 || ai < 0 || qi == ai {
		return -1, -1, nil
	}
	return qi, ai, nil
}
