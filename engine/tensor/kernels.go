package tensor

import (
	"fmt"

	"orchmind/engine/parallel"
	"orchmind/engine/quant"
)

// minParallelWork is the number of multiply-adds below which a matmul runs
// on the calling goroutine: spawning workers costs more than it saves.
const minParallelWork = 1 << 16

// MatMul computes out[n×Rows] = x[n×Cols]·Wᵀ (a linear layer applied to n
// input vectors). It is the hot path of inference and training. Output rows
// of W are split across GOMAXPROCS workers. For one input vector each worker
// takes fused dot products straight from the stored (quantized) rows; for
// a few, it dequantizes a row of W once and takes its dot product with all
// n inputs, four at a time; for many (20 or more with AVX-512, 10 with
// AVX2, 5 with NEON) it runs a register-blocked kernel on panels of
// dequantized rows against the inputs transposed into panels (see SIMD.md).
// Each output element is computed by exactly one worker in a fixed order,
// so results do not depend on the number of workers.
//
// The kernels are SIMD assembly where the CPU supports it (see [SIMD]) and
// plain Go elsewhere. MatMul panics if out, x or w.Data are shorter than the
// shapes require, as slice indexing would.
func MatMul(out, x []float32, n int, w *Matrix) { matMul(active, out, x, n, w) }

// MatMulT computes out[n×Cols] = dy[n×Rows]·W (the input gradient of a
// linear layer), overwriting out. For n == 1 the columns are split across
// workers (each adds every row's contribution to its own columns, fused with
// dequantization). For n ≥ 4 with SIMD kernels a register-blocked kernel
// multiplies groups of dy rows by panels of dequantized W, 256 rows of W per
// pass, split across workers by columns or by groups of inputs; otherwise
// the n rows of dy are split and each row of W is added with an axpy. Either
// way each output element is summed by one worker in a fixed order, so
// results do not depend on the number of workers. It panics on short slices
// as [MatMul] does.
func MatMulT(out, dy []float32, n int, w *Matrix) { matMulT(active, out, dy, n, w) }

// Dot returns Σ a[i]·b[i] over len(a) elements (b must be at least as long).
func Dot(a, b []float32) float32 { return active.dot(a, b) }

// Axpy computes y[i] += alpha·x[i] over len(x) elements (y must be at least
// as long).
func Axpy(alpha float32, x, y []float32) { active.axpy(alpha, x, y) }

// Max returns the largest element of x, which must not be empty. NaNs are
// not looked for.
func Max(x []float32) float32 { return active.max(x) }

// Sigmoid sets dst[i] = 1/(1+e^−x[i]) for every element of x (dst at
// least as long; it may be x itself), to a few ulp.
func Sigmoid(dst, x []float32) { active.sigmoid(dst, x) }

// GELUGate sets dst[i] = σ(2√(2/π)·(x[i] + 0.044715·x[i]³)), so that
// x·dst is GELU's tanh approximation 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³)))
// exactly (tanh u = 2σ(2u) − 1), through the vectorised sigmoid instead of
// a float64 tanh per value. dst may be x.
func GELUGate(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = GELUGateC * (v + GELUGateK*v*v*v)
	}
	Sigmoid(dst, dst)
}

// GELUGateC and GELUGateK are GELUGate's constants: 2·√(2/π) and
// 0.044715.
const (
	GELUGateC = 2 * 0.7978845608028654
	GELUGateK = 0.044715
)

// ExpSub sets x[i] = e^(x[i]−m) in place and returns the sum of the new
// values: the exponentials of a softmax once m = Max(x) is known. Each
// value is Exp32's, whichever kernel runs.
func ExpSub(x []float32, m float32) float32 { return active.expSub(x, m) }

// checkShapes panics with a clear message when slices are too short for the
// shapes: the assembly kernels must never be handed short slices.
func checkShapes(op string, out, in []float32, nOut, nIn, n int, w *Matrix) int {
	rb, err := quant.RowBytes(w.Type, w.Cols)
	if err != nil {
		panic(fmt.Sprintf("tensor.%s: invalid matrix: %v", op, err))
	}
	switch {
	case n < 0 || w.Rows < 0:
		panic(fmt.Sprintf("tensor.%s: negative size (n=%d, rows=%d)", op, n, w.Rows))
	case len(w.Data) < w.Rows*rb:
		panic(fmt.Sprintf("tensor.%s: %s matrix %d×%d has %d bytes, needs %d", op, w.Type, w.Rows, w.Cols, len(w.Data), w.Rows*rb))
	case len(in) < n*nIn:
		panic(fmt.Sprintf("tensor.%s: input has %d values, needs %d (n=%d × %d)", op, len(in), n*nIn, n, nIn))
	case len(out) < n*nOut:
		panic(fmt.Sprintf("tensor.%s: output has %d values, needs %d (n=%d × %d)", op, len(out), n*nOut, n, nOut))
	}
	return rb
}

// dequantizer returns the row dequantization function of k for type t.
func (k *kernels) dequantizer(t quant.Type) func(dst []float32, row []byte) {
	if f := k.rows[t].dequant; f != nil {
		return f
	}
	return func(dst []float32, row []byte) {
		if err := quant.Dequantize(t, row, dst); err != nil {
			panic(err) // sizes were checked by checkShapes
		}
	}
}

func matMul(k *kernels, out, x []float32, n int, w *Matrix) {
	rb := checkShapes("MatMul", out, x, w.Rows, w.Cols, n, w)
	rows, cols := w.Rows, w.Cols
	if n == 0 || rows == 0 {
		return
	}
	if cols == 0 {
		clear(out[:n*rows])
		return
	}
	if k.gemm != nil && 8*n >= gemmMinNFrac*k.gemm.nr {
		matMulGemm(k, out, x, n, w, rb)
		return
	}
	if fused := k.rows[w.Type].dot; fused != nil && n < 4 {
		parallelRows(rows, rows*cols*n, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				wr := w.Data[r*rb : (r+1)*rb]
				for i := 0; i < n; i++ {
					out[i*rows+r] = fused(x[i*cols:(i+1)*cols], wr)
				}
			}
		})
		return
	}
	deq := k.dequantizer(w.Type)
	parallelRows(rows, rows*cols*n, func(lo, hi int) {
		// Pooled, the 4 outputs too (a local array would escape through
		// the dot4 call): no allocation per worker and call.
		rowBuf := getBuf(cols + 4)
		defer putBuf(rowBuf)
		row := (*rowBuf)[:cols]
		o := (*[4]float32)((*rowBuf)[cols:])
		for r := lo; r < hi; r++ {
			deq(row, w.Data[r*rb:(r+1)*rb])
			i := 0
			for ; i+4 <= n; i += 4 {
				k.dot4(row, x[i*cols:(i+4)*cols], cols, o)
				for j, v := range o {
					out[(i+j)*rows+r] = v
				}
			}
			for ; i < n; i++ {
				out[i*rows+r] = k.dot(row, x[i*cols:(i+1)*cols])
			}
		}
	})
}

func matMulT(k *kernels, out, dy []float32, n int, w *Matrix) {
	rb := checkShapes("MatMulT", out, dy, w.Cols, w.Rows, n, w)
	rows, cols := w.Rows, w.Cols
	if k.gemm != nil && n >= gemmMinNT && rows > 0 && cols > 0 {
		matMulTGemm(k, out, dy, n, w, rb)
		return
	}
	clear(out[:n*cols])
	if n == 0 || rows == 0 || cols == 0 {
		return
	}
	rk := k.rows[w.Type]
	deq := k.dequantizer(w.Type)
	if n == 1 {
		// Split the columns, in whole blocks, across workers.
		bs, bb := w.Type.BlockSize(), w.Type.BlockBytes()
		parallelRows(cols/bs, rows*cols, func(lo, hi int) {
			o := out[lo*bs : hi*bs]
			var tmp []float32
			if rk.axpy == nil {
				tb := getBuf(len(o))
				defer putBuf(tb)
				tmp = *tb
			}
			for r := 0; r < rows; r++ {
				g := dy[r]
				if g == 0 {
					continue
				}
				seg := w.Data[r*rb+lo*bb : r*rb+hi*bb]
				if rk.axpy != nil {
					rk.axpy(g, seg, o)
					continue
				}
				deq(tmp, seg)
				k.axpy(g, tmp, o)
			}
		})
		return
	}
	parallelRows(n, rows*cols*n, func(lo, hi int) {
		rowBuf := getBuf(cols)
		defer putBuf(rowBuf)
		row := *rowBuf
		for r := 0; r < rows; r++ {
			deq(row, w.Data[r*rb:(r+1)*rb])
			for i := lo; i < hi; i++ {
				if g := dy[i*rows+r]; g != 0 {
					k.axpy(g, row, out[i*cols:(i+1)*cols])
				}
			}
		}
	})
}

// parallelRows runs f over [0, rows) in contiguous chunks, one per worker,
// when the work (in multiply-adds) is worth splitting.
func parallelRows(rows, work int, f func(lo, hi int)) { parallelSplit(rows, work, 1, f) }

// parallelChunks is parallelRows in gemmChunksPerWorker chunks per worker,
// taken in turn: a worker that falls behind (its core shared with another
// process, a slower core) then leaves the others a chunk to wait for, not
// half the work. For loops whose chunks cost little to start and write
// disjoint outputs (the blocked MatMul).
func parallelChunks(rows, work int, f func(lo, hi int)) {
	parallelSplit(rows, work, gemmChunksPerWorker, f)
}

// parallelSplit runs f over [0, rows) in perWorker chunks per worker, or
// in one call on the caller when there is one worker or too little work.
func parallelSplit(rows, work, perWorker int, f func(lo, hi int)) {
	workers := parallel.Workers()
	if work < minParallelWork || workers <= 1 {
		f(0, rows)
		return
	}
	parallel.For(rows, perWorker*workers, f)
}
