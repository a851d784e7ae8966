package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Llama2C is a SentencePiece-style BPE tokenizer: a llama2.c
// tokenizer.bin, a SentencePiece tokenizer.model or a GGUF "llama"
// vocabulary (Llama 2, Mistral, Gemma).
//
// A Llama2C is safe for concurrent use once built.
type Llama2C struct {
	vocab  []string
	scores []float32
	ids    map[string]int
	byteID [256]int // id of the <0xNN> token for each byte, -1 when absent

	// types are the GGUF token types (nil for llama2.c files: derived).
	types    []int32
	bos, eos int
	// noPrefix drops the dummy-prefix space (SentencePiece
	// add_dummy_prefix false, GGUF add_space_prefix false: Gemma).
	noPrefix bool
	// specs are the user-defined and control tokens matched in the text as
	// whole strings before the merges (longest first), as llama.cpp and
	// SentencePiece's user-defined symbols do; BOS, EOS, unknown and
	// padding are never matched, so "<s>" in a text stays text.
	specs [256][]specialTok
	eog   map[int]bool
	// spaceID is the id of " " (-1 when absent); beforeSpace[b] is set
	// when some token has byte b followed by a space inside it. Encode
	// cuts a long text before a space whose left neighbour cannot merge
	// with it, so the merges run over bounded pieces with the same result.
	spaceID     int
	beforeSpace [256]bool
	// ascii is the id of each one-byte character, -1 when absent.
	ascii [128]int32

	// scratch holds the working memory of Encode (*spmScratch), with its
	// cache of short pieces, between calls.
	scratch sync.Pool
}

// The llama2.c conventions for special tokens.
const (
	llama2cBOS = 1
	llama2cEOS = 2
)

// LoadLlama2C reads a llama2.c tokenizer.bin holding vocabSize tokens (the
// vocabulary size comes from the model's header): an int32 max token length,
// then per token a float32 score, an int32 byte length and the bytes.
func LoadLlama2C(path string, vocabSize int) (*Llama2C, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	t, err := ParseLlama2C(data, vocabSize)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return t, nil
}

// ParseLlama2C parses the bytes of a llama2.c tokenizer.bin.
func ParseLlama2C(data []byte, vocabSize int) (*Llama2C, error) {
	if vocabSize < 3 || vocabSize > 1<<22 {
		return nil, fmt.Errorf("vocabulary size %d is out of range (3 to %d: <unk>, BOS and EOS come first)", vocabSize, 1<<22)
	}
	if len(data) < 4 {
		return nil, fmt.Errorf("truncated: %d bytes, not a llama2.c tokenizer.bin", len(data))
	}
	maxLen := int(int32(binary.LittleEndian.Uint32(data)))
	if maxLen <= 0 || maxLen > 1<<16 {
		return nil, fmt.Errorf("max token length %d is out of range: not a llama2.c tokenizer.bin", maxLen)
	}
	// Each token takes at least 8 bytes (score, length): check before
	// allocating what the model header claims.
	if room := (len(data) - 4) / 8; vocabSize > room {
		return nil, fmt.Errorf("truncated: %d bytes hold at most %d tokens, the model says %d; the tokenizer does not belong to the model or is incomplete", len(data), room, vocabSize)
	}
	t := &Llama2C{
		vocab:  make([]string, vocabSize),
		scores: make([]float32, vocabSize),
		ids:    make(map[string]int, vocabSize),
	}
	off := 4
	for i := 0; i < vocabSize; i++ {
		if off+8 > len(data) {
			return nil, fmt.Errorf("truncated at token %d of %d (offset %d)", i, vocabSize, off)
		}
		t.scores[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		if n < 0 || n > maxLen || off+n > len(data) {
			return nil, fmt.Errorf("token %d has length %d (max %d, %d bytes left)", i, n, maxLen, len(data)-off)
		}
		t.vocab[i] = string(data[off : off+n])
		off += n
		if _, dup := t.ids[t.vocab[i]]; !dup {
			t.ids[t.vocab[i]] = i
		}
	}
	t.bos, t.eos = llama2cBOS, llama2cEOS
	t.index()
	return t, nil
}

// index derives the byte tokens, the space id and the safe cut points
// from the vocabulary.
func (t *Llama2C) index() {
	for b := range t.byteID {
		t.byteID[b] = -1
		if id, ok := t.ids[fmt.Sprintf("<0x%02X>", b)]; ok {
			t.byteID[b] = id
		}
	}
	for c := range t.ascii {
		t.ascii[c] = -1
		if id, ok := t.ids[string(rune(c))]; ok {
			t.ascii[c] = int32(id)
		}
	}
	t.spaceID = -1
	if id, ok := t.ids[" "]; ok {
		t.spaceID = id
	}
	t.beforeSpace = [256]bool{}
	for _, s := range t.vocab {
		for i := 1; i < len(s); i++ {
			if s[i] == ' ' {
				t.beforeSpace[s[i-1]] = true
			}
		}
	}
}

// VocabSize is the number of tokens.
func (t *Llama2C) VocabSize() int { return len(t.vocab) }

// BOS is the beginning-of-sequence id (1 in llama2.c and Llama 2, 2 in Gemma).
func (t *Llama2C) BOS() int { return t.bos }

// EOS is the end-of-sequence id (2 in llama2.c and Llama 2, 1 in Gemma).
func (t *Llama2C) EOS() int { return t.eos }

// IsEOG reports whether generation ends at id: EOS, or a control token
// that ends a chat turn (<end_of_turn> in Gemma).
func (t *Llama2C) IsEOG(id int) bool { return id == t.eos || t.eog[id] }

// Token returns the vocabulary piece of id, or "" when out of range.
func (t *Llama2C) Token(id int) string {
	if id < 0 || id >= len(t.vocab) {
		return ""
	}
	return t.vocab[id]
}

// ID returns the id of a vocabulary piece.
func (t *Llama2C) ID(piece string) (int, bool) { id, ok := t.ids[piece]; return id, ok }

// Encode tokenizes text as llama2.c's encode() does, for any length: an
// optional BOS, a dummy-prefix space (unless the vocabulary says not to),
// one piece per UTF-8 character (bytes of unknown characters become <0xNN>
// tokens), then repeated merges of the adjacent pair whose merged piece has
// the highest score (leftmost on ties), and an optional EOS. User-defined
// and control tokens other than BOS, EOS, unknown and padding (Gemma's
// <start_of_turn>, "\n") are taken whole from the text first; the text
// between them gets its own dummy prefix, as in llama.cpp.
//
// The merges run with a priority queue over a linked list of symbols
// (sentencepiece's bpe_model, llama.cpp's llm_tokenizer_spm), and a long
// text is merged in pieces cut before spaces that no token spans, so the
// time is O(n log n) and the working memory bounded whatever the length.
func (t *Llama2C) Encode(text string, addBOS, addEOS bool) []int {
	out := make([]int, 0, len(text)/3+3)
	if addBOS {
		out = append(out, t.bos)
	}
	sc, _ := t.scratch.Get().(*spmScratch)
	if sc == nil {
		sc = new(spmScratch)
	}
	start := 0
	for i := 0; i < len(text); i++ {
		for _, sp := range t.specs[text[i]] {
			if strings.HasPrefix(text[i:], sp.text) {
				out = t.encodeText(out, text[start:i], sc)
				out = append(out, sp.id)
				start = i + len(sp.text)
				i = start - 1
				break
			}
		}
	}
	out = t.encodeText(out, text[start:], sc)
	t.scratch.Put(sc)
	if addEOS {
		out = append(out, t.eos)
	}
	return out
}

// spmCacheWords bounds the per-scratch cache of short pieces;
// spmCachedLen is the longest piece cached.
const (
	spmCacheWords = 1 << 14
	spmCachedLen  = 64
)

// encodeText appends the ids of a text without special tokens. The text
// is cut before every space that cannot merge with its left neighbour
// (no token holds that symbol's last byte followed by a space), and each
// piece is merged on its own: the same result as merging the whole, in
// bounded memory, and short pieces (words) are remembered.
func (t *Llama2C) encodeText(out []int, text string, sc *spmScratch) []int {
	if text == "" {
		return out
	}
	// SentencePiece writes spaces as "▁": one in the text is a space.
	text = strings.ReplaceAll(text, spmSpace, " ")
	prefix := !t.noPrefix && t.spaceID >= 0
	start := 0
	for i := 1; i < len(text); i++ {
		if text[i] != ' ' || t.spaceID < 0 || !t.canCut(text, i) {
			continue
		}
		out = t.encodePiece(out, text[start:i], prefix, sc)
		prefix, start = false, i
	}
	return t.encodePiece(out, text[start:], prefix, sc)
}

// canCut reports whether no merge can join the symbol that ends at
// text[i] with the space at text[i].
func (t *Llama2C) canCut(text string, i int) bool {
	last := text[i-1]
	known := last < utf8.RuneSelf && t.ascii[last] >= 0
	if !known {
		_, size := utf8.DecodeLastRuneInString(text[:i])
		_, known = t.ids[text[i-size:i]]
	}
	if !known {
		// The left symbol is the byte token of text[i-1].
		id := t.byteID[last]
		if id < 0 {
			id = int(last) + 3
		}
		s := t.Token(id)
		if s == "" {
			return false
		}
		last = s[len(s)-1]
	}
	return !t.beforeSpace[last]
}

// encodePiece appends the ids of one piece of text, with the dummy-prefix
// space first when prefix is set.
func (t *Llama2C) encodePiece(out []int, piece string, prefix bool, sc *spmScratch) []int {
	if piece == "" && !prefix {
		return out
	}
	cacheable := !prefix && len(piece) <= spmCachedLen
	if cacheable {
		if ids, ok := sc.cache[piece]; ok {
			return append(out, ids...)
		}
	}
	syms := sc.syms[:0]
	add := func(id int) {
		n := int32(len(syms))
		syms = append(syms, spmSym{id: int32(id), prev: n - 1, next: n + 1})
	}
	if prefix {
		add(t.spaceID)
	}
	for i := 0; i < len(piece); {
		if c := piece[i]; c < utf8.RuneSelf && t.ascii[c] >= 0 {
			add(int(t.ascii[c]))
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(piece[i:])
		if id, ok := t.ids[piece[i:i+size]]; ok {
			add(id)
		} else {
			for _, b := range []byte(piece[i : i+size]) {
				// run.c maps byte b to id b+3; use the vocabulary's own <0xNN> when present,
				// and <unk> (0) when b+3 is past a small vocabulary without byte pieces.
				switch id := t.byteID[b]; {
				case id >= 0:
					add(id)
				case int(b)+3 < len(t.vocab):
					add(int(b) + 3)
				default:
					add(0)
				}
			}
		}
		i += size
	}
	n := len(out)
	out = t.merge(out, syms, sc)
	sc.syms = syms[:0]
	if cacheable {
		if sc.cache == nil || len(sc.cache) >= spmCacheWords {
			sc.cache = make(map[string][]int, 1024)
		}
		sc.cache[strings.Clone(piece)] = slices.Clone(out[n:])
	}
	return out
}

// spmSym is one symbol of the text being merged; prev and next link the
// live symbols (-1 and len at the ends); a merged-away symbol has id -1.
type spmSym struct {
	id, prev, next int32
}

// spmCand is a queued adjacent pair: its merged piece's score and id, the
// left symbol's index, and both ids when queued (to drop stale entries).
type spmCand struct {
	score       float32
	left        int32
	leftID, rID int32
	merged      int32
}

// before orders the queue: the highest score first, the leftmost on ties.
func (c spmCand) before(d spmCand) bool {
	return c.score > d.score || (c.score == d.score && c.left < d.left)
}

type spmScratch struct {
	syms  []spmSym
	heap  []spmCand
	buf   []byte
	cache map[string][]int // short piece -> ids
}

// merge runs the merges over syms (a linked list in index order) and
// appends the resulting ids.
func (t *Llama2C) merge(out []int, syms []spmSym, sc *spmScratch) []int {
	n := int32(len(syms))
	if n == 0 {
		return out
	}
	h := sc.heap[:0]
	push := func(left int32) {
		if left < 0 {
			return
		}
		r := syms[left].next
		if r >= n {
			return
		}
		a, b := t.Token(int(syms[left].id)), t.Token(int(syms[r].id))
		sc.buf = append(append(sc.buf[:0], a...), b...)
		id, ok := t.ids[string(sc.buf)]
		// The old scan kept a pair only when its score beat -1e10.
		if !ok || !(t.scores[id] > -1e10) {
			return
		}
		h = heapPush(h, spmCand{score: t.scores[id], left: left, leftID: syms[left].id, rID: syms[r].id, merged: int32(id)}, spmCand.before)
	}
	pop := func() spmCand {
		var top spmCand
		top, h = heapPop(h, spmCand.before)
		return top
	}
	for i := int32(0); i+1 < n; i++ {
		push(i)
	}
	for len(h) > 0 {
		c := pop()
		l := &syms[c.left]
		if l.id != c.leftID || l.next >= n || syms[l.next].id != c.rID {
			continue // stale: one side was merged since
		}
		r := l.next
		l.id = c.merged
		l.next = syms[r].next
		if l.next < n {
			syms[l.next].prev = c.left
		}
		syms[r].id = -1
		push(l.prev)
		push(c.left)
	}
	for i := int32(0); i < n; i = syms[i].next {
		out = append(out, int(syms[i].id))
	}
	sc.heap = h[:0]
	return out
}

// Piece returns the text of token id as printed after token prev, like
// llama2.c's decode(): the leading space of a piece following BOS is
// dropped, byte tokens <0xNN> become the raw byte, and control tokens
// (when the vocabulary marks them) print nothing.
func (t *Llama2C) Piece(prev, id int) string {
	if t.types != nil && id >= 0 && id < len(t.types) && (t.types[id] == TokenControl || t.types[id] == TokenUnused) {
		return ""
	}
	p := t.Token(id)
	if prev == t.bos && strings.HasPrefix(p, " ") && !t.noPrefix {
		p = p[1:]
	}
	if len(p) == 6 && strings.HasPrefix(p, "<0x") && p[5] == '>' {
		if b, err := strconv.ParseUint(p[3:5], 16, 8); err == nil {
			return string([]byte{byte(b)})
		}
	}
	return p
}

// Decode turns ids back into text, skipping BOS and EOS.
func (t *Llama2C) Decode(ids []int) string {
	var sb strings.Builder
	prev := t.bos
	for _, id := range ids {
		if id != t.bos && id != t.eos {
			sb.WriteString(t.Piece(prev, id))
		}
		prev = id
	}
	return sb.String()
}
