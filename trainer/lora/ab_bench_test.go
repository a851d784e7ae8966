package lora

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tensor"
)

// stepAB measures two training-step variants side by side: each iteration
// runs one step of a, then one of b, so both see the same load on a shared
// machine. It reports each side's median tokens/s and heap allocations per
// step, and the median, lowest and highest ratio of a's time to b's
// (b's speed-up over a).
func stepAB(b *testing.B, tokens int, a, bb func()) {
	var ra []float64
	var ta, tb []time.Duration
	var ma, mb uint64
	var ms runtime.MemStats
	allocs := func() uint64 { runtime.ReadMemStats(&ms); return ms.Mallocs }
	a() // warm-up: pools, packed buffers
	bb()
	for b.Loop() {
		m0 := allocs()
		t0 := time.Now()
		a()
		t1 := time.Now()
		m1 := allocs()
		bb()
		t2 := time.Now()
		m2 := allocs()
		ma, mb = ma+m1-m0, mb+m2-m1
		ta, tb = append(ta, t1.Sub(t0)), append(tb, t2.Sub(t1))
		ra = append(ra, float64(t1.Sub(t0))/float64(t2.Sub(t1)))
	}
	slices.Sort(ra)
	slices.Sort(ta)
	slices.Sort(tb)
	n := float64(len(ra))
	b.ReportMetric(float64(tokens)/ta[len(ta)/2].Seconds(), "A-tok/s")
	b.ReportMetric(float64(tokens)/tb[len(tb)/2].Seconds(), "B-tok/s")
	b.ReportMetric(ra[len(ra)/2], "B/A-speedup")
	b.ReportMetric(ra[0], "speedup-min")
	b.ReportMetric(ra[len(ra)-1], "speedup-max")
	b.ReportMetric(float64(ma)/n, "A-allocs/step")
	b.ReportMetric(float64(mb)/n, "B-allocs/step")
}

// BenchmarkTrainStepAB compares training-step variants in one process,
// alternating them step by step (see stepAB): bf16 products against
// float32 (B = bf16, on kernel sets with bfloat16 products), and 2 threads
// against 1 (B = GOMAXPROCS 2), at stories15M and SmolLM-135M dimensions
// (Q8_0, r = 16 on all seven projections, 2 sequences of 256 tokens per
// step, AdamW). It logs the kernel set (ORCHMIND_ISA chooses it).
//
//	go test -run '^$' -bench 'TrainStepAB/stories15M' -benchtime 5x ./trainer/lora/
func BenchmarkTrainStepAB(b *testing.B) {
	dims := map[string]model.Config{
		"stories15M":  {Dim: 288, HiddenDim: 768, Layers: 6, Heads: 6, KVHeads: 6, Vocab: 32000, SeqLen: 256, NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true},
		"smollm-135M": {Dim: 576, HiddenDim: 1536, Layers: 30, Heads: 9, KVHeads: 3, Vocab: 49152, SeqLen: 256, NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true},
	}
	for _, name := range []string{"stories15M", "smollm-135M"} {
		c := dims[name]
		const batch, seq = 2, 256
		setup := func(b *testing.B, bf16 bool) func() {
			m := randomModel(b, c, quant.Q8_0, 1)
			a, _ := New(m, 16, 32, nil, 1)
			e, _ := NewEngine(m, a, 1)
			e.BF16 = bf16
			opt := NewAdamW(a)
			seqs := make([]Seq, batch)
			for i := range seqs {
				seqs[i] = randomSeq(seq, c.Vocab, uint64(i))
				seqs[i].Mask = nil
			}
			return func() {
				for _, s := range seqs {
					if _, _, err := e.Accumulate(s, 1/float32(batch*(seq-1))); err != nil {
						b.Fatal(err)
					}
				}
				ClipGradNorm(e.Grads, 1)
				if err := opt.Update(a, e.Grads, 1e-3); err != nil {
					b.Fatal(err)
				}
				e.ZeroGrads()
			}
		}
		b.Run(name+"/bf16-vs-f32", func(b *testing.B) {
			if !tensor.BF16Tiles() {
				b.Skipf("no bfloat16 products here (%s)", tensor.ISASummary())
			}
			b.Log(tensor.ISASummary())
			stepAB(b, batch*seq, setup(b, false), setup(b, true))
		})
		b.Run(name+"/threads-2-vs-1", func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
			if runtime.NumCPU() < 2 {
				b.Skip("one core")
			}
			b.Log(tensor.ISASummary(), fmt.Sprintf("; %d cores", runtime.NumCPU()))
			step := setup(b, tensor.BF16Tiles())
			stepAB(b, batch*seq,
				func() { runtime.GOMAXPROCS(1); step() },
				func() { runtime.GOMAXPROCS(2); step() })
		})
	}
}
