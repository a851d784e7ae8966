package data

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxDocXML bounds the XML part read from a DOCX/ODT file (a zip bomb guard).
const maxDocXML = 256 << 20

// loadOffice reads the text of a Word (.docx) or OpenDocument (.odt) file,
// one paragraph per record.
func (l *loader) loadOffice(p string) error {
	text, err := OfficeText(p)
	if err != nil {
		return fileErr{err.Error()}
	}
	if strings.TrimSpace(text) == "" {
		l.skip(p, "the document has no text")
		return nil
	}
	return l.addText(p, text)
}

// OfficeText returns the text of a .docx or .odt file: paragraphs separated
// by blank lines, tabs and line breaks kept.
func OfficeText(p string) (string, error) {
	z, err := zip.OpenReader(p)
	if err != nil {
		return "", fmt.Errorf("%s: not a readable %s file (a zip archive): %v", p, strings.ToUpper(filepath.Ext(p)[1:]), err)
	}
	defer z.Close()
	part, odt := "word/document.xml", false
	if strings.EqualFold(filepath.Ext(p), ".odt") {
		part, odt = "content.xml", true
	}
	f, err := z.Open(part)
	if err != nil {
		return "", fmt.Errorf("%s: no %s inside: is it really a %s file?", p, part, filepath.Ext(p))
	}
	defer f.Close()
	var b strings.Builder
	if odt {
		err = odtText(io.LimitReader(f, maxDocXML), &b)
	} else {
		err = docxText(io.LimitReader(f, maxDocXML), &b)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", p, part, err)
	}
	return b.String(), nil
}

const (
	nsWord = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
	nsODT  = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
)

// docxText writes the visible text of WordprocessingML: <w:t> runs, with
// <w:tab/> and <w:br/> as tab and newline, each <w:p> a paragraph.
func docxText(r io.Reader, b *strings.Builder) error {
	d := xml.NewDecoder(r)
	inText := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != nsWord {
				continue
			}
			switch t.Name.Local {
			case "t":
				inText++
			case "tab":
				b.WriteString("\t")
			case "br", "cr":
				b.WriteString("\n")
			}
		case xml.EndElement:
			if t.Name.Space != nsWord {
				continue
			}
			switch t.Name.Local {
			case "t":
				inText--
			case "p":
				b.WriteString("\n\n")
			}
		case xml.CharData:
			if inText > 0 {
				b.Write(t)
			}
		}
	}
}

// odtText writes the visible text of OpenDocument content: <text:p> and
// <text:h> paragraphs, <text:s text:c="n"/> spaces, tabs and line breaks;
// notes and annotations are left out.
func odtText(r io.Reader, b *strings.Builder) error {
	d := xml.NewDecoder(r)
	inPara, skip := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if skip > 0 {
				skip++
				continue
			}
			if t.Name.Local == "annotation" || (t.Name.Space == nsODT && (t.Name.Local == "note" || t.Name.Local == "tracked-changes")) {
				skip = 1
				continue
			}
			if t.Name.Space != nsODT {
				continue
			}
			switch t.Name.Local {
			case "p", "h":
				inPara++
			case "s":
				n := 1
				for _, a := range t.Attr {
					if a.Name.Local == "c" {
						if v, err := strconv.Atoi(a.Value); err == nil && v > 0 && v < 1000 {
							n = v
						}
					}
				}
				b.WriteString(strings.Repeat(" ", n))
			case "tab":
				b.WriteString("\t")
			case "line-break":
				b.WriteString("\n")
			}
		case xml.EndElement:
			if skip > 0 {
				skip--
				continue
			}
			if t.Name.Space == nsODT && (t.Name.Local == "p" || t.Name.Local == "h") {
				inPara--
				if inPara == 0 {
					b.WriteString("\n\n")
				}
			}
		case xml.CharData:
			if inPara > 0 && skip == 0 {
				b.Write(t)
			}
		}
	}
}

// loadHTML reads the visible text of an HTML page.
func (l *loader) loadHTML(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("read training data: %w", err)
	}
	defer f.Close()
	text, err := HTMLText(f)
	if err != nil {
		return fileErr{fmt.Sprintf("%s: %v", p, err)}
	}
	if strings.TrimSpace(text) == "" {
		l.skip(p, "the page has no visible text")
		return nil
	}
	return l.addText(p, text)
}

// HTMLText returns the text a browser shows for an HTML page: scripts,
// styles, the head and hidden elements left out, white space collapsed
// (kept in <pre>), block elements as paragraphs and <br> as a new line.
func HTMLText(r io.Reader) (string, error) {
	z := html.NewTokenizer(r)
	var b strings.Builder
	skip, pre := 0, 0
	// fresh: at the start of a line (no space needed before a word); gap:
	// white space was seen since the last word.
	fresh, gap := true, false
	brk := func(s string) {
		b.WriteString(s)
		fresh, gap = true, false
	}
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if errors.Is(z.Err(), io.EOF) {
				return b.String(), nil
			}
			return b.String(), z.Err()
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			hidden := false
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				if string(k) == "hidden" || (string(k) == "aria-hidden" && string(v) == "true") ||
					(string(k) == "style" && strings.Contains(strings.ReplaceAll(string(v), " ", ""), "display:none")) {
					hidden = true
				}
			}
			if skip > 0 {
				if tt == html.StartTagToken && !voidElement(a) {
					skip++
				}
				continue
			}
			if invisible(a) || hidden {
				if tt == html.StartTagToken && !voidElement(a) {
					skip = 1
				}
				continue
			}
			switch {
			case a == atom.Br:
				brk("\n")
			case a == atom.Pre:
				pre++
				brk("\n\n")
			case a == atom.Td || a == atom.Th:
				if !fresh {
					b.WriteString("\t")
					fresh, gap = true, false
				}
			case a == atom.Img:
			case blockElement(a):
				brk("\n\n")
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if skip > 0 {
				skip--
				continue
			}
			if a == atom.Pre && pre > 0 {
				pre--
			}
			if blockElement(a) || a == atom.Pre {
				brk("\n\n")
			} else if a == atom.Tr {
				brk("\n")
			}
		case html.TextToken:
			if skip > 0 {
				continue
			}
			t := string(z.Text())
			if pre > 0 {
				b.WriteString(t)
				fresh, gap = strings.HasSuffix(t, "\n"), false
				continue
			}
			if len(t) > 0 && isHTMLSpace(rune(t[0])) {
				gap = true
			}
			for _, w := range strings.FieldsFunc(t, isHTMLSpace) {
				if gap && !fresh {
					b.WriteString(" ")
				}
				b.WriteString(w)
				fresh, gap = false, true
			}
			gap = len(t) > 0 && isHTMLSpace(rune(t[len(t)-1])) || (gap && len(strings.FieldsFunc(t, isHTMLSpace)) == 0)
		}
	}
}

func isHTMLSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' }

func invisible(a atom.Atom) bool {
	switch a {
	case atom.Script, atom.Style, atom.Head, atom.Noscript, atom.Template, atom.Svg, atom.Canvas, atom.Iframe, atom.Object, atom.Select, atom.Button:
		return true
	}
	return false
}

func voidElement(a atom.Atom) bool {
	switch a {
	case atom.Area, atom.Base, atom.Br, atom.Col, atom.Embed, atom.Hr, atom.Img, atom.Input, atom.Link, atom.Meta, atom.Source, atom.Track, atom.Wbr:
		return true
	}
	return false
}

func blockElement(a atom.Atom) bool {
	switch a {
	case atom.P, atom.Div, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Li, atom.Ul, atom.Ol, atom.Dl, atom.Dt, atom.Dd,
		atom.Table, atom.Blockquote, atom.Section, atom.Article, atom.Header, atom.Footer, atom.Nav, atom.Aside,
		atom.Main, atom.Figure, atom.Figcaption, atom.Hr, atom.Address, atom.Details, atom.Summary, atom.Form, atom.Fieldset, atom.Caption:
		return true
	}
	return false
}
