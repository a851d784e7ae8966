package tokenizer

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"orchmind/internal/testshared"
)

// spmGolden is testdata/spm/golden.json, written by make_golden.py with
// Google's reference SentencePiece library from the Llama 2 tokenizer.model.
type spmGolden struct {
	Generator string `json:"generator"`
	VocabSize int    `json:"vocab_size"`
	BOS       int    `json:"bos"`
	EOS       int    `json:"eos"`
	Cases     []struct {
		Text    string `json:"text"`
		IDs     []int  `json:"ids"`
		Decoded string `json:"decoded"`
	} `json:"cases"`
}

// TestSentencePieceGolden encodes the golden texts with the 32,000-token
// Llama 2 vocabulary, read from tokenizer.model itself and from its
// llama2.c tokenizer.bin export, and requires the reference library's ids
// exactly, then decodes them back.
func TestSentencePieceGolden(t *testing.T) {
	t.Run("tokenizer.bin", func(t *testing.T) {
		testSentencePieceGolden(t, func(vocab int) (*Llama2C, error) {
			return LoadLlama2C(testshared.Path(t, "models/llama2-tokenizer/tokenizer.bin"), vocab)
		})
	})
	t.Run("tokenizer.model", func(t *testing.T) {
		testSentencePieceGolden(t, func(int) (*Llama2C, error) {
			return LoadSentencePieceModel(testshared.Path(t, "models/llama2-tokenizer/tokenizer.model"))
		})
	})
}

func testSentencePieceGolden(t *testing.T, load func(vocab int) (*Llama2C, error)) {
	raw, err := os.ReadFile("testdata/spm/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g spmGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 20 {
		t.Fatalf("golden.json has %d cases, want >= 20", len(g.Cases))
	}
	tok, err := load(g.VocabSize)
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != g.BOS || tok.EOS() != g.EOS {
		t.Fatalf("BOS/EOS = %d/%d, reference %d/%d", tok.BOS(), tok.EOS(), g.BOS, g.EOS)
	}
	for _, c := range g.Cases {
		got := tok.Encode(c.Text, false, false)
		if !reflect.DeepEqual(got, c.IDs) {
			t.Errorf("Encode(%q)\n got %v\nwant %v (%s)", c.Text, got, c.IDs, g.Generator)
			continue
		}
		if dec := tok.Decode(got); dec != c.Decoded {
			t.Errorf("Decode(Encode(%q)) = %q, reference decodes to %q", c.Text, dec, c.Decoded)
		}
		withBOS := tok.Encode(c.Text, true, true)
		if withBOS[0] != g.BOS || withBOS[len(withBOS)-1] != g.EOS || !reflect.DeepEqual(withBOS[1:len(withBOS)-1], c.IDs) {
			t.Errorf("Encode(%q, bos, eos) = %v, want BOS + %v + EOS", c.Text, withBOS, c.IDs)
		}
	}
}
