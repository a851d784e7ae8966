package data

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"orchmind/engine/tokenizer"
	"orchmind/internal/testshared"
)

func longParagraph(n int) string {
	words := strings.Fields("a menina gentil ajuda o fazendeiro todas as manhãs the kind girl helps the farmer every morning")
	rng := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.String()
}

// TestPiecesMatchWhole: text longer than a piece is encoded in pieces
// whose tokens join into the whole text's tokens, for a byte-level
// tokenizer (the space goes with the next piece) and for SentencePiece
// (each piece starts a word itself).
func TestPiecesMatchWhole(t *testing.T) {
	text := longParagraph(5 * pieceBytes)
	pe := newPieceEncoder(byteEnc{})
	if !pe.keepSpace || !slices.Equal(pe.encode(text, true, true), byteEnc{}.Encode(text, true, true)) {
		t.Error("byte tokenizer: pieces differ from the whole")
	}
	mp := testshared.Path(t, "models/stories260K/tok512.bin")
	tok, err := tokenizer.LoadLlama2C(mp, 512)
	if err != nil {
		t.Fatal(err)
	}
	pe = newPieceEncoder(tok)
	if pe.keepSpace {
		t.Error("SentencePiece: the space should not go with the next piece")
	}
	if got, want := pe.encode(text, true, false), tok.Encode(text, true, false); !slices.Equal(got, want) {
		t.Errorf("SentencePiece: %d tokens in pieces, %d whole", len(got), len(want))
	}
	// A text file of one long paragraph gives one document whose tokens are
	// the whole paragraph's, split with overlap to the sequence length.
	dir := t.TempDir()
	ds, err := Build(context.Background(), write(t, dir, "one.txt", text+"\n"), byteEnc{}, Options{MaxSeqLen: 1024})
	if err != nil {
		t.Fatal(err)
	}
	s := ds.Summary
	if s.Split != 1 || s.Pieces != len(ds.Train) || s.Pieces < 10 {
		t.Fatalf("summary %+v", s)
	}
	// The trained (masked) tokens of the pieces cover the text once.
	var b strings.Builder
	for _, ex := range ds.Train {
		if len(ex.IDs) > 1024 {
			t.Fatalf("piece of %d tokens", len(ex.IDs))
		}
	}
	for _, ex := range orderByWhere(ds.Train) {
		b.WriteString(decodeMasked(ex))
	}
	if b.String() != text {
		t.Errorf("pieces do not cover the text exactly once (%d of %d bytes)", b.Len(), len(text))
	}
}

// orderByWhere sorts pieces "file:1 (piece N)" by N.
func orderByWhere(exs []Example) []Example {
	out := slices.Clone(exs)
	slices.SortFunc(out, func(a, b Example) int {
		pa, pb := pieceNo(a.Where), pieceNo(b.Where)
		return pa - pb
	})
	return out
}

func pieceNo(w string) int {
	i := strings.LastIndex(w, "(piece ")
	if i < 0 {
		return 0
	}
	n := 0
	for _, c := range w[i+7:] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
