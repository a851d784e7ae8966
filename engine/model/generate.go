package model

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
)

// Tokenizer is what generation needs from a tokenizer.
type Tokenizer interface {
	Encode(text string, addBOS, addEOS bool) []int
	Piece(prev, id int) string
	BOS() int
	EOS() int
}

// EndOfTurn is implemented by tokenizers that know more tokens than EOS
// where a text or a chat turn ends (<|im_end|>, <|eot_id|>, …): generation
// stops at them too.
type EndOfTurn interface {
	IsEOG(id int) bool
}

// DefaultSteps is the number of positions (prompt included) generated when
// Sampling.MaxNew is negative: llama2.c run.c's default.
const DefaultSteps = 256

// Sampling chooses how the next token is picked.
type Sampling struct {
	MaxNew int // new tokens to generate at most; negative: up to DefaultSteps positions in all

	Temperature float32 // 0 = greedy (argmax)
	Seed        uint64  // seeds the sampler: the same seed gives the same text
	Delta       Delta   // plugged adapters (nil: the base alone)
	TopK        int     // sample among the K most likely tokens (0: all)
	TopP        float32 // sample among the smallest set of tokens whose probability reaches P (0 or 1: all)
}

// Generate continues prompt, calling emit first with the prompt itself and
// then with each new piece of text as it is produced. It stops after MaxNew
// tokens, at BOS or EOS (as llama2.c's run.c does) or another end-of-turn
// token the tokenizer knows (EndOfTurn), at the end of the
// context, or when ctx is cancelled.
func Generate(ctx context.Context, m *Model, tok Tokenizer, prompt string, s Sampling, emit func(string) error) error {
	ids := tok.Encode(prompt, true, false)
	if len(ids) == 0 {
		return errors.New("the prompt is empty and this model has no BOS token to start from: give some text to continue")
	}
	for _, id := range ids {
		if id < 0 || id >= m.Vocab {
			return fmt.Errorf("the prompt has token %d, outside the model's vocabulary of %d (a multimodal token the text model does not know): remove it", id, m.Vocab)
		}
	}
	if len(ids) > m.SeqLen {
		return fmt.Errorf("the prompt is %d tokens, longer than the model's context of %d", len(ids), m.SeqLen)
	}
	if err := emit(prompt); err != nil {
		return err
	}
	if s.MaxNew < 0 {
		s.MaxNew = max(0, min(DefaultSteps, m.SeqLen)-len(ids)+1)
	}
	st := m.NewState()
	st.SetDelta(s.Delta)
	// The KV cache for what is asked — the prompt and MaxNew more
	// positions — not for the context length the model claims.
	st.Reserve(len(ids) + s.MaxNew)
	rng := rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	logits := st.Prefill(ids, 0)
	prev := ids[len(ids)-1]
	eog := func(int) bool { return false }
	if t, ok := tok.(EndOfTurn); ok {
		eog = t.IsEOG
	}
	for pos := len(ids); pos-len(ids) < s.MaxNew && pos <= m.SeqLen; pos++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		next := SampleTop(logits, s.Temperature, s.TopK, s.TopP, rng)
		if next == tok.BOS() || next == tok.EOS() || eog(next) {
			return nil
		}
		if p := tok.Piece(prev, next); printable(p) {
			if err := emit(p); err != nil {
				return err
			}
		}
		if pos == m.SeqLen {
			break
		}
		logits = st.Forward(next, pos)
		prev = next
	}
	return nil
}

// printable drops single control bytes (as run.c's safe_printf does), keeping
// whitespace and the bytes of UTF-8 characters.
func printable(p string) bool {
	if len(p) != 1 {
		return p != ""
	}
	c := p[0]
	return c >= 0x20 && c != 0x7f || c == '\n' || c == '\t' || c == '\r' || c == ' '
}

// Sample picks a token: the argmax at temperature 0, else a draw from
// softmax(logits/temperature). logits is modified.
func Sample(logits []float32, temperature float32, rng *rand.Rand) int {
	if temperature == 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	for i := range logits {
		logits[i] /= temperature
	}
	Softmax(logits)
	r := rng.Float32()
	var cdf float32
	for i, p := range logits {
		cdf += p
		if r < cdf {
			return i
		}
	}
	return len(logits) - 1
}

// SampleTop is Sample restricted to the topK most likely tokens and then to
// the smallest set whose probability reaches topP (nucleus sampling), as
// llama.cpp's and Ollama's samplers apply them. Greedy when temperature is 0.
func SampleTop(logits []float32, temperature float32, topK int, topP float32, rng *rand.Rand) int {
	if temperature == 0 || (topK <= 0 || topK >= len(logits)) && (topP <= 0 || topP >= 1) {
		return Sample(logits, temperature, rng)
	}
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return logits[idx[a]] > logits[idx[b]] })
	if topK > 0 && topK < len(idx) {
		idx = idx[:topK]
	}
	probs := make([]float32, len(idx))
	for i, id := range idx {
		probs[i] = logits[id] / temperature
	}
	Softmax(probs)
	if topP > 0 && topP < 1 {
		var cum float32
		for i, p := range probs {
			cum += p
			if cum >= topP {
				idx, probs = idx[:i+1], probs[:i+1]
				break
			}
		}
		var sum float32
		for _, p := range probs {
			sum += p
		}
		for i := range probs {
			probs[i] /= sum
		}
	}
	r := rng.Float32()
	var cdf float32
	for i, p := range probs {
		cdf += p
		if r < cdf {
			return idx[i]
		}
	}
	return idx[len(idx)-1]
}
