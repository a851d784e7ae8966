package tokenizer

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// BPE is a GPT-2-style byte-level BPE tokenizer (GPT-2, SmolLM, Llama 3,
// Qwen2). Text is first cut at special tokens (matched as whole strings,
// longest first), the rest is split into pre-tokens by the family's
// pattern, each pre-token's UTF-8 bytes become one token each (bytes written
// as GPT-2's printable alphabet: space is "Ġ", newline "Ċ"), and within a
// pre-token the adjacent pair whose merge comes first in the merge list is
// merged until no listed merge applies.
//
// A BPE is safe for concurrent use.
type BPE struct {
	tokens []string // vocabulary strings as stored (byte-level alphabet)
	types  []int32  // GGUF token types
	ids    map[string]int
	pieces []string // decoded text of each token ("" for control tokens)

	byteID [256]int          // token of each single byte
	merges map[uint64]merge  // (left id, right id) -> merge
	specs  [256][]specialTok // special tokens by first byte, longest first

	bos, eos int
	pre      preTokenizer
	// ignoreMerges takes a pre-token that is itself in the vocabulary as
	// that one token without running the merges (Llama 3).
	ignoreMerges bool
	// addPrefixSpace puts a space before text that does not start with one
	// (ByteLevel add_prefix_space).
	addPrefixSpace bool
	// nfc puts text in Unicode normal form C first (Qwen2's normalizer).
	nfc bool
	// addBOS and addEOS say whether the model was trained with BOS/EOS
	// around each text (tokenizer.ggml.add_bos_token, tokenizer_config.json).
	addBOS, addEOS bool

	// fallback is a SentencePiece-style BPE (tokenizer.json with
	// byte_fallback: Llama 2, Mistral, Gemma): the text between special
	// tokens is normalized (spaces become "▁", with "▁" put first when
	// prependMeta is set), split into characters, a character missing
	// from the vocabulary becomes its <0xNN> byte tokens (or unk), and the
	// pairs are merged by rank as for byte-level BPE.
	fallback    bool
	prependMeta bool
	unk         int // -1 when none
	fuseUnk     bool
	// stripLeading drops one leading space when decoding (the Strip
	// decoder of Llama 2's tokenizer.json, undoing the prepended "▁").
	stripLeading bool
	// metaID is the id of "▁" (-1 when absent); beforeMeta[b] is set when
	// some token holds byte b followed by "▁". A long text is merged in
	// pieces cut before a "▁" whose left neighbour cannot merge with it.
	metaID     int
	beforeMeta [256]bool
	// ascii is the id of each one-byte character, -1 when absent
	// (fallback only).
	ascii [128]int32

	mu    sync.Mutex
	cache map[string][]int // pre-token -> ids
}

type merge struct {
	rank int32
	id   int32 // the merged token
}

type specialTok struct {
	text string
	id   int
}

// GGUF tokenizer.ggml.token_type values.
const (
	TokenNormal      = 1
	TokenUnknown     = 2
	TokenControl     = 3
	TokenUserDefined = 4
	TokenUnused      = 5
	TokenByte        = 6
)

// maxCacheEntries bounds the per-tokenizer pre-token cache; pre-tokens
// longer than maxCachedWord bytes (long whitespace runs, text without
// spaces) are not cached, so the cache stays a few MB at most.
const (
	maxCacheEntries = 1 << 16
	maxCachedWord   = 64
)

// byteToUnicode is GPT-2's bytes_to_unicode(): the printable Latin-1 bytes
// stand for themselves, the others (controls, space, 0x7f-0xa0, 0xad) are
// given the code points from U+0100 on, in byte order.
func byteToUnicode() [256]rune {
	var t [256]rune
	n := rune(0)
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xa1 <= b && b <= 0xac) || (0xae <= b && b <= 0xff) {
			t[b] = rune(b)
		} else {
			t[b] = 256 + n
			n++
		}
	}
	return t
}

// unicodeToByte inverts byteToUnicode: index r (< 0x144) gives the byte + 1,
// 0 for runes outside the alphabet.
func unicodeToByte() [0x144]int16 {
	var u [0x144]int16
	for b, r := range byteToUnicode() {
		u[r] = int16(b) + 1
	}
	return u
}

// ByteLevel returns text written in GPT-2's byte alphabet, the form
// vocabulary strings of byte-level BPE take ("Ġthe" for " the").
func ByteLevel(text string) string {
	t := byteToUnicode()
	var sb strings.Builder
	sb.Grow(len(text) * 2)
	for i := 0; i < len(text); i++ {
		sb.WriteRune(t[text[i]])
	}
	return sb.String()
}

// byteLevelDecode turns a vocabulary string back into the bytes it stands
// for; ok is false when s holds a character outside the byte alphabet.
func byteLevelDecode(u *[0x144]int16, s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r >= 0x144 || u[r] == 0 {
			return s, false
		}
		b = append(b, byte(u[r]-1))
	}
	return string(b), true
}

// NewBPE builds a byte-level BPE tokenizer from the GGUF layout:
// tokens (tokenizer.ggml.tokens, in the byte alphabet), merges
// (tokenizer.ggml.merges, "left right" in priority order), types
// (tokenizer.ggml.token_type; nil means all normal; control (3) and
// user-defined (4) tokens are matched in the text as whole strings), the
// BOS and EOS ids (-1 for none) and pre (tokenizer.ggml.pre: "gpt2",
// "default", "smollm", "llama-bpe", "qwen2").
func NewBPE(tokens []string, merges []string, types []int32, bos, eos int, pre string) (*BPE, error) {
	pairs := make([][2]string, len(merges))
	for i, m := range merges {
		a, b, ok := strings.Cut(m, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("tokenizer: merge %d is %q, not two tokens separated by one space; the merge list is damaged, re-download or re-convert the model", i, m)
		}
		pairs[i] = [2]string{a, b}
	}
	p, err := preTokenizerFor(pre)
	if err != nil {
		return nil, err
	}
	t, err := newBPE(tokens, pairs, types, bos, eos)
	if err != nil {
		return nil, err
	}
	t.pre = p
	t.ignoreMerges = p.kind == preLlama3 && !p.singleDigits
	return t, nil
}

func newBPE(tokens []string, merges [][2]string, types []int32, bos, eos int) (*BPE, error) {
	return newBPEMode(tokens, merges, types, bos, eos, false)
}

// newBPEMode builds a byte-level BPE, or with fallback a SentencePiece-style
// BPE with byte fallback tokens <0xNN>.
func newBPEMode(tokens []string, merges [][2]string, types []int32, bos, eos int, fallback bool) (*BPE, error) {
	n := len(tokens)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: the vocabulary is empty; the model file carries no tokenizer.ggml.tokens (or vocab), so it cannot be tokenized")
	}
	if n > 1<<31-1 {
		return nil, fmt.Errorf("tokenizer: %d tokens is more than this tokenizer supports", n)
	}
	if types != nil && len(types) != n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens; the model's tokenizer metadata is inconsistent", len(types), n)
	}
	for _, x := range []struct {
		name string
		id   int
	}{{"BOS", bos}, {"EOS", eos}} {
		if x.id < -1 || x.id >= n {
			return nil, fmt.Errorf("tokenizer: %s id %d is outside the vocabulary of %d tokens", x.name, x.id, n)
		}
	}
	t := &BPE{
		tokens: tokens,
		types:  types,
		ids:    make(map[string]int, n),
		pieces: make([]string, n),
		merges: make(map[uint64]merge, len(merges)),
		bos:    bos,
		eos:    eos,
		cache:  make(map[string][]int),

		fallback: fallback,
		unk:      -1,
		metaID:   -1,
	}
	if t.types == nil {
		t.types = make([]int32, n)
		for i := range t.types {
			t.types[i] = TokenNormal
		}
	}
	u := unicodeToByte()
	for id, s := range tokens {
		if _, dup := t.ids[s]; !dup {
			t.ids[s] = id
		}
		switch t.types[id] {
		case TokenControl, TokenUnused:
			t.pieces[id] = ""
		case TokenUserDefined:
			// Added tokens are stored as the text itself.
			t.pieces[id] = s
			if fallback {
				t.pieces[id] = strings.ReplaceAll(s, spmSpace, " ")
			}
		case TokenByte, TokenNormal, TokenUnknown:
			if fallback {
				t.pieces[id] = fallbackPiece(s)
				break
			}
			t.pieces[id], _ = byteLevelDecode(&u, s)
		default:
			t.pieces[id], _ = byteLevelDecode(&u, s)
		}
		if (t.types[id] == TokenControl || t.types[id] == TokenUserDefined) && s != "" {
			t.specs[s[0]] = append(t.specs[s[0]], specialTok{text: s, id: id})
		}
	}
	for b := range t.specs {
		slices.SortStableFunc(t.specs[b], func(x, y specialTok) int { return cmp.Compare(len(y.text), len(x.text)) })
	}
	if fallback {
		for b := range t.byteID {
			t.byteID[b] = -1
			if id, ok := t.ids[fmt.Sprintf("<0x%02X>", b)]; ok {
				t.byteID[b] = id
			}
		}
		if id, ok := t.ids[spmSpace]; ok {
			t.metaID = id
		}
		for c := range t.ascii {
			t.ascii[c] = -1
			if id, ok := t.ids[string(rune(c))]; ok {
				t.ascii[c] = int32(id)
			}
		}
		for _, s := range tokens {
			for i := strings.Index(s, spmSpace); i >= 0; {
				if i > 0 {
					t.beforeMeta[s[i-1]] = true
				}
				j := strings.Index(s[i+1:], spmSpace)
				if j < 0 {
					break
				}
				i += 1 + j
			}
		}
	}
	for b, r := range byteToUnicode() {
		if fallback {
			break
		}
		id, ok := t.ids[string(r)]
		if !ok {
			return nil, fmt.Errorf("tokenizer: the vocabulary has no token %q for byte 0x%02x, so it is not a byte-level BPE vocabulary (GPT-2 style); check the tokenizer type of the model", string(r), b)
		}
		t.byteID[b] = id
	}
	for i, m := range merges {
		a, okA := t.ids[m[0]]
		b, okB := t.ids[m[1]]
		c, okC := t.ids[m[0]+m[1]]
		switch {
		case !okA:
			return nil, fmt.Errorf("tokenizer: merge %d (%q %q) uses %q, which is not in the vocabulary; the merges do not belong to this vocabulary", i, m[0], m[1], m[0])
		case !okB:
			return nil, fmt.Errorf("tokenizer: merge %d (%q %q) uses %q, which is not in the vocabulary; the merges do not belong to this vocabulary", i, m[0], m[1], m[1])
		case !okC:
			return nil, fmt.Errorf("tokenizer: merge %d (%q %q) makes %q, which is not in the vocabulary; the merges do not belong to this vocabulary", i, m[0], m[1], m[0]+m[1])
		}
		key := pairKey(a, b)
		if _, dup := t.merges[key]; !dup {
			t.merges[key] = merge{rank: int32(i), id: int32(c)}
		}
	}
	return t, nil
}

// fallbackPiece is the text a SentencePiece-style token stands for: "▁"
// is a space, <0xNN> the byte.
func fallbackPiece(s string) string {
	if len(s) == 6 && strings.HasPrefix(s, "<0x") && s[5] == '>' {
		if b, err := strconv.ParseUint(s[3:5], 16, 8); err == nil {
			return string([]byte{byte(b)})
		}
	}
	return strings.ReplaceAll(s, spmSpace, " ")
}

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// AddBOS reports whether the model expects BOS before each text (what
// Encode's addBOS should be when the caller has no reason to differ).
func (t *BPE) AddBOS() bool { return t.addBOS && t.bos >= 0 }

// AddEOS reports whether the model expects EOS after each text.
func (t *BPE) AddEOS() bool { return t.addEOS && t.eos >= 0 }

// SetAddSpecial records whether the model expects BOS and EOS around each
// text (GGUF tokenizer.ggml.add_bos_token / add_eos_token). Call it before
// the tokenizer is shared between goroutines.
func (t *BPE) SetAddSpecial(bos, eos bool) { t.addBOS, t.addEOS = bos, eos }

// VocabSize is the number of tokens.
func (t *BPE) VocabSize() int { return len(t.tokens) }

// BOS is the beginning-of-sequence id, -1 when the vocabulary has none.
func (t *BPE) BOS() int { return t.bos }

// EOS is the end-of-sequence id, -1 when the vocabulary has none.
func (t *BPE) EOS() int { return t.eos }

// Token returns the vocabulary string of id (in the byte alphabet, "Ġthe"),
// or "" when id is out of range.
func (t *BPE) Token(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// ID returns the id of a vocabulary string (in the byte alphabet).
func (t *BPE) ID(piece string) (int, bool) {
	id, ok := t.ids[piece]
	return id, ok
}

// Type returns the GGUF token type of id (TokenNormal, TokenControl, ...),
// 0 when id is out of range.
func (t *BPE) Type(id int) int32 {
	if id < 0 || id >= len(t.types) {
		return 0
	}
	return t.types[id]
}

// Piece returns the text token id stands for: its bytes for a normal
// token (possibly part of a UTF-8 character), the text of a user-defined
// token, and "" for control tokens and ids out of range. prev matters only
// to tokenizers that strip the leading space they added (Llama 2's
// tokenizer.json): after BOS, or at the start (prev < 0), a piece loses
// its first space.
func (t *BPE) Piece(prev, id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	p := t.pieces[id]
	if t.stripLeading && (prev < 0 || prev == t.bos) && strings.HasPrefix(p, " ") {
		p = p[1:]
	}
	return p
}

// Decode turns ids back into text; control tokens (BOS, EOS, ...) and ids
// out of range add nothing.
func (t *BPE) Decode(ids []int) string {
	var sb strings.Builder
	for _, id := range ids {
		if id >= 0 && id < len(t.pieces) {
			sb.WriteString(t.pieces[id])
		}
	}
	s := sb.String()
	if t.stripLeading && strings.HasPrefix(s, " ") {
		s = s[1:]
	}
	return s
}

// Encode tokenizes text, with BOS first and EOS last when asked for and
// the vocabulary has them.
func (t *BPE) Encode(text string, addBOS, addEOS bool) []int {
	out := make([]int, 0, len(text)/3+2)
	if addBOS && t.bos >= 0 {
		out = append(out, t.bos)
	}
	if t.nfc && !norm.NFC.IsNormalString(text) {
		text = norm.NFC.String(text)
	}
	if !t.fallback && t.addPrefixSpace && text != "" && text[0] != ' ' {
		text = " " + text
	}
	var sc bpeScratch
	emit := func(w string) { out = t.encodeWord(out, w, &sc) }
	if t.fallback {
		emit = func(w string) { out = t.encodeFallback(out, w, &sc) }
	}
	start := 0
	for i := 0; i < len(text); i++ {
		cands := t.specs[text[i]]
		if len(cands) == 0 {
			continue
		}
		for _, sp := range cands {
			if strings.HasPrefix(text[i:], sp.text) {
				t.pre.each(text[start:i], emit)
				out = append(out, sp.id)
				start = i + len(sp.text)
				i = start - 1
				break
			}
		}
	}
	t.pre.each(text[start:], emit)
	if addEOS && t.eos >= 0 {
		out = append(out, t.eos)
	}
	return out
}

// encodeWord appends the ids of one pre-token.
func (t *BPE) encodeWord(out []int, w string, sc *bpeScratch) []int {
	if len(w) == 1 {
		return append(out, t.byteID[w[0]])
	}
	t.mu.Lock()
	ids, ok := t.cache[w]
	t.mu.Unlock()
	if ok {
		return append(out, ids...)
	}
	ids = nil
	if t.ignoreMerges {
		if id, ok := t.ids[ByteLevel(w)]; ok {
			ids = []int{id}
		}
	}
	if ids == nil {
		ids = t.bpe(w, sc)
	}
	if len(w) > maxCachedWord {
		return append(out, ids...)
	}
	t.mu.Lock()
	if len(t.cache) >= maxCacheEntries {
		clear(t.cache)
	}
	// Clone: w points into the caller's text, which the cache must not pin.
	t.cache[strings.Clone(w)] = ids
	t.mu.Unlock()
	return append(out, ids...)
}

// bpeScratch holds the working memory of one pre-token's merges.
type bpeScratch struct {
	syms []bpeSym
	heap []bpeCand
}

type bpeSym struct {
	id         int32
	prev, next int32 // -1 at the ends; a merged-away symbol has id -1
}

type bpeCand struct {
	rank        int32
	left        int32 // index of the left symbol
	leftID, rID int32 // ids when queued, to drop stale entries
	merged      int32 // the token the pair merges into
}

func (c bpeCand) less(d bpeCand) bool {
	return c.rank < d.rank || (c.rank == d.rank && c.left < d.left)
}

// bpe merges the bytes of w: repeatedly the adjacent pair with the lowest
// merge rank (leftmost among equals), as Hugging Face tokenizers and
// llama.cpp do, with a heap so long pre-tokens stay O(n log n).
func (t *BPE) bpe(w string, sc *bpeScratch) []int {
	syms := sc.syms[:0]
	for i := 0; i < len(w); i++ {
		syms = append(syms, bpeSym{id: int32(t.byteID[w[i]]), prev: int32(i - 1), next: int32(i + 1)})
	}
	syms[len(syms)-1].next = -1
	ids := t.mergeSyms(nil, syms, sc)
	sc.syms = syms
	return ids
}

// mergeSyms merges the symbols syms (a linked list in index order, the
// last one's next -1): repeatedly the adjacent pair with the lowest merge
// rank, leftmost among equals. It appends the resulting ids to out.
func (t *BPE) mergeSyms(out []int, syms []bpeSym, sc *bpeScratch) []int {
	h := sc.heap[:0]
	push := func(left int32) {
		if left < 0 {
			return
		}
		r := syms[left].next
		if r < 0 {
			return
		}
		m, ok := t.merges[pairKey(int(syms[left].id), int(syms[r].id))]
		if !ok {
			return
		}
		h = heapPush(h, bpeCand{rank: m.rank, left: left, leftID: syms[left].id, rID: syms[r].id, merged: m.id}, bpeCand.less)
	}
	pop := func() bpeCand {
		var top bpeCand
		top, h = heapPop(h, bpeCand.less)
		return top
	}
	for i := range syms {
		push(int32(i))
	}
	for len(h) > 0 {
		c := pop()
		l := &syms[c.left]
		if l.id != c.leftID || l.next < 0 || syms[l.next].id != c.rID {
			continue // stale: one side was merged since
		}
		r := l.next
		l.id = c.merged
		l.next = syms[r].next
		if l.next >= 0 {
			syms[l.next].prev = c.left
		}
		syms[r].id = -1
		push(l.prev)
		push(c.left)
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		out = append(out, int(syms[i].id))
	}
	sc.heap = h
	return out
}

// GGUFVocab returns the vocabulary in the GGUF layout, for writing
// tokenizer.ggml.* metadata (model "gpt2"): the tokens as stored, their
// types, the merges in priority order ("left right") and the
// tokenizer.ggml.pre name of the split. It fails for a configuration GGUF
// cannot name (a byte-level BPE without a split, a leading space added to
// every text, or NFC normalization other than Qwen2's).
func (t *BPE) GGUFVocab() (tokens []string, types []int32, merges []string, pre string, err error) {
	if t.fallback {
		return nil, nil, nil, "", errors.New("tokenizer: a SentencePiece-style BPE read from tokenizer.json (byte_fallback) cannot be written as GGUF metadata yet; load the model's tokenizer.model instead (pass --tokenizer PATH/tokenizer.model)")
	}
	switch {
	case t.pre.kind == preGPT2 && t.pre.isolateDigits:
		pre = "smollm"
	case t.pre.kind == preGPT2:
		pre = "gpt-2" // llama.cpp's name; it reads "gpt2" as its "default" split
	case t.pre.kind == preLlama3 && t.pre.singleDigits:
		pre = "qwen2"
	case t.pre.kind == preLlama3:
		pre = "llama-bpe"
	default:
		return nil, nil, nil, "", errors.New("tokenizer: this BPE has no pre-tokenizer split, which GGUF metadata cannot express")
	}
	if t.addPrefixSpace {
		return nil, nil, nil, "", errors.New("tokenizer: this BPE adds a space before every text (add_prefix_space), which GGUF metadata cannot express")
	}
	if t.nfc && pre != "qwen2" {
		return nil, nil, nil, "", errors.New("tokenizer: this BPE normalizes text to NFC, which GGUF metadata cannot express for its pre-tokenizer")
	}
	keys := make([]uint64, 0, len(t.merges))
	for k := range t.merges {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b uint64) int { return cmp.Compare(t.merges[a].rank, t.merges[b].rank) })
	merges = make([]string, len(keys))
	for i, k := range keys {
		merges[i] = t.tokens[int(k>>32)] + " " + t.tokens[int(uint32(k))]
	}
	return slices.Clone(t.tokens), slices.Clone(t.types), merges, pre, nil
}

// encodeFallback appends the ids of one section of text (between special
// tokens) of a SentencePiece-style BPE: spaces become "▁" ("▁" is put
// first when the normalizer prepends it), each character is a symbol (its
// <0xNN> bytes, or unk, when the vocabulary lacks it), and the symbols are
// merged by rank. The section is cut before every "▁" that no token joins
// to its left neighbour and each piece merged on its own (the same result
// as merging it whole, in bounded memory; short pieces are cached).
func (t *BPE) encodeFallback(out []int, w string, sc *bpeScratch) []int {
	if w == "" {
		return out
	}
	norm := strings.ReplaceAll(w, " ", spmSpace)
	if t.prependMeta {
		norm = spmSpace + norm
	}
	if t.ignoreMerges {
		if id, ok := t.ids[norm]; ok {
			return append(out, id)
		}
		return t.fallbackPiece(out, norm, sc)
	}
	start := 0
	for i := 1; i < len(norm); i++ {
		if norm[i] != spmSpace[0] || !strings.HasPrefix(norm[i:], spmSpace) || t.metaID < 0 || !t.canCutMeta(norm, i) {
			continue
		}
		out = t.fallbackPiece(out, norm[start:i], sc)
		start = i
	}
	return t.fallbackPiece(out, norm[start:], sc)
}

// canCutMeta reports whether no merge can join the symbol that ends at
// norm[i] with the "▁" at norm[i].
func (t *BPE) canCutMeta(norm string, i int) bool {
	if c := norm[i-1]; c < utf8.RuneSelf && t.ascii[c] >= 0 {
		return !t.beforeMeta[c]
	}
	_, size := utf8.DecodeLastRuneInString(norm[:i])
	ch := norm[i-size : i]
	if _, ok := t.ids[ch]; ok {
		return !t.beforeMeta[norm[i-1]]
	}
	// The left symbol is the byte token of the last byte, or unk.
	all := true
	for j := i - size; j < i; j++ {
		all = all && t.byteID[norm[j]] >= 0
	}
	var s string
	switch {
	case all:
		s = t.tokens[t.byteID[norm[i-1]]]
	case t.unk >= 0:
		s = t.tokens[t.unk]
	}
	return s != "" && !t.beforeMeta[s[len(s)-1]]
}

// fallbackPiece appends the ids of one normalized piece.
func (t *BPE) fallbackPiece(out []int, piece string, sc *bpeScratch) []int {
	if piece == "" {
		return out
	}
	cacheable := len(piece) <= maxCachedWord
	if cacheable {
		t.mu.Lock()
		ids, ok := t.cache[piece]
		t.mu.Unlock()
		if ok {
			return append(out, ids...)
		}
	}
	syms := sc.syms[:0]
	add := func(id int) {
		n := int32(len(syms))
		syms = append(syms, bpeSym{id: int32(id), prev: n - 1, next: n + 1})
	}
	for i := 0; i < len(piece); {
		if c := piece[i]; c < utf8.RuneSelf && t.ascii[c] >= 0 {
			add(int(t.ascii[c]))
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(piece[i:])
		ch := piece[i : i+size]
		i += size
		if id, ok := t.ids[ch]; ok {
			add(id)
			continue
		}
		all := true
		for j := 0; j < len(ch); j++ {
			all = all && t.byteID[ch[j]] >= 0
		}
		switch {
		case all:
			for j := 0; j < len(ch); j++ {
				add(t.byteID[ch[j]])
			}
		case t.unk >= 0 && t.fuseUnk && len(syms) > 0 && int(syms[len(syms)-1].id) == t.unk:
			// fuse_unk: a run of unknown characters is one unk.
		case t.unk >= 0:
			add(t.unk)
		}
		// A character with neither a token, byte tokens nor unk is dropped.
	}
	n := len(out)
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
		out = t.mergeSyms(out, syms, sc)
	}
	sc.syms = syms[:0]
	if cacheable {
		t.mu.Lock()
		if len(t.cache) >= maxCacheEntries {
			clear(t.cache)
		}
		t.cache[strings.Clone(piece)] = slices.Clone(out[n:])
		t.mu.Unlock()
	}
	return out
}

// ByteFallback reports whether t is a SentencePiece-style BPE (tokenizer.json
// with byte_fallback: Llama 2, Mistral, Gemma).
func (t *BPE) ByteFallback() bool { return t.fallback }

// DropTokensFrom removes the tokens with ids n and above, for a model with
// n embedding rows whose tokenizer.json lists added tokens beyond them
// (Gemma 3 1B: <image_soft_token> is id 262144 of 262,144 rows). Only
// control, user-defined and unused tokens may be dropped; they are no
// longer matched in text. Call it before the tokenizer is shared.
func (t *BPE) DropTokensFrom(n int) error {
	if n <= 0 || n >= len(t.tokens) {
		return nil
	}
	for id := n; id < len(t.tokens); id++ {
		if typ := t.types[id]; typ != TokenControl && typ != TokenUserDefined && typ != TokenUnused {
			return fmt.Errorf("tokenizer: token %d (%q) is beyond the model's %d embedding rows and is an ordinary token, so the tokenizer does not belong to this model", id, t.tokens[id], n)
		}
		if t.bos == id || t.eos == id {
			return fmt.Errorf("tokenizer: BOS or EOS (%d) is beyond the model's %d embedding rows; the tokenizer does not belong to this model", id, n)
		}
	}
	for id := n; id < len(t.tokens); id++ {
		if t.ids[t.tokens[id]] == id {
			delete(t.ids, t.tokens[id])
		}
	}
	for b := range t.specs {
		t.specs[b] = slices.DeleteFunc(t.specs[b], func(s specialTok) bool { return s.id >= n })
	}
	for k, m := range t.merges {
		if int(m.id) >= n || int(k>>32) >= n || int(uint32(k)) >= n {
			delete(t.merges, k)
		}
	}
	t.tokens, t.types, t.pieces = t.tokens[:n], t.types[:n], t.pieces[:n]
	t.mu.Lock()
	clear(t.cache)
	t.mu.Unlock()
	return nil
}
