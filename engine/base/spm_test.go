package base

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"orchmind/engine/gguf"
	"orchmind/engine/model"
	"orchmind/engine/tokenizer"
	"orchmind/internal/testshared"
)

// gemmaStyleGGUF is the tokenizer metadata of a Gemma GGUF in small: <pad>
// 0, <eos> 1, <bos> 2, <unk> 3, the turn markers as control tokens, "\n"
// user-defined, byte tokens, and merges by score; add_space_prefix absent
// (Ollama's files) or given.
func gemmaStyleGGUF(prefix any) *gguf.File {
	toks := []any{"<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "\n", "▁", "h", "i", "▁h", "▁hi", "hi", "<0x41>"}
	types := []any{int32(3), int32(3), int32(3), int32(2), int32(3), int32(3), int32(4), int32(1), int32(1), int32(1), int32(1), int32(1), int32(1), int32(6)}
	scores := make([]any, len(toks))
	for i := range scores {
		scores[i] = float32(-i)
	}
	md := map[string]any{
		"general.architecture":        "gemma3",
		"tokenizer.ggml.model":        "llama",
		"tokenizer.ggml.tokens":       toks,
		"tokenizer.ggml.scores":       scores,
		"tokenizer.ggml.token_type":   types,
		"tokenizer.ggml.bos_token_id": uint32(2),
		"tokenizer.ggml.eos_token_id": uint32(1),
	}
	if prefix != nil {
		md["tokenizer.ggml.add_space_prefix"] = prefix
	}
	return &gguf.File{Metadata: md}
}

// TestGGUFSentencePieceGemma: the GGUF "llama" vocabulary of a Gemma model
// reads with its own BOS/EOS ids, without the dummy-prefix space (as
// llama.cpp converts Gemma, also when the key is absent, as in Ollama's
// files), with the turn markers and "\n" taken whole from the text and
// <end_of_turn> ending generation.
func TestGGUFSentencePieceGemma(t *testing.T) {
	for _, prefix := range []any{nil, false} {
		tok, err := ggufSPM(gemmaStyleGGUF(prefix))
		if err != nil {
			t.Fatal(err)
		}
		if tok.BOS() != 2 || tok.EOS() != 1 || tok.AddSpacePrefix() {
			t.Fatalf("BOS %d EOS %d prefix %v, want 2 1 false", tok.BOS(), tok.EOS(), tok.AddSpacePrefix())
		}
		got := tok.Encode("<start_of_turn>hi hi\nA<end_of_turn>", true, false)
		want := []int{2, 4, 12, 11, 6, 13, 5}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Encode = %v, want %v", got, want)
		}
		if !tok.IsEOG(5) || !tok.IsEOG(1) || tok.IsEOG(4) {
			t.Errorf("IsEOG(<end_of_turn>, <eos>, <start_of_turn>) = %v %v %v", tok.IsEOG(5), tok.IsEOG(1), tok.IsEOG(4))
		}
		if s := tok.Decode(got); s != "hi hi\nA" {
			t.Errorf("Decode = %q", s)
		}
	}
	// A Llama-style file (the key says so) keeps the dummy prefix.
	tok, err := ggufSPM(gemmaStyleGGUF(true))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Encode("hi", false, false); !reflect.DeepEqual(got, []int{11}) {
		t.Errorf("with add_space_prefix: Encode(hi) = %v, want [11] (▁hi)", got)
	}
	var _ model.EndOfTurn = tok
}

// TestFolderPrefersTokenizerModel: in a Hugging Face folder holding both,
// the SentencePiece tokenizer.model is read (what llama.cpp converts and a
// GGUF export writes); a tokenizer.json alone is read as before.
func TestFolderPrefersTokenizerModel(t *testing.T) {
	spm, err := os.ReadFile(testshared.Path(t, "models/llama2-tokenizer/tokenizer.model"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.model"), spm, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"type": "Unigram"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, _, err := loadTokenizer(dir, "", &model.Model{Config: model.Config{Vocab: 32000}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tok.(*tokenizer.Llama2C); !ok || tok.VocabSize() != 32000 {
		t.Fatalf("got %T with %d tokens, want the SentencePiece model", tok, tok.VocabSize())
	}
	// A damaged tokenizer.model beside a tokenizer.json: the JSON decides
	// (here it is refused, naming its model type).
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.model"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadTokenizer(dir, "", &model.Model{Config: model.Config{Vocab: 32000}}, nil); err == nil || !strings.Contains(err.Error(), "Unigram") {
		t.Errorf("err = %v, want the tokenizer.json's refusal", err)
	}
}
