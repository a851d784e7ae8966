package model

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"orchmind/engine/quant"
	"orchmind/engine/tensor"
)

// genAB measures two generation variants side by side: each iteration
// generates nGen tokens with a, then nGen with bb (each after its own
// prefill, outside the timing), so both see the same load on a shared
// machine. It reports each side's median tokens/s and the median, lowest
// and highest ratio of a's time to b's (b's speed-up over a).
func genAB(b *testing.B, nGen int, a, bb func()) {
	var ra []float64
	var ta, tb []time.Duration
	a() // warm-up
	bb()
	for b.Loop() {
		t0 := time.Now()
		a()
		t1 := time.Now()
		bb()
		t2 := time.Now()
		ta, tb = append(ta, t1.Sub(t0)), append(tb, t2.Sub(t1))
		ra = append(ra, float64(t1.Sub(t0))/float64(t2.Sub(t1)))
	}
	slices.Sort(ra)
	slices.Sort(ta)
	slices.Sort(tb)
	b.ReportMetric(float64(nGen)/ta[len(ta)/2].Seconds(), "A-tok/s")
	b.ReportMetric(float64(nGen)/tb[len(tb)/2].Seconds(), "B-tok/s")
	b.ReportMetric(ra[len(ra)/2], "B/A-speedup")
	b.ReportMetric(ra[0], "speedup-min")
	b.ReportMetric(ra[len(ra)-1], "speedup-max")
}

// BenchmarkGenerateAB compares generation variants in one process,
// alternating them (see genAB), at stories15M, SmolLM-135M and
// dimsLlama1024 dimensions with Q8_0 and Q4_0 weights read from GGUF (and
// Q4_K and Q6_K at dimsLlama1024, whose sides are whole super-blocks):
// int8-vs-f32 is generation's integer dot products (B) against the
// float32 path (A), where the kernel set has them for the type
// (tensor.Int8Rows); threads-2-vs-1 is 2 threads (B) against 1 (A) on
// the default path. 32 tokens after a 64-token prompt per side and
// iteration. It logs the kernel set and the path (ORCHMIND_ISA chooses).
//
//	go test -run '^$' -bench 'GenerateAB/stories15M' -benchtime 5x ./engine/model/
func BenchmarkGenerateAB(b *testing.B) {
	const nPrompt, nGen = 64, 32
	q8q4 := []quant.Type{quant.Q8_0, quant.Q4_0}
	for _, d := range []struct {
		name  string
		c     Config
		types []quant.Type
	}{{"stories15M", dimsStories15M, q8q4}, {"smollm-135M", dimsSmolLM135M, q8q4}, {"llama-1024", dimsLlama1024, []quant.Type{quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K}}} {
		prompt := make([]int, nPrompt)
		for i := range prompt {
			prompt[i] = 3 + (i*7919)%(d.c.Vocab-3)
		}
		for _, typ := range d.types {
			var m *Model
			load := func(b *testing.B) *Model {
				if m == nil {
					m = benchGGUF(b, d.name, d.c, typ)
				}
				return m
			}
			// gen returns a generation run of nGen tokens on its own State
			// (float32 path when f32), prefilled once.
			gen := func(m *Model, f32 bool) func() {
				st := m.NewState()
				st.SetFloat32(f32)
				st.Prefill(prompt, 0)
				return func() {
					tok := 5
					for i := range nGen {
						logits := st.Forward(tok, nPrompt+i)
						tok = 3 + int(uint32(logits[0]*1e6)%uint32(d.c.Vocab-3))
					}
				}
			}
			b.Run(d.name+"/"+typ.String()+"/int8-vs-f32", func(b *testing.B) {
				if !tensor.Int8Rows(typ) {
					b.Skipf("no integer path for %s here (%s)", typ, tensor.Int8Summary())
				}
				b.Log(tensor.ISA(), ": ", tensor.Int8Summary())
				m := load(b)
				genAB(b, nGen, gen(m, true), gen(m, false))
			})
			b.Run(d.name+"/"+typ.String()+"/threads-2-vs-1", func(b *testing.B) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
				if runtime.NumCPU() < 2 {
					b.Skip("one core")
				}
				b.Log(tensor.ISA(), ": ", tensor.Int8Summary(), fmt.Sprintf("; %d cores", runtime.NumCPU()))
				m := load(b)
				g1, g2 := gen(m, false), gen(m, false)
				genAB(b, nGen,
					func() { runtime.GOMAXPROCS(1); g1() },
					func() { runtime.GOMAXPROCS(2); g2() })
			})
		}
	}
}
