package data

import (
	"os"
	"testing"
)

// FuzzPDF: any bytes give text or an error, never a crash or a hang.
func FuzzPDF(f *testing.F) {
	for _, p := range []string{"testdata/docs/farm.pdf", "testdata/docs/orchard.pdf", "testdata/docs/farm-scanned.pdf"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("%PDF-1.4\n1 0 obj <</Type/Catalog/Pages 2 0 R>> endobj 2 0 obj <</Kids[3 0 R]>> endobj 3 0 obj <</Contents 4 0 R>> endobj 4 0 obj <</Length 20>> stream\nBT (Hi) Tj ET\nendstream endobj"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = pdfBytesText(b)
	})
}
