package data

import "fmt"

func (l *loader) loadPDF(p string) error {
	return fileErr{fmt.Sprintf("%s: PDF reading is not built yet", p)}
}
