package data

import (
	"bytes"
	"compress/zlib"
	"encoding/ascii85"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
)

// A minimal reader of a PDF's text layer: it finds every object (also
// inside object streams), walks the page tree in order, and interprets the
// text operators of each page's content (and of the forms it draws), mapping
// glyph codes to characters through the fonts' ToUnicode maps or their
// encodings. Lines and paragraphs follow the text's positions. Encrypted
// PDFs and exotic filters are refused with a message.

// maxPDFBytes bounds the PDF files read (they are read whole).
const maxPDFBytes = 512 << 20

// ErrNoTextLayer is returned (wrapped) for a PDF whose pages hold no text:
// scanned pages are images, and need OCR first.
var ErrNoTextLayer = errors.New("the PDF has no text layer (scanned pages are pictures of text): run OCR on it first, e.g. ocrmypdf, or give the text as .txt")

// loadPDF reads the text layer of a PDF file, one page after another.
func (l *loader) loadPDF(p string) error {
	text, err := PDFText(p)
	if errors.Is(err, ErrNoTextLayer) {
		l.skip(p, ErrNoTextLayer.Error())
		return nil
	}
	if err != nil {
		return fileErr{err.Error()}
	}
	return l.addText(p, text)
}

// PDFText returns the text of a PDF file's pages: lines as the page shows
// them, paragraphs (and pages) separated by blank lines.
func PDFText(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("read training data: %w", err)
	}
	if st.Size() > maxPDFBytes {
		return "", fmt.Errorf("%s: PDF larger than %d MB", path, maxPDFBytes>>20)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read training data: %w", err)
	}
	text, err := pdfBytesText(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return text, nil
}

// pdfBytesText is PDFText on the file's bytes.
func pdfBytesText(b []byte) (string, error) {
	if !bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("%PDF-")) {
		return "", errors.New("not a PDF file (no %PDF- header)")
	}
	d := newPDFDoc(b)
	if d.encrypted {
		return "", errors.New("the PDF is encrypted: save an unprotected copy (or export its text) first")
	}
	pages := d.pages()
	if len(pages) == 0 {
		return "", errors.New("no pages found: the PDF may be damaged")
	}
	var out strings.Builder
	for _, pg := range pages {
		var w pdfText
		w.doc = d
		for _, c := range pg.contents {
			w.run(c, pg.resources, 0)
		}
		t := strings.TrimSpace(w.b.String())
		if t != "" {
			out.WriteString(t)
			out.WriteString("\n\n")
		}
	}
	if strings.TrimSpace(out.String()) == "" {
		return "", ErrNoTextLayer
	}
	return expandLigatures.Replace(out.String()), nil
}

// PDF objects.
type (
	pdfName  string
	pdfRef   struct{ num, gen int }
	pdfDict  map[pdfName]any
	pdfArray []any
	pdfStr   []byte
	pdfOp    string // a keyword: an operator in content streams
	pdfStrm  struct {
		dict pdfDict
		raw  []byte
	}
)

type pdfDoc struct {
	b         []byte
	offsets   map[int]int // object number → offset of "n g obj"
	inStream  map[int][2]int
	cache     map[int]any
	encrypted bool
	resolving map[int]bool
}

var objRE = regexp.MustCompile(`(?:^|[\r\n\s])(\d+)\s+(\d+)\s+obj\b`)

func newPDFDoc(b []byte) *pdfDoc {
	d := &pdfDoc{b: b, offsets: map[int]int{}, inStream: map[int][2]int{}, cache: map[int]any{}, resolving: map[int]bool{}}
	for _, m := range objRE.FindAllSubmatchIndex(b, -1) {
		n, _ := strconv.Atoi(string(b[m[2]:m[3]]))
		d.offsets[n] = m[5] // after the generation number; "obj" follows
	}
	// Objects inside object streams.
	nums := make([]int, 0, len(d.offsets))
	for n := range d.offsets {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	for _, n := range nums {
		s, ok := d.object(n).(*pdfStrm)
		if !ok {
			continue
		}
		if t, _ := s.dict["Type"].(pdfName); t == "XRef" {
			if _, enc := s.dict["Encrypt"]; enc {
				d.encrypted = true
			}
			continue
		}
		if t, _ := s.dict["Type"].(pdfName); t != "ObjStm" {
			continue
		}
		data, err := d.decode(s)
		if err != nil {
			continue
		}
		cnt, _ := d.num(s.dict["N"])
		first, _ := d.num(s.dict["First"])
		lx := &pdfLexer{b: data}
		for i := 0; i < int(cnt); i++ {
			on, ok1 := lx.next().(float64)
			off, ok2 := lx.next().(float64)
			if !ok1 || !ok2 {
				break
			}
			if _, direct := d.offsets[int(on)]; !direct {
				d.inStream[int(on)] = [2]int{n, int(first) + int(off)}
			}
		}
	}
	for _, m := range regexp.MustCompile(`trailer\s*<<`).FindAllIndex(b, -1) {
		lx := &pdfLexer{b: b, pos: m[1] - 2}
		if t, ok := lx.object(d).(pdfDict); ok {
			if _, enc := t["Encrypt"]; enc {
				d.encrypted = true
			}
		}
	}
	return d
}

// object returns object n (nil when absent).
func (d *pdfDoc) object(n int) any {
	if v, ok := d.cache[n]; ok {
		return v
	}
	if d.resolving[n] {
		return nil
	}
	d.resolving[n] = true
	defer delete(d.resolving, n)
	var v any
	if off, ok := d.offsets[n]; ok {
		lx := &pdfLexer{b: d.b, pos: off}
		if kw, _ := lx.next().(pdfOp); kw == "obj" {
			v = lx.object(d)
			if dict, ok := v.(pdfDict); ok {
				save := lx.pos
				if kw, _ := lx.next().(pdfOp); kw == "stream" {
					v = d.streamAt(dict, lx.pos)
				} else {
					lx.pos = save
				}
			}
		}
	} else if at, ok := d.inStream[n]; ok {
		if s, ok := d.object(at[0]).(*pdfStrm); ok {
			if data, err := d.decode(s); err == nil && at[1] >= 0 && at[1] < len(data) {
				lx := &pdfLexer{b: data, pos: at[1]}
				v = lx.object(d)
			}
		}
	}
	d.cache[n] = v
	return v
}

// streamAt reads a stream's bytes starting right after the "stream" keyword.
func (d *pdfDoc) streamAt(dict pdfDict, pos int) *pdfStrm {
	if pos < len(d.b) && d.b[pos] == '\r' {
		pos++
	}
	if pos < len(d.b) && d.b[pos] == '\n' {
		pos++
	}
	n, ok := d.num(dict["Length"])
	end := pos + int(n)
	if !ok || n < 0 || end > len(d.b) || !bytes.HasPrefix(bytes.TrimLeft(d.b[end:min(end+32, len(d.b))], "\r\n \t"), []byte("endstream")) {
		i := bytes.Index(d.b[pos:], []byte("endstream"))
		if i < 0 {
			return &pdfStrm{dict: dict}
		}
		end = pos + i
		for end > pos && (d.b[end-1] == '\n' || d.b[end-1] == '\r') {
			end--
		}
	}
	return &pdfStrm{dict: dict, raw: d.b[pos:end]}
}

// get resolves references.
func (d *pdfDoc) get(v any) any {
	for i := 0; i < 32; i++ {
		r, ok := v.(pdfRef)
		if !ok {
			return v
		}
		v = d.object(r.num)
	}
	return nil
}

func (d *pdfDoc) dict(v any) pdfDict {
	switch t := d.get(v).(type) {
	case pdfDict:
		return t
	case *pdfStrm:
		return t.dict
	}
	return nil
}

func (d *pdfDoc) num(v any) (float64, bool) {
	f, ok := d.get(v).(float64)
	return f, ok
}

// decode undoes a stream's filters.
func (d *pdfDoc) decode(s *pdfStrm) ([]byte, error) {
	data := s.raw
	var filters []any
	switch f := d.get(s.dict["Filter"]).(type) {
	case pdfName:
		filters = []any{f}
	case pdfArray:
		filters = f
	}
	for _, f := range filters {
		name, _ := d.get(f).(pdfName)
		switch name {
		case "FlateDecode", "Fl":
			r, err := zlib.NewReader(bytes.NewReader(data))
			if err != nil {
				return nil, err
			}
			out, err := io.ReadAll(io.LimitReader(r, 256<<20))
			if err != nil && len(out) == 0 {
				return nil, err
			}
			data = out
		case "ASCIIHexDecode", "AHx":
			t := bytes.Map(func(r rune) rune {
				if strings.ContainsRune("0123456789abcdefABCDEF", r) {
					return r
				}
				return -1
			}, bytes.TrimSuffix(bytes.TrimSpace(data), []byte(">")))
			if len(t)%2 == 1 {
				t = append(t, '0')
			}
			out := make([]byte, len(t)/2)
			if _, err := hex.Decode(out, t); err != nil {
				return nil, err
			}
			data = out
		case "ASCII85Decode", "A85":
			t := bytes.TrimSpace(data)
			t = bytes.TrimPrefix(t, []byte("<~"))
			if i := bytes.Index(t, []byte("~>")); i >= 0 {
				t = t[:i]
			}
			out := make([]byte, len(t))
			n, _, err := ascii85.Decode(out, t, true)
			if err != nil {
				return nil, err
			}
			data = out[:n]
		default:
			return nil, fmt.Errorf("unsupported PDF filter %s", name)
		}
	}
	return data, nil
}

// pdfPage is one page's content streams and resources.
type pdfPage struct {
	contents  [][]byte
	resources pdfDict
}

// pages walks the page tree from the catalog (the last one, for updated
// files), in reading order.
func (d *pdfDoc) pages() []pdfPage {
	var root pdfDict
	nums := make([]int, 0, len(d.offsets)+len(d.inStream))
	for n := range d.offsets {
		nums = append(nums, n)
	}
	for n := range d.inStream {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	for _, n := range nums {
		if dd, ok := d.object(n).(pdfDict); ok {
			if t, _ := dd["Type"].(pdfName); t == "Catalog" {
				root = dd
			}
		}
	}
	var out []pdfPage
	seen := map[any]bool{}
	var walk func(node any, res pdfDict, depth int)
	walk = func(node any, res pdfDict, depth int) {
		if r, ok := node.(pdfRef); ok {
			if seen[r] {
				return
			}
			seen[r] = true
		}
		n := d.dict(node)
		if n == nil || depth > 64 {
			return
		}
		if r := d.dict(n["Resources"]); r != nil {
			res = r
		}
		if kids, ok := d.get(n["Kids"]).(pdfArray); ok {
			for _, k := range kids {
				walk(k, res, depth+1)
			}
			return
		}
		pg := pdfPage{resources: res}
		var cs []any
		switch c := d.get(n["Contents"]).(type) {
		case *pdfStrm:
			cs = []any{c}
		case pdfArray:
			cs = c
		}
		for _, c := range cs {
			if s, ok := d.get(c).(*pdfStrm); ok {
				if data, err := d.decode(s); err == nil {
					pg.contents = append(pg.contents, data)
				}
			}
		}
		out = append(out, pg)
	}
	if root != nil {
		walk(root["Pages"], nil, 0)
	}
	if len(out) == 0 { // no usable catalog: every page object in order
		for _, n := range nums {
			if dd, ok := d.object(n).(pdfDict); ok {
				if t, _ := dd["Type"].(pdfName); t == "Page" {
					walk(pdfRef{num: n}, nil, 0)
				}
			}
		}
	}
	return out
}

// pdfFont maps a font's codes to text and widths.
type pdfFont struct {
	twoByte  bool
	toUni    map[int]string
	enc      *[256]rune
	widths   map[int]float64 // in thousandths of the font size
	defWidth float64
}

func (d *pdfDoc) font(v any) *pdfFont {
	fd := d.dict(v)
	f := &pdfFont{widths: map[int]float64{}, defWidth: 500}
	if fd == nil {
		f.enc = &stdEncoding
		return f
	}
	sub, _ := d.get(fd["Subtype"]).(pdfName)
	if sub == "Type0" {
		f.twoByte = true
		f.defWidth = 1000
		if desc, ok := d.get(fd["DescendantFonts"]).(pdfArray); ok && len(desc) > 0 {
			cf := d.dict(desc[0])
			if dw, ok := d.num(cf["DW"]); ok {
				f.defWidth = dw
			}
			if w, ok := d.get(cf["W"]).(pdfArray); ok {
				for i := 0; i < len(w); {
					c0, ok := d.num(w[i])
					if !ok {
						break
					}
					if i+1 < len(w) {
						if arr, ok := d.get(w[i+1]).(pdfArray); ok {
							for j, x := range arr {
								if v, ok := d.num(x); ok {
									f.widths[int(c0)+j] = v
								}
							}
							i += 2
							continue
						}
					}
					if i+2 < len(w) {
						c1, _ := d.num(w[i+1])
						v, _ := d.num(w[i+2])
						for c := int(c0); c <= int(c1) && c-int(c0) < 65536; c++ {
							f.widths[c] = v
						}
					}
					i += 3
				}
			}
		}
	} else {
		enc := stdEncoding
		if sub == "TrueType" {
			enc = winAnsi
		}
		switch e := d.get(fd["Encoding"]).(type) {
		case pdfName:
			enc = namedEncoding(e, enc)
		case pdfDict:
			if b, ok := d.get(e["BaseEncoding"]).(pdfName); ok {
				enc = namedEncoding(b, enc)
			}
			if diffs, ok := d.get(e["Differences"]).(pdfArray); ok {
				code := 0
				for _, x := range diffs {
					switch t := d.get(x).(type) {
					case float64:
						code = int(t)
					case pdfName:
						if code >= 0 && code < 256 {
							if r, ok := glyphRune(string(t)); ok {
								enc[code] = r
							}
						}
						code++
					}
				}
			}
		}
		f.enc = &enc
		fc, _ := d.num(fd["FirstChar"])
		if w, ok := d.get(fd["Widths"]).(pdfArray); ok {
			for i, x := range w {
				if v, ok := d.num(x); ok {
					f.widths[int(fc)+i] = v
				}
			}
		}
	}
	if s, ok := d.get(fd["ToUnicode"]).(*pdfStrm); ok {
		if data, err := d.decode(s); err == nil {
			f.toUni = parseCMap(data)
		}
	}
	return f
}

// parseCMap reads the bfchar and bfrange entries of a ToUnicode CMap.
func parseCMap(b []byte) map[int]string {
	m := map[int]string{}
	lx := &pdfLexer{b: b}
	code := func(v any) (int, bool) {
		s, ok := v.(pdfStr)
		if !ok || len(s) > 4 {
			return 0, false
		}
		c := 0
		for _, x := range s {
			c = c<<8 | int(x)
		}
		return c, true
	}
	uni := func(s pdfStr) string {
		if len(s)%2 == 1 {
			return string(s)
		}
		u := make([]uint16, len(s)/2)
		for i := range u {
			u[i] = uint16(s[2*i])<<8 | uint16(s[2*i+1])
		}
		return string(utf16.Decode(u))
	}
	for {
		t := lx.next()
		if t == nil {
			return m
		}
		switch t {
		case pdfOp("beginbfchar"):
			for {
				a := lx.next()
				if a == pdfOp("endbfchar") || a == nil {
					break
				}
				bv := lx.next()
				c, ok := code(a)
				if s, ok2 := bv.(pdfStr); ok && ok2 {
					m[c] = uni(s)
				}
			}
		case pdfOp("beginbfrange"):
			for {
				a := lx.next()
				if a == pdfOp("endbfrange") || a == nil {
					break
				}
				hiV := lx.next()
				dst := lx.object(nil)
				lo, ok1 := code(a)
				hi, ok2 := code(hiV)
				if !ok1 || !ok2 || hi < lo || hi-lo > 65535 {
					continue
				}
				switch d := dst.(type) {
				case pdfStr:
					base := []rune(uni(d))
					for c := lo; c <= hi && len(base) > 0; c++ {
						r := append([]rune(nil), base...)
						r[len(r)-1] += rune(c - lo)
						m[c] = string(r)
					}
				case pdfArray:
					for i, x := range d {
						if s, ok := x.(pdfStr); ok && lo+i <= hi {
							m[lo+i] = uni(s)
						}
					}
				}
			}
		}
	}
}

// pdfText interprets content streams into text.
type pdfText struct {
	doc *pdfDoc
	b   strings.Builder
	// text state
	font             *pdfFont
	fs, tc, tw, th   float64
	tl               float64
	tm, tlm          [6]float64
	lastX, lastY     float64
	lastSize         float64
	started, spaceOK bool
	// pending is a space to write before the next text on the same line.
	pending bool
}

type textState struct {
	font               *pdfFont
	fs, tc, tw, th, tl float64
}

func (w *pdfText) run(content []byte, res pdfDict, depth int) {
	if depth > 8 {
		return
	}
	d := w.doc
	if w.th == 0 {
		w.th = 1
	}
	fonts := d.dict(res["Font"])
	xobjs := d.dict(res["XObject"])
	cache := map[pdfName]*pdfFont{}
	var stack []textState
	var args []any
	lx := &pdfLexer{b: content}
	for {
		t := lx.next()
		if t == nil {
			return
		}
		if o, ok := t.(pdfOp); ok && (o == "[" || o == "<<") {
			t = lx.finish(t, nil, 0) // an array (TJ's operand) or a dictionary
		}
		op, isOp := t.(pdfOp)
		if !isOp {
			args = append(args, t)
			if len(args) > 64 {
				args = args[1:]
			}
			continue
		}
		if op == "" || op == "]" || op == ">>" {
			continue
		}
		num := func(i int) float64 {
			if i >= 0 && i < len(args) {
				if f, ok := args[i].(float64); ok {
					return f
				}
			}
			return 0
		}
		switch op {
		case "q":
			stack = append(stack, textState{w.font, w.fs, w.tc, w.tw, w.th, w.tl})
		case "Q":
			if n := len(stack); n > 0 {
				s := stack[n-1]
				stack = stack[:n-1]
				w.font, w.fs, w.tc, w.tw, w.th, w.tl = s.font, s.fs, s.tc, s.tw, s.th, s.tl
			}
		case "BT":
			w.tm = [6]float64{1, 0, 0, 1, 0, 0}
			w.tlm = w.tm
		case "Tf":
			if len(args) >= 2 {
				name, _ := args[len(args)-2].(pdfName)
				f, ok := cache[name]
				if !ok {
					f = d.font(fonts[name])
					cache[name] = f
				}
				w.font = f
				w.fs = num(len(args) - 1)
			}
		case "Tc":
			w.tc = num(len(args) - 1)
		case "Tw":
			w.tw = num(len(args) - 1)
		case "Tz":
			w.th = num(len(args)-1) / 100
		case "TL":
			w.tl = num(len(args) - 1)
		case "Td", "TD":
			if len(args) >= 2 {
				tx, ty := num(len(args)-2), num(len(args)-1)
				if op == "TD" {
					w.tl = -ty
				}
				w.moveLine(tx, ty)
			}
		case "Tm":
			if len(args) >= 6 {
				for i := range 6 {
					w.tm[i] = num(len(args) - 6 + i)
				}
				w.tlm = w.tm
			}
		case "T*":
			w.moveLine(0, -w.tl)
		case "Tj":
			if len(args) > 0 {
				if s, ok := args[len(args)-1].(pdfStr); ok {
					w.show(s)
				}
			}
		case "'":
			w.moveLine(0, -w.tl)
			if len(args) > 0 {
				if s, ok := args[len(args)-1].(pdfStr); ok {
					w.show(s)
				}
			}
		case "\"":
			if len(args) >= 3 {
				w.tw, w.tc = num(len(args)-3), num(len(args)-2)
				w.moveLine(0, -w.tl)
				if s, ok := args[len(args)-1].(pdfStr); ok {
					w.show(s)
				}
			}
		case "TJ":
			if len(args) > 0 {
				if arr, ok := args[len(args)-1].(pdfArray); ok {
					for _, x := range arr {
						switch v := x.(type) {
						case pdfStr:
							w.show(v)
						case float64:
							adv := -v / 1000 * w.fs * w.th
							w.tm[4] += adv * w.tm[0]
							w.tm[5] += adv * w.tm[1]
							if v < -200 && w.spaceOK {
								w.pending = true
							}
						}
					}
				}
			}
		case "Do":
			if len(args) > 0 {
				name, _ := args[len(args)-1].(pdfName)
				if s, ok := d.get(xobjs[name]).(*pdfStrm); ok {
					if st, _ := s.dict["Subtype"].(pdfName); st == "Form" {
						if data, err := d.decode(s); err == nil {
							sub := d.dict(s.dict["Resources"])
							if sub == nil {
								sub = res
							}
							saved := *w
							w.run(data, sub, depth+1)
							w.font, w.fs, w.tm, w.tlm = saved.font, saved.fs, saved.tm, saved.tlm
						}
					}
				}
			}
		case "BI":
			// Inline image: skip its data up to EI.
			if i := bytes.Index(lx.b[lx.pos:], []byte("ID")); i >= 0 {
				lx.pos += i + 2
				if j := indexEI(lx.b[lx.pos:]); j >= 0 {
					lx.pos += j + 2
				} else {
					lx.pos = len(lx.b)
				}
			}
		}
		args = args[:0]
	}
}

// indexEI finds the EI that ends inline image data.
func indexEI(b []byte) int {
	for i := 0; i+2 <= len(b); i++ {
		if b[i] == 'E' && b[i+1] == 'I' && i > 0 && isPDFSpace(b[i-1]) && (i+2 == len(b) || isPDFSpace(b[i+2])) {
			return i
		}
	}
	return -1
}

func (w *pdfText) moveLine(tx, ty float64) {
	t := w.tlm
	w.tlm[4] = tx*t[0] + ty*t[2] + t[4]
	w.tlm[5] = tx*t[1] + ty*t[3] + t[5]
	w.tm = w.tlm
}

// show writes a string's text, after a line break, paragraph break or
// space when its position says so, and advances the text matrix.
func (w *pdfText) show(s pdfStr) {
	f := w.font
	if f == nil {
		f = w.doc.font(nil)
		w.font = f
	}
	size := w.fs * math.Hypot(w.tm[2], w.tm[3])
	if size <= 0 {
		size = math.Abs(w.fs)
	}
	x, y := w.tm[4], w.tm[5]
	if w.started {
		dy := math.Abs(y - w.lastY)
		ref := math.Max(size, w.lastSize)
		switch {
		case dy > 1.7*ref:
			w.b.WriteString("\n\n")
			w.spaceOK, w.pending = false, false
		case dy > 0.5*ref:
			w.b.WriteString("\n")
			w.spaceOK, w.pending = false, false
		case x > w.lastX+0.15*ref || x < w.lastX-ref:
			w.pending = w.pending || w.spaceOK
		}
	}
	step := 1
	if f.twoByte {
		step = 2
	}
	// Character spacing as wide as a space separates the glyphs into
	// words (Ghostscript writes "A c" as (Ac) with Tc).
	wideTc := w.tc*w.th > 0.15*math.Abs(w.fs)
	for i := 0; i+step <= len(s); i += step {
		if i > 0 && wideTc && w.spaceOK {
			w.pending = true
		}
		c := int(s[i])
		if step == 2 {
			c = c<<8 | int(s[i+1])
		}
		txt, ok := f.toUni[c]
		if !ok && !f.twoByte {
			if r := f.enc[c]; r != 0 {
				txt = string(r)
			}
		}
		txt = strings.Map(func(r rune) rune {
			if r == 0 || r == 0xFFFD || (r < 32 && r != '\t') {
				return -1
			}
			if r == 0xA0 {
				return ' '
			}
			return r
		}, txt)
		if strings.TrimSpace(txt) == "" && txt != "" {
			w.pending = w.pending || w.spaceOK
		} else if txt != "" {
			if w.pending {
				w.b.WriteByte(' ')
			}
			w.b.WriteString(strings.TrimRight(txt, " "))
			w.spaceOK, w.pending = true, strings.HasSuffix(txt, " ")
		}
		wd, ok := f.widths[c]
		if !ok {
			wd = f.defWidth
		}
		adv := (wd/1000*w.fs + w.tc) * w.th
		if step == 1 && c == 32 {
			adv += w.tw * w.th
		}
		w.tm[4] += adv * w.tm[0]
		w.tm[5] += adv * w.tm[1]
	}
	w.lastX, w.lastY, w.lastSize, w.started = w.tm[4], w.tm[5], size, true
}

// pdfLexer reads PDF tokens and objects.
type pdfLexer struct {
	b   []byte
	pos int
}

func isPDFSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0
}

func isPDFDelim(c byte) bool { return strings.IndexByte("()<>[]{}/%", c) >= 0 }

// next returns the next token: float64, pdfName, pdfStr, pdfOp (keywords,
// "<<", ">>", "[", "]"), or nil at the end.
func (lx *pdfLexer) next() any {
	b := lx.b
	for lx.pos < len(b) {
		c := b[lx.pos]
		if isPDFSpace(c) {
			lx.pos++
			continue
		}
		if c == '%' {
			for lx.pos < len(b) && b[lx.pos] != '\n' && b[lx.pos] != '\r' {
				lx.pos++
			}
			continue
		}
		break
	}
	if lx.pos >= len(b) {
		return nil
	}
	c := b[lx.pos]
	switch {
	case c == '/':
		lx.pos++
		start := lx.pos
		for lx.pos < len(b) && !isPDFSpace(b[lx.pos]) && !isPDFDelim(b[lx.pos]) {
			lx.pos++
		}
		name := string(b[start:lx.pos])
		if strings.Contains(name, "#") {
			var o strings.Builder
			for i := 0; i < len(name); i++ {
				if name[i] == '#' && i+2 < len(name) {
					if v, err := strconv.ParseUint(name[i+1:i+3], 16, 8); err == nil {
						o.WriteByte(byte(v))
						i += 2
						continue
					}
				}
				o.WriteByte(name[i])
			}
			name = o.String()
		}
		return pdfName(name)
	case c == '(':
		return lx.literal()
	case c == '<':
		if lx.pos+1 < len(b) && b[lx.pos+1] == '<' {
			lx.pos += 2
			return pdfOp("<<")
		}
		lx.pos++
		end := bytes.IndexByte(b[lx.pos:], '>')
		if end < 0 {
			end = len(b) - lx.pos
		}
		h := bytes.Map(func(r rune) rune {
			if strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return r
			}
			return -1
		}, b[lx.pos:lx.pos+end])
		lx.pos += end + 1
		if len(h)%2 == 1 {
			h = append(h, '0')
		}
		out := make([]byte, len(h)/2)
		_, _ = hex.Decode(out, h)
		return pdfStr(out)
	case c == '>':
		if lx.pos+1 < len(b) && b[lx.pos+1] == '>' {
			lx.pos += 2
			return pdfOp(">>")
		}
		lx.pos++
		return pdfOp("")
	case c == '[' || c == ']' || c == '{' || c == '}':
		lx.pos++
		return pdfOp(string(c))
	case c == ')':
		lx.pos++
		return pdfOp("")
	case c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9'):
		start := lx.pos
		lx.pos++
		for lx.pos < len(b) && (b[lx.pos] == '.' || (b[lx.pos] >= '0' && b[lx.pos] <= '9')) {
			lx.pos++
		}
		f, err := strconv.ParseFloat(string(b[start:lx.pos]), 64)
		if err != nil {
			return 0.0
		}
		return f
	}
	start := lx.pos
	for lx.pos < len(b) && !isPDFSpace(b[lx.pos]) && !isPDFDelim(b[lx.pos]) {
		lx.pos++
	}
	if lx.pos == start {
		lx.pos++
	}
	return pdfOp(string(b[start:lx.pos]))
}

// literal reads a (string) with escapes and balanced parentheses.
func (lx *pdfLexer) literal() pdfStr {
	b := lx.b
	lx.pos++
	depth := 1
	var out []byte
	for lx.pos < len(b) {
		c := b[lx.pos]
		lx.pos++
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return out
			}
		case '\\':
			if lx.pos >= len(b) {
				return out
			}
			e := b[lx.pos]
			lx.pos++
			switch e {
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case '\r':
				if lx.pos < len(b) && b[lx.pos] == '\n' {
					lx.pos++
				}
			case '\n':
			default:
				if e >= '0' && e <= '7' {
					v := int(e - '0')
					for k := 0; k < 2 && lx.pos < len(b) && b[lx.pos] >= '0' && b[lx.pos] <= '7'; k++ {
						v = v*8 + int(b[lx.pos]-'0')
						lx.pos++
					}
					out = append(out, byte(v))
				} else {
					out = append(out, e)
				}
			}
			continue
		}
		out = append(out, c)
	}
	return out
}

// object reads one object: arrays and dictionaries whole, "n g R" as a
// reference (d may be nil: then no references are recognised).
func (lx *pdfLexer) object(d *pdfDoc) any {
	t := lx.next()
	return lx.finish(t, d, 0)
}

func (lx *pdfLexer) finish(t any, d *pdfDoc, depth int) any {
	if depth > 256 {
		return nil
	}
	switch v := t.(type) {
	case pdfOp:
		switch v {
		case "[":
			var arr pdfArray
			for {
				x := lx.next()
				if x == nil || x == pdfOp("]") {
					return arr
				}
				arr = append(arr, lx.finish(x, d, depth+1))
			}
		case "<<":
			dict := pdfDict{}
			for {
				k := lx.next()
				if k == nil || k == pdfOp(">>") {
					return dict
				}
				name, ok := k.(pdfName)
				if !ok {
					continue
				}
				dict[name] = lx.finish(lx.next(), d, depth+1)
			}
		}
	case float64:
		if d == nil {
			return v
		}
		save := lx.pos
		g, ok := lx.next().(float64)
		if ok {
			if r, ok := lx.next().(pdfOp); ok && r == "R" {
				return pdfRef{int(v), int(g)}
			}
		}
		lx.pos = save
		return v
	}
	return t
}

// Encodings of simple fonts.
var stdEncoding, winAnsi, macRoman [256]rune

func namedEncoding(n pdfName, def [256]rune) [256]rune {
	switch n {
	case "WinAnsiEncoding":
		return winAnsi
	case "MacRomanEncoding":
		return macRoman
	case "StandardEncoding":
		return stdEncoding
	}
	return def
}

// glyphNames maps Adobe glyph names to characters: ASCII, Latin-1, the
// Windows-1252 extras and common ligatures.
var glyphNames = map[string]string{}

func glyphRune(name string) (rune, bool) {
	if s, ok := glyphNames[name]; ok {
		r := []rune(s)
		if len(r) == 1 {
			return r[0], true
		}
		return ligature(s), true
	}
	if h, ok := strings.CutPrefix(name, "uni"); ok && len(h) >= 4 {
		if v, err := strconv.ParseUint(h[:4], 16, 32); err == nil {
			return rune(v), true
		}
	}
	if h, ok := strings.CutPrefix(name, "u"); ok && len(h) >= 4 && len(h) <= 6 {
		if v, err := strconv.ParseUint(h, 16, 32); err == nil {
			return rune(v), true
		}
	}
	if i := strings.IndexByte(name, '.'); i > 0 { // "a.sc", "one.oldstyle"
		return glyphRune(name[:i])
	}
	return 0, false
}

// ligature returns the presentation character of a ligature glyph name;
// PDFText expands it back into letters (expandLigatures).
func ligature(s string) rune {
	switch s {
	case "ff":
		return 'ﬀ'
	case "fi":
		return 'ﬁ'
	case "fl":
		return 'ﬂ'
	case "ffi":
		return 'ﬃ'
	case "ffl":
		return 'ﬄ'
	}
	return 0
}

func init() {
	ascii := []string{"space", "exclam", "quotedbl", "numbersign", "dollar", "percent", "ampersand", "quotesingle", "parenleft", "parenright",
		"asterisk", "plus", "comma", "hyphen", "period", "slash", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
		"colon", "semicolon", "less", "equal", "greater", "question", "at"}
	for i, n := range ascii {
		glyphNames[n] = string(rune(0x20 + i))
	}
	for c := 'A'; c <= 'Z'; c++ {
		glyphNames[string(c)] = string(c)
		glyphNames[string(c+32)] = string(c + 32)
	}
	for i, n := range []string{"bracketleft", "backslash", "bracketright", "asciicircum", "underscore", "grave"} {
		glyphNames[n] = string(rune(0x5B + i))
	}
	for i, n := range []string{"braceleft", "bar", "braceright", "asciitilde"} {
		glyphNames[n] = string(rune(0x7B + i))
	}
	latin1 := []string{"nbspace", "exclamdown", "cent", "sterling", "currency", "yen", "brokenbar", "section", "dieresis", "copyright",
		"ordfeminine", "guillemotleft", "logicalnot", "sfthyphen", "registered", "macron", "degree", "plusminus", "twosuperior", "threesuperior",
		"acute", "mu", "paragraph", "periodcentered", "cedilla", "onesuperior", "ordmasculine", "guillemotright", "onequarter", "onehalf",
		"threequarters", "questiondown", "Agrave", "Aacute", "Acircumflex", "Atilde", "Adieresis", "Aring", "AE", "Ccedilla", "Egrave", "Eacute",
		"Ecircumflex", "Edieresis", "Igrave", "Iacute", "Icircumflex", "Idieresis", "Eth", "Ntilde", "Ograve", "Oacute", "Ocircumflex", "Otilde",
		"Odieresis", "multiply", "Oslash", "Ugrave", "Uacute", "Ucircumflex", "Udieresis", "Yacute", "Thorn", "germandbls", "agrave", "aacute",
		"acircumflex", "atilde", "adieresis", "aring", "ae", "ccedilla", "egrave", "eacute", "ecircumflex", "edieresis", "igrave", "iacute",
		"icircumflex", "idieresis", "eth", "ntilde", "ograve", "oacute", "ocircumflex", "otilde", "odieresis", "divide", "oslash", "ugrave",
		"uacute", "ucircumflex", "udieresis", "yacute", "thorn", "ydieresis"}
	for i, n := range latin1 {
		glyphNames[n] = string(rune(0xA0 + i))
	}
	cp1252 := map[int]string{0x80: "Euro", 0x82: "quotesinglbase", 0x83: "florin", 0x84: "quotedblbase", 0x85: "ellipsis", 0x86: "dagger",
		0x87: "daggerdbl", 0x88: "circumflex", 0x89: "perthousand", 0x8A: "Scaron", 0x8B: "guilsinglleft", 0x8C: "OE", 0x8E: "Zcaron",
		0x91: "quoteleft", 0x92: "quoteright", 0x93: "quotedblleft", 0x94: "quotedblright", 0x95: "bullet", 0x96: "endash", 0x97: "emdash",
		0x98: "tilde", 0x99: "trademark", 0x9A: "scaron", 0x9B: "guilsinglright", 0x9C: "oe", 0x9E: "zcaron", 0x9F: "Ydieresis"}
	cp := map[string]rune{"Euro": '€', "quotesinglbase": '‚', "florin": 'ƒ', "quotedblbase": '„', "ellipsis": '…', "dagger": '†', "daggerdbl": '‡',
		"circumflex": 'ˆ', "perthousand": '‰', "Scaron": 'Š', "guilsinglleft": '‹', "OE": 'Œ', "Zcaron": 'Ž', "quoteleft": '‘', "quoteright": '’',
		"quotedblleft": '“', "quotedblright": '”', "bullet": '•', "endash": '–', "emdash": '—', "tilde": '˜', "trademark": '™', "scaron": 'š',
		"guilsinglright": '›', "oe": 'œ', "zcaron": 'ž', "Ydieresis": 'Ÿ', "dotlessi": 'ı', "minus": '−', "fraction": '⁄', "Lslash": 'Ł', "lslash": 'ł'}
	for n, r := range cp {
		glyphNames[n] = string(r)
	}
	for _, l := range []string{"ff", "fi", "fl", "ffi", "ffl"} {
		glyphNames[l] = l
	}
	for i := 0x20; i < 0x7F; i++ {
		stdEncoding[i], winAnsi[i], macRoman[i] = rune(i), rune(i), rune(i)
	}
	stdEncoding[0x27], stdEncoding[0x60] = '’', '‘'
	for i := 0xA0; i <= 0xFF; i++ {
		winAnsi[i] = rune(i)
	}
	for c, n := range cp1252 {
		winAnsi[c] = cp[n]
	}
	// The Latin letters of MacRoman's upper half that Portuguese and
	// other Western languages use.
	mac := "ÄÅÇÉÑÖÜáàâäãåçéèêëíìîïñóòôöõúùûü†°¢£§•¶ß®©™´¨≠ÆØ∞±≤≥¥µ∂∑∏π∫ªºΩæø¿¡¬√ƒ≈∆«»… ÀÃÕŒœ–—“”‘’÷◊ÿŸ⁄€‹›ﬁﬂ‡·‚„‰ÂÊÁËÈÍÎÏÌÓÔ\uf8ffÒÚÛÙıˆ˜¯˘˙˚¸˝˛ˇ"
	for i, r := range []rune(mac) {
		if 0x80+i < 256 {
			macRoman[0x80+i] = r
		}
	}
	// StandardEncoding's upper half, for the letters it has.
	for c, n := range map[int]string{0xA1: "exclamdown", 0xA2: "cent", 0xA3: "sterling", 0xA5: "yen", 0xA7: "section", 0xA9: "quotesingle",
		0xAA: "quotedblleft", 0xAB: "guillemotleft", 0xAE: "fi", 0xAF: "fl", 0xB1: "endash", 0xB7: "periodcentered", 0xBA: "quotedblright",
		0xBB: "guillemotright", 0xBC: "ellipsis", 0xBF: "questiondown", 0xC1: "grave", 0xC2: "acute", 0xC3: "circumflex", 0xC4: "tilde",
		0xC8: "dieresis", 0xCB: "cedilla", 0xD0: "emdash", 0xE1: "AE", 0xF1: "ae", 0xF5: "dotlessi", 0xF8: "lslash", 0xF9: "oslash",
		0xFA: "oe", 0xFB: "germandbls", 0xE8: "Lslash", 0xE9: "Oslash", 0xEA: "OE"} {
		if r, ok := glyphRune(n); ok {
			stdEncoding[c] = r
		}
	}
}

// expandLigatures turns the ligature characters fonts use back into
// letters.
var expandLigatures = strings.NewReplacer("ﬀ", "ff", "ﬁ", "fi", "ﬂ", "fl", "ﬃ", "ffi", "ﬄ", "ffl", "\u00ad", "")
