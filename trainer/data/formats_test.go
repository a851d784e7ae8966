package data

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/internal/testshared"
)

// The fixtures in testdata/docs were made by LibreOffice, Ghostscript and
// groff (see its README); the text each shows is known.
const (
	farmRed   = "The red dog is named Max. He lives near the old mill with Lily and Tom."
	farmPT    = "Ação e coração: o fazendeiro colheu maçãs no outono, e a colheita foi ótima."
	farmTable = "Questions\tAnswers\nWho helps the farmer?\tThe kind girl."
)

func TestPDFTextLayer(t *testing.T) {
	got, err := PDFText("testdata/docs/farm.pdf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"The Farm Report\n", farmRed + "\n", farmPT + "\n",
		"The kind girl helps the farmer every morning before school. She feeds the hens, waters the garden\nand counts the eggs in the basket by the door.",
		"Questions Answers\nWho helps the farmer? The kind girl."} {
		if !strings.Contains(got, want) {
			t.Errorf("LibreOffice PDF: text lacks %q:\n%q", want, got)
		}
	}
	got, err = PDFText("testdata/docs/orchard.pdf")
	if err != nil {
		t.Fatal(err)
	}
	want := "Notes on the orchard\n\nThe orchard has forty apple trees and six pear trees. In autumn the children pick the fruit, and the baker makes pies.\n\n" +
		"A colheita de maçãs começa em março.\n\nThe second page lists the tools: ladders, baskets and a cart.\n\n"
	if got != want {
		t.Errorf("groff/Ghostscript PDF:\n got %q\nwant %q", got, want)
	}
}

func TestScannedPDFIsReported(t *testing.T) {
	_, err := PDFText("testdata/docs/farm-scanned.pdf")
	if !errors.Is(err, ErrNoTextLayer) {
		t.Fatalf("scanned PDF: %v, want ErrNoTextLayer", err)
	}
	_, _, _, err = Load("testdata/docs/farm-scanned.pdf", LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "no text layer") || !strings.Contains(err.Error(), "OCR") {
		t.Errorf("a scanned PDF alone: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pdf")
	if err := os.WriteFile(bad, []byte("<html>not a pdf</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := PDFText(bad); err == nil || !strings.Contains(err.Error(), "not a PDF") {
		t.Errorf("not a PDF: %v", err)
	}
}

func TestOfficeText(t *testing.T) {
	for _, p := range []string{"testdata/docs/farm.docx", "testdata/docs/farm.odt"} {
		got, err := OfficeText(p)
		if err != nil {
			t.Fatal(err)
		}
		paras := strings.Split(strings.TrimSpace(got), "\n\n")
		want := []string{"The Farm Report", farmRed, farmPT,
			"The kind girl helps the farmer every morning before school. She feeds the hens, waters the garden and counts the eggs in the basket by the door.",
			farmTable}
		if strings.Join(paras, "|") != strings.Join(want, "|") {
			t.Errorf("%s:\n got %q\nwant %q", p, paras, want)
		}
	}
	junk := filepath.Join(t.TempDir(), "junk.docx")
	if err := os.WriteFile(junk, []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OfficeText(junk); err == nil || !strings.Contains(err.Error(), "zip") {
		t.Errorf("junk docx: %v", err)
	}
}

func TestHTMLVisibleText(t *testing.T) {
	page := `<!DOCTYPE html>
<html lang="pt"><head><title>Página</title><meta charset="utf-8">
<style>body { color: red }</style><script>var secret = "do not train on me";</script></head>
<body>
<nav hidden><a href="/">Menu oculto</a></nav>
<h1>Receita   de
  pão</h1>
<p>Misture a farinha &amp; a água.<br>Descanse <b>uma</b> hora.</p>
<ul><li>500 g de farinha</li><li>300&nbsp;ml de água</li></ul>
<div style="display: none">invisível</div>
<pre>  forno:
    220 °C</pre>
<table><tr><th>Passo</th><th>Tempo</th></tr><tr><td>Assar</td><td>30 min</td></tr></table>
<noscript>ative o JavaScript</noscript>
</body></html>`
	got, err := HTMLText(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var paras []string
	for _, p := range strings.Split(got, "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			paras = append(paras, p)
		}
	}
	want := []string{"Receita de pão", "Misture a farinha & a água.\nDescanse uma hora.", "500 g de farinha", "300\u00a0ml de água",
		"forno:\n    220 °C", "Passo\tTempo\nAssar\t30 min"}
	if strings.Join(paras, "|") != strings.Join(want, "|") {
		t.Errorf("HTML text:\n got %q\nwant %q", paras, want)
	}
	for _, hidden := range []string{"secret", "Menu", "invisível", "JavaScript", "Página", "color"} {
		if strings.Contains(got, hidden) {
			t.Errorf("invisible text %q extracted", hidden)
		}
	}
}

func TestCSV(t *testing.T) {
	dir := t.TempDir()
	// Excel in a Portuguese locale: BOM, ';' separators, quoted newlines.
	p := write(t, dir, "faq.csv", "\ufeffPergunta;Resposta;Fonte\r\n"+
		"Qual é a capital do Brasil?;Brasília;wiki\r\n"+
		"\"Como se faz pão; em casa?\";\"Misture farinha e água.\r\nAsse por 30 minutos.\";livro\r\n"+
		";sem pergunta;x\r\n"+
		"Quantos estados?;\"26 estados e o \"\"Distrito Federal\"\"\";wiki\r\n")
	recs, _, skips, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || len(skips) != 1 || !strings.Contains(skips[0].Reason, "empty prompt") || !strings.HasSuffix(skips[0].Where, "faq.csv:5") {
		t.Fatalf("records %+v skips %+v", recs, skips)
	}
	if q, a := recs[1].Messages[0].Content, recs[1].Messages[1].Content; q != "Como se faz pão; em casa?" || a != "Misture farinha e água.\nAsse por 30 minutos." {
		t.Errorf("quoted cells: %q → %q", q, a)
	}
	if a := recs[2].Messages[1].Content; a != `26 estados e o "Distrito Federal"` {
		t.Errorf("escaped quotes: %q", a)
	}
	// Columns named by flags; unknown names are an error naming the header.
	p2 := write(t, dir, "x.tsv", "id\tenunciado\tgabarito\n1\t2+2?\t4\n")
	if _, _, _, err := Load(p2, LoadOptions{QuestionColumn: "enunciado", AnswerColumn: "gabarito"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Load(p2, LoadOptions{QuestionColumn: "pergunta", AnswerColumn: "gabarito"}); err == nil || !strings.Contains(err.Error(), "enunciado") {
		t.Errorf("missing column: %v", err)
	}
	// No question/answer columns: rows are text.
	recs, _, _, err = Load(p2, LoadOptions{})
	if err != nil || len(recs) != 1 || recs[0].Messages != nil || recs[0].Text != "1\n2+2?\n4" {
		t.Errorf("rows as text: %+v %v", recs, err)
	}
}

func TestPiraCSV(t *testing.T) {
	p := testshared.Path(t, "data/pira/validation.csv")
	ds, err := Build(context.Background(), p, byteEnc{}, Options{MaxSeqLen: 2048})
	if err != nil {
		t.Fatal(err)
	}
	recs, _, _, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Pirá validation.csv: %d records, %d examples, %d skipped", len(recs), ds.Summary.Examples, len(ds.Summary.Skipped))
	if len(recs) < 100 || recs[0].Messages == nil {
		t.Fatalf("%d records, first %+v", len(recs), recs[0])
	}
	if q := recs[0].Messages[0].Content; q != "What are the methods of forecasting precipitation in the Northeast?" {
		t.Errorf("first question %q: want question_en_origin", q)
	}
}

func TestMixedFolder(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"farm.pdf", "farm-scanned.pdf", "farm.docx", "farm.odt", "orchard.pdf"} {
		b, err := os.ReadFile(filepath.Join("testdata/docs", f))
		if err != nil {
			t.Fatal(err)
		}
		write(t, dir, "docs/"+f, string(b))
	}
	write(t, dir, "notes.txt", "A plain note.\n\nAnother paragraph.\n")
	write(t, dir, "qa.csv", "question,answer\nWho helps the farmer?,The kind girl.\n")
	write(t, dir, "page.html", "<p>Hello <i>page</i>.</p>")
	write(t, dir, "sheet.xlsx", "PK not really")
	write(t, dir, ".hidden/x.txt", "ignored")
	ds, err := Build(context.Background(), dir, byteEnc{}, Options{MaxSeqLen: 4096})
	if err != nil {
		t.Fatal(err)
	}
	s := ds.Summary
	if s.Files != 8 {
		t.Errorf("%d files read, want 8", s.Files)
	}
	reasons := map[string]string{}
	for _, sk := range s.Skipped {
		reasons[filepath.Base(sk.Where)] = sk.Reason
	}
	if !strings.Contains(reasons["farm-scanned.pdf"], "no text layer") || !strings.Contains(reasons["sheet.xlsx"], "save it as .csv") || len(s.Skipped) != 2 {
		t.Errorf("skips %+v", s.Skipped)
	}
	if len(s.SkipReasons) != 2 {
		t.Errorf("skip reasons %v", s.SkipReasons)
	}
	var all strings.Builder
	for _, ex := range append(ds.Train, ds.Eval...) {
		all.WriteString(decodeMasked(ex))
		all.WriteString("\n")
	}
	for _, want := range []string{farmPT, "A colheita de maçãs", "A plain note.", "The kind girl.", "Hello page."} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("examples lack %q", want)
		}
	}
}
