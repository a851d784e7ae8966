package parallel

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestForCoversEachIndexOnce: every index of [0, n) is handed to exactly
// one call of f, in the documented chunks, for many n and parts.
func TestForCoversEachIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7, 64, 1000} {
		for _, parts := range []int{-1, 0, 1, 2, 3, 8, 2000} {
			hits := make([]atomic.Int32, n)
			var calls atomic.Int32
			For(n, parts, func(lo, hi int) {
				calls.Add(1)
				if p := min(parts, n); p > 1 {
					// chunk bounds are i·n/p .. (i+1)·n/p for some i
					ok := false
					for i := range p {
						if lo == i*n/p && hi == (i+1)*n/p {
							ok = true
						}
					}
					if !ok {
						t.Errorf("n=%d parts=%d: chunk [%d, %d) is not one of the documented chunks", n, parts, lo, hi)
					}
				}
				for i := lo; i < hi; i++ {
					hits[i].Add(1)
				}
			})
			for i := range hits {
				if h := hits[i].Load(); h != 1 {
					t.Fatalf("n=%d parts=%d: index %d handled %d times", n, parts, i, h)
				}
			}
			if want := max(1, min(parts, n)); n > 0 && int(calls.Load()) != want {
				t.Errorf("n=%d parts=%d: %d calls of f, want %d", n, parts, calls.Load(), want)
			}
		}
	}
}

// TestForConcurrentAndNested: many goroutines calling For at once, and For
// called from inside f, all finish with every index covered (the pool is
// taken by one caller at a time; the others fall back to fresh goroutines).
func TestForConcurrentAndNested(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for r := range 50 {
				n := 10 + (g*7+r)%50
				var sum atomic.Int64
				For(n, 4, func(lo, hi int) {
					for i := lo; i < hi; i++ {
						var inner atomic.Int64
						For(8, 2, func(a, b int) { inner.Add(int64(b - a)) })
						if inner.Load() != 8 {
							t.Errorf("nested For covered %d of 8", inner.Load())
						}
						sum.Add(int64(i))
					}
				})
				if want := int64(n * (n - 1) / 2); sum.Load() != want {
					t.Errorf("sum %d, want %d", sum.Load(), want)
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkFor measures the cost of one split of a tiny loop over the
// cores: the pool against fresh goroutines for every call.
func BenchmarkFor(b *testing.B) {
	var sink atomic.Int64
	work := func(lo, hi int) { sink.Add(int64(hi - lo)) }
	b.Run("pool", func(b *testing.B) {
		for b.Loop() {
			For(64, Workers(), work)
		}
	})
	b.Run("goroutines", func(b *testing.B) {
		for b.Loop() {
			spawn(64, Workers(), work)
		}
	})
}
