package lora

import (
	"runtime"
	"testing"

	"orchmind/engine/model"
	"orchmind/engine/quant"
)

// allocsPerStep is testing.AllocsPerRun(2, step) without its switch to
// one thread: the mean heap allocations of two steps after a warm-up.
func allocsPerStep(step func()) float64 {
	step()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	step()
	step()
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / 2
}

// TestStepAllocationsFlatInThreads checks that a training step allocates no
// more objects with 16 workers than with 2 (home desktops have 8–16
// cores): per-call scratch comes from pools, and the worker pool's jobs
// are one per parallel call, not one per worker. One thread takes fewer
// (nothing is split), which is fine.
func TestStepAllocationsFlatInThreads(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random: allocation counts are not comparable")
	}
	c := model.Config{Dim: 288, HiddenDim: 768, Layers: 2, Heads: 6, KVHeads: 6, Vocab: 4000, SeqLen: 128,
		NormEps: 1e-5, RopeTheta: 10000, SharedClassifier: true}
	m := randomModel(t, c, quant.Q8_0, 1)
	a, _ := New(m, 16, 32, nil, 1)
	e, _ := NewEngine(m, a, 1)
	opt := NewAdamW(a)
	s := randomSeq(128, c.Vocab, 1)
	s.Mask = nil
	step := func() {
		if _, _, err := e.Accumulate(s, 1e-3); err != nil {
			t.Fatal(err)
		}
		ClipGradNorm(e.Grads, 1)
		if err := opt.Update(a, e.Grads, 1e-3); err != nil {
			t.Fatal(err)
		}
		e.ZeroGrads()
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	allocs := map[int]float64{}
	for _, th := range []int{1, 2, 4, 16} {
		runtime.GOMAXPROCS(th)
		allocs[th] = allocsPerStep(step)
	}
	t.Logf("allocations per step by threads: %v", allocs)
	for _, th := range []int{4, 16} {
		if allocs[th] > 1.1*allocs[2]+16 {
			t.Errorf("%d threads: %.0f allocations per step, 2 threads %.0f: allocation grows with threads", th, allocs[th], allocs[2])
		}
	}
}
