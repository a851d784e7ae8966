package tensor

import (
	"runtime"
	"sync"
)

// minParallelWork is the number of multiply-adds below which a matmul runs
// on the calling goroutine: spawning workers costs more than it saves.
const minParallelWork = 1 << 16

// MatMul computes out[n×Rows] = x[n×Cols]·Wᵀ (a linear layer applied to n
// input vectors). It is the hot path of inference and training. Output rows
// of W are split across GOMAXPROCS workers; each dequantizes a row of W once
// and takes its dot product with all n inputs. Each output element is
// computed by exactly one worker in a fixed order, so results do not depend
// on the number of workers.
func MatMul(out, x []float32, n int, w *Matrix) {
	parallelRows(w.Rows, w.Rows*w.Cols*n, func(lo, hi int) {
		row := make([]float32, w.Cols)
		for r := lo; r < hi; r++ {
			w.DequantizeRow(r, row)
			for i := 0; i < n; i++ {
				out[i*w.Rows+r] = Dot(row, x[i*w.Cols:(i+1)*w.Cols])
			}
		}
	})
}

// MatMulT computes out[n×Cols] = dy[n×Rows]·W (the input gradient of a
// linear layer), overwriting out. Work is split over the n rows of dy, so
// each worker owns its output rows and the summation order is fixed.
func MatMulT(out, dy []float32, n int, w *Matrix) {
	clear(out[:n*w.Cols])
	if n == 1 {
		MatMulTRef(out, dy, n, w)
		return
	}
	parallelRows(n, w.Rows*w.Cols*n, func(lo, hi int) {
		row := make([]float32, w.Cols)
		for r := 0; r < w.Rows; r++ {
			w.DequantizeRow(r, row)
			for i := lo; i < hi; i++ {
				if g := dy[i*w.Rows+r]; g != 0 {
					Axpy(g, row, out[i*w.Cols:(i+1)*w.Cols])
				}
			}
		}
	})
}

// parallelRows runs f over [0, rows) in contiguous chunks, one per worker.
func parallelRows(rows, work int, f func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > rows {
		workers = rows
	}
	if workers <= 1 || work < minParallelWork {
		f(0, rows)
		return
	}
	var wg sync.WaitGroup
	chunk := (rows + workers - 1) / workers
	for lo := 0; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// Dot returns Σ a[i]·b[i] over len(a) elements (b must be at least as long),
// accumulated in four independent lanes.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Axpy computes y[i] += alpha·x[i] over len(x) elements.
func Axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}
