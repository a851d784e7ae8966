package model

import (
	"fmt"
	"orchmind/internal/cputime"
	"os"
	"path/filepath"
	"testing"

	"orchmind/engine/quant"
	"orchmind/engine/tensor"
)

// Real model dimensions for the inference benchmarks (random weights).
var (
	dimsStories15M = Config{Dim: 288, HiddenDim: 768, Layers: 6, Heads: 6, KVHeads: 6, Vocab: 32000, SeqLen: 1024,
		NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true}
	dimsSmolLM135M = Config{Dim: 576, HiddenDim: 1536, Layers: 30, Heads: 9, KVHeads: 3, Vocab: 49152, SeqLen: 1024,
		NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true}
	// dimsLlama1024 has every side a multiple of the K-quant super-block
	// (256 values): a Llama-style model of ~150M parameters (dim 1024, 8
	// layers, MLP 4096, 16 query and 4 key/value heads, 32000 tokens).
	dimsLlama1024 = Config{Dim: 1024, HiddenDim: 4096, Layers: 8, Heads: 16, KVHeads: 4, Vocab: 32000, SeqLen: 1024,
		NormEps: 1e-5, RopeTheta: 500000, SharedClassifier: true}
	// dimsGemma3_1B is Gemma 3 1B's text model as its config.json gives it:
	// 26 layers of width 1152, 4 query heads and 1 key/value head of 256,
	// MLP 6912 (GeGLU), 5 sliding-window layers (512, RoPE base 10,000) to 1
	// global (1,000,000), q/k norms, the tied 262,144-token head.
	dimsGemma3_1B = Config{Dim: 1152, HiddenDim: 6912, Layers: 26, Heads: 4, KVHeads: 1, HeadSize: 256, Vocab: 262144,
		SeqLen: 1024, NormEps: 1e-6, RopeTheta: 1e6, Arch: ArchGemma3, SharedClassifier: true, SlidingWindow: 512,
		SlidingPattern: 6, RopeLocalTheta: 10000, QueryScale: 256}
)

// syntheticVocab is a SentencePiece-style vocabulary of n tokens (unknown,
// BOS, EOS, the 256 byte tokens, then "▁w<i>" pieces), so a benchmark GGUF
// stands alone and other runtimes (llama.cpp) load it too.
func syntheticVocab(n int) *Vocab {
	v := &Vocab{Tokens: make([]string, n), Scores: make([]float32, n), Types: make([]int32, n), BOS: 1, EOS: 2}
	for i := range n {
		switch {
		case i == 0:
			v.Tokens[i], v.Types[i] = "<unk>", 2
		case i == 1:
			v.Tokens[i], v.Types[i] = "<s>", 3
		case i == 2:
			v.Tokens[i], v.Types[i] = "</s>", 3
		case i < 3+256:
			v.Tokens[i], v.Types[i] = fmt.Sprintf("<0x%02X>", i-3), 6
		default:
			v.Tokens[i], v.Types[i], v.Scores[i] = fmt.Sprintf("▁w%d", i), 1, -float32(i)
		}
	}
	return v
}

// benchGGUF writes a random model of c as a typ GGUF and loads it back, as a
// user's model would be. With ORCHMIND_BENCH_GGUF_DIR set the file is kept
// there (named <name>-<type>.gguf), so other runtimes can be measured on the
// very same bytes.
func benchGGUF(b *testing.B, name string, c Config, typ quant.Type) *Model {
	b.Helper()
	// Held as typ from the start (the same values as F32 converted on
	// writing): a 1B model in float32 would take 5 GB on the way.
	m, err := Random(c, typ, 1)
	if err != nil {
		b.Fatal(err)
	}
	dir := os.Getenv("ORCHMIND_BENCH_GGUF_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-%s.gguf", name, typ))
	if err := WriteGGUF(p, m, name+" (random weights)", AsStored, syntheticVocab(c.Vocab), nil); err != nil {
		b.Fatal(err)
	}
	g, _, err := Load(p, AsStored)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkInference measures prompt processing (a 128-token prompt into an
// empty KV cache) and generation (64 tokens, one at a time, after that
// prompt) at stories15M and SmolLM-135M dimensions, weights held Q8_0 and
// Q4_0 as loaded from GGUF, and at dimsLlama1024 with K-quant weights
// (Q4_K, Q6_K, Q5_K) beside Q4_0 and Q8_0, and at Gemma 3 1B dimensions
// (Q8_0, Q4_0; scripts/llama_cpp_bench.sh runs llama.cpp on the same
// files). Reported as tokens/s.
// Generation runs on the float32 path (gen=64/float32) and, for row types
// where the kernel set takes integer dot products (tensor.Int8Rows), on
// that path too (gen=64/int8), in the same run.
//
//	go test -run '^$' -bench 'Inference/llama-1024/(Q4_K|Q4_0)' -benchtime 3x ./engine/model/
func BenchmarkInference(b *testing.B) {
	const nPrompt, nGen = 128, 64
	prompt := make([]int, nPrompt)
	for _, d := range []struct {
		name  string
		c     Config
		types []quant.Type
	}{
		{"stories15M", dimsStories15M, []quant.Type{quant.Q8_0, quant.Q4_0}},
		{"smollm-135M", dimsSmolLM135M, []quant.Type{quant.Q8_0, quant.Q4_0}},
		{"llama-1024", dimsLlama1024, []quant.Type{quant.Q4_K, quant.Q6_K, quant.Q5_K, quant.Q4_0, quant.Q8_0}},
		{"gemma3-1B", dimsGemma3_1B, []quant.Type{quant.Q8_0, quant.Q4_0}},
	} {
		for i := range prompt {
			prompt[i] = 3 + (i*7919)%(d.c.Vocab-3)
		}
		for _, typ := range d.types {
			b.Run(d.name+"/"+typ.String(), func(b *testing.B) {
				m := benchGGUF(b, d.name, d.c, typ)
				st := m.NewState()
				// tokens/cpu-s beside tokens/s: on a shared machine the
				// CPU time moves less with the load than the wall time.
				perCPU := func(b *testing.B, tokens int, cpu0 float64) {
					if cpu := cputime.Process().Seconds() - cpu0; cpu > 0 {
						b.ReportMetric(float64(tokens)/cpu, "tokens/cpu-s")
					}
				}
				b.Run(fmt.Sprintf("prompt=%d", nPrompt), func(b *testing.B) {
					cpu0 := cputime.Process().Seconds()
					for b.Loop() {
						st.Prefill(prompt, 0)
					}
					b.ReportMetric(float64(nPrompt*b.N)/b.Elapsed().Seconds(), "tokens/s")
					perCPU(b, nPrompt*b.N, cpu0)
				})
				// Generation on the float32 path and, where the kernel set
				// takes integer dot products with these rows (the default
				// then), on the int8 path, side by side.
				paths := []string{"float32"}
				if tensor.Int8Rows(typ) {
					paths = append(paths, "int8")
				}
				for _, path := range paths {
					b.Run(fmt.Sprintf("gen=%d/%s", nGen, path), func(b *testing.B) {
						st.SetFloat32(path == "float32")
						defer st.SetFloat32(false)
						st.Prefill(prompt, 0)
						var cpu0 float64
						for b.Loop() {
							if cpu0 == 0 {
								cpu0 = cputime.Process().Seconds()
							}
							tok := 5
							for i := range nGen {
								logits := st.Forward(tok, nPrompt+i)
								tok = 3 + int(uint32(logits[0]*1e6)%uint32(d.c.Vocab-3))
							}
						}
						b.ReportMetric(float64(nGen*b.N)/b.Elapsed().Seconds(), "tokens/s")
						perCPU(b, nGen*b.N, cpu0)
					})
				}
			})
		}
	}
}
