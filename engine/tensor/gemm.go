package tensor

import (
	"fmt"
	"sync"

	"orchmind/engine/parallel"
	"orchmind/engine/quant"
)

// gemmKernel is a register-blocked micro-kernel: it computes one mr×nr tile
// C = A·B (or C += A·B) with A mr×k (rows lda apart), B k×nr (rows ldb
// apart) and C rows ldc apart, keeping the mr·nr sums in vector registers
// for the whole k loop. MatMul and MatMulT with several input vectors are
// built from it (see matMulGemm and matMulTGemm).
type gemmKernel struct {
	mr, nr int
	f      func(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k int, acc int)
	// ft, when not nil, computes the same tile but stores it transposed
	// (element (i, j) at c[j·ldc + i]), overwriting.
	ft func(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k int)
	// t8, when not nil, transposes 8 rows of x (ldx apart) over n columns
	// (a multiple of 8) into dst, column c at dst[c·ldd:]: the packing of
	// MatMul's inputs.
	t8 func(dst *float32, ldd int, x *float32, ldx int, n int)
}

// run calls the kernel after checking that every row it touches lies inside
// its slice, so that the assembly never reads or writes past them.
func (g *gemmKernel) run(a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k int, acc bool) {
	if k < 1 || lda < k || ldb < g.nr || ldc < g.nr ||
		len(a) < (g.mr-1)*lda+k || len(b) < (k-1)*ldb+g.nr || len(c) < (g.mr-1)*ldc+g.nr {
		panic(fmt.Sprintf("tensor: gemm tile out of bounds (k=%d lda=%d ldb=%d ldc=%d, len a=%d b=%d c=%d): a bug in the tiling", k, lda, ldb, ldc, len(a), len(b), len(c)))
	}
	flag := 0
	if acc {
		flag = 1
	}
	g.f(&a[0], lda, &b[0], ldb, &c[0], ldc, k, flag)
}

// runT calls ft (which must not be nil) after the same checks as run, for
// a transposed tile: nr rows of mr values, ldc apart.
func (g *gemmKernel) runT(a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k int) {
	if k < 1 || lda < k || ldb < g.nr || ldc < g.mr ||
		len(a) < (g.mr-1)*lda+k || len(b) < (k-1)*ldb+g.nr || len(c) < (g.nr-1)*ldc+g.mr {
		panic(fmt.Sprintf("tensor: transposed gemm tile out of bounds (k=%d lda=%d ldb=%d ldc=%d, len a=%d b=%d c=%d): a bug in the tiling", k, lda, ldb, ldc, len(a), len(b), len(c)))
	}
	g.ft(&a[0], lda, &b[0], ldb, &c[0], ldc, k)
}

// gemmRef is the plain-Go definition of a gemmKernel call, for tests.
func gemmRef(mr, nr int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, k int, acc bool) {
	for i := range mr {
		for j := range nr {
			var s float32
			for p := range k {
				s += a[i*lda+p] * b[p*ldb+j]
			}
			if acc {
				s += c[i*ldc+j]
			}
			c[i*ldc+j] = s
		}
	}
}

// Thresholds for the blocked paths: below them the simpler kernels win
// (a blocked tile would be mostly padding).
const (
	// gemmMinNFrac is the smallest number of input vectors for which MatMul
	// uses the blocked kernel, in eighths of its panel width nr: below about
	// 5/8 of a panel of inputs, dot4 over dequantized rows wastes less
	// (measured at 768×288 Q8_0 with AVX-512: even at n = 16, faster at 24).
	gemmMinNFrac = 5
	// gemmMinNT is the same for MatMulT (its input groups are mr wide).
	gemmMinNT = 4
	// gemmKC is the depth of one pass of MatMulT over W's rows: a kc×nr
	// panel of dequantized W (32 KiB for nr=32) stays in L1 while every
	// group of inputs runs over it.
	gemmKC = 256
	// gemmDequantCost is the time to dequantize one value of W in units of
	// one multiply-add of the blocked kernel (measured with Q8_0 on AVX-512).
	gemmDequantCost = 8
	// gemmChunksPerWorker is how many chunks per worker the blocked MatMul
	// splits W's row panels into: workers take them in turn, so one that
	// falls behind holds the others up by a chunk at most (in the Gemma 3
	// 1B training step on 2 cores, waiting took about 3% of the CPU time
	// with one chunk per worker). At 2 threads, medians of 16 alternated
	// runs at Gemma 3 1B shapes, n = 256: avx2 1.04–1.13×, avx512
	// 1.00–1.09×. MatMulT keeps one chunk of columns per worker: shorter
	// chunks read W in shorter pieces per row and measured 0.87–1.02×.
	gemmChunksPerWorker = 4
)

// bufPool recycles the scratch buffers of the blocked paths (packed inputs,
// dequantized panels), which are too large to allocate on every call.
var bufPool = sync.Pool{New: func() any { return new([]float32) }}

// getBuf returns a pooled buffer of length n (contents undefined).
func getBuf(n int) *[]float32 {
	p := bufPool.Get().(*[]float32)
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return p
}

func putBuf(p *[]float32) { bufPool.Put(p) }

// matMulGemm computes out[n×rows] = x[n×cols]·Wᵀ with the blocked kernel,
// as C' = W·xᵀ: x is transposed once into panels of nr inputs (cols×nr,
// zero-padded), then each worker takes panels of mr rows of W, dequantizes
// them once and runs the kernel against every input panel, scattering the
// mr×nr tile into out. Every output element is one kernel sum over all of
// cols in order, so the result does not depend on the number of workers.
func matMulGemm(k *kernels, out, x []float32, n int, w *Matrix, rb int) {
	g := k.gemm
	mr, nr := g.mr, g.nr
	rows, cols := w.Rows, w.Cols
	np := (n + nr - 1) / nr
	xpBuf := getBuf(np * cols * nr)
	defer putBuf(xpBuf)
	xp := *xpBuf
	parallelRows(np, np*cols*nr*8, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			g.pack(xp[j*cols*nr:(j+1)*cols*nr], x, j*nr, min(nr, n-j*nr), cols)
		}
	})
	deq := k.dequantizer(w.Type)
	wf, direct := f32Rows(w, rb)
	panels := (rows + mr - 1) / mr
	parallelChunks(panels, rows*cols*n, func(lo, hi int) {
		aBuf := getBuf(mr*cols + mr*nr)
		defer putBuf(aBuf)
		buf, tile := (*aBuf)[:mr*cols], (*aBuf)[mr*cols:]
		for p := lo; p < hi; p++ {
			r0 := p * mr
			nrow := min(mr, rows-r0)
			// A float32 matrix's whole panel is read where it lies (its
			// rows are already cols apart): attention's products and the
			// adapter's take their operands this way, with no copy.
			a := buf
			if direct && nrow == mr {
				a = wf[r0*cols : (r0+mr)*cols]
			} else {
				for i := range nrow {
					r := r0 + i
					deq(a[i*cols:(i+1)*cols], w.Data[r*rb:(r+1)*rb])
				}
				clear(a[nrow*cols:])
			}
			for j := range np {
				i0 := j * nr
				if g.ft != nil && nrow == mr && i0+nr <= n {
					// Whole tile: the kernel stores it transposed, straight
					// into out.
					g.runT(a, cols, xp[j*cols*nr:], nr, out[i0*rows+r0:], rows, cols)
					continue
				}
				g.run(a, cols, xp[j*cols*nr:], nr, tile, nr, cols, false)
				for t := range min(nr, n-i0) {
					o := out[(i0+t)*rows+r0 : (i0+t)*rows+r0+nrow]
					for i := range o {
						o[i] = tile[i*nr+t]
					}
				}
			}
		}
	})
}

// f32Rows returns a float32 matrix's values in place, row after row, when
// its rows are stored back to back (rb = 4·cols bytes a row) and 4-byte
// aligned; ok is false otherwise, and for other types.
func f32Rows(w *Matrix, rb int) ([]float32, bool) {
	if w.Type != quant.F32 || rb != 4*w.Cols {
		return nil, false
	}
	return asFloat32(w.Data)
}

// pack writes inputs x[i0 .. i0+m) (rows of cols values) as a cols×nr
// panel: dst[c·nr + t] = x[(i0+t)·cols + c], zero for t ≥ m. Whole groups
// of 8 inputs × 8 columns go through the t8 kernel when there is one.
func (g *gemmKernel) pack(dst, x []float32, i0, m, cols int) {
	nr := g.nr
	dst = dst[:cols*nr]
	if m < nr {
		clear(dst)
	}
	t0, c8 := 0, 0
	if g.t8 != nil {
		c8 = cols &^ 7
		for ; t0+8 <= m && c8 > 0; t0 += 8 {
			src := x[(i0+t0)*cols : (i0+t0+8)*cols]
			d := dst[t0:]
			// Bounds for the kernel: 8 rows of src, c8 columns of d.
			_, _ = src[7*cols+c8-1], d[(c8-1)*nr+7]
			g.t8(&d[0], nr, &src[0], cols, c8)
		}
	}
	// What the kernel did not cover: the columns past c8 of its rows, and
	// every column of the remaining rows.
	for t := range m {
		c0 := 0
		if t < t0 {
			c0 = c8
		}
		if c0 == cols {
			continue
		}
		src := x[(i0+t)*cols+c0 : (i0+t+1)*cols]
		d := dst[c0*nr+t:]
		for c, v := range src {
			d[c*nr] = v
		}
	}
}

// matMulTGemm computes out[n×cols] = dy[n×rows]·W with the blocked kernel:
// C = dy·W directly, K = rows taken gemmKC at a time. The work is split
// across workers by columns (whole nr panels, aligned to W's blocks) or,
// when there are too few panels to share evenly, by groups of mr inputs.
// For each pass a worker dequantizes its part of gemmKC rows of W into a
// padded scratch, then for every nr-column panel runs the kernel for every
// group of inputs, accumulating into out. The summation order of an output
// element is fixed by gemmKC and the kernel alone, so results do not depend
// on the number of workers.
func matMulTGemm(k *kernels, out, dy []float32, n int, w *Matrix, rb int) {
	g := k.gemm
	mr, nr := g.mr, g.nr
	rows, cols := w.Rows, w.Cols
	bs, bb := w.Type.BlockSize(), w.Type.BlockBytes()
	unit := nr // columns per split unit: whole panels and whole blocks
	for unit%bs != 0 {
		unit += nr
	}
	units := (cols + unit - 1) / unit
	groups := (n + mr - 1) / mr
	workers := parallel.Workers()
	if rows*cols*n < minParallelWork {
		workers = 1
	}
	job := func(c0, c1, i0, i1 int) { matMulTPart(k, out, dy, n, w, rb, bs, bb, c0, c1, i0, i1) }
	// Splitting by columns shares the dequantization but may leave workers
	// uneven panel counts; splitting by input groups balances the products
	// but has every worker dequantize all of W. Pick the one whose busiest
	// worker has less to do, in multiply-adds (dequantizing a value costs
	// about gemmDequantCost of them, measured).
	colCost := min(unit*((units+workers-1)/workers), cols) * (gemmDequantCost + n)
	groupCost := cols*gemmDequantCost + cols*mr*((groups+workers-1)/workers)
	byColumns := colCost <= groupCost
	if workers <= 1 {
		job(0, cols, 0, n)
		return
	}
	if byColumns {
		parallel.For(units, workers, func(u0, u1 int) { job(u0*unit, min(u1*unit, cols), 0, n) })
	} else {
		parallel.For(groups, workers, func(g0, g1 int) { job(0, cols, g0*mr, min(g1*mr, n)) })
	}
}

// matMulTPart computes out[i0:i1, c0:c1] of MatMulT. c0 is a multiple of the
// block size bs (so whole blocks are dequantized) and of nr; i0 of mr.
func matMulTPart(k *kernels, out, dy []float32, n int, w *Matrix, rb, bs, bb, c0, c1, i0, i1 int) {
	g := k.gemm
	mr, nr := g.mr, g.nr
	rows, cols := w.Rows, w.Cols
	width := c1 - c0
	panels := (width + nr - 1) / nr
	// Scratch rows are an odd number of 64-byte lines apart, so that a
	// kc×nr panel spreads over all L1 sets instead of a few.
	ld := panels * nr
	if ld%16 != 0 {
		ld += 16 - ld%16
	}
	if (ld/16)%2 == 0 {
		ld += 16
	}
	kc := min(gemmKC, rows)
	sBuf := getBuf(kc*ld + mr*kc + mr*nr)
	defer putBuf(sBuf)
	s := (*sBuf)[:kc*ld]
	tmpA := (*sBuf)[kc*ld : kc*ld+mr*kc]
	tmpC := (*sBuf)[kc*ld+mr*kc:]
	if width%nr != 0 {
		for r := range kc {
			clear(s[r*ld+width : r*ld+panels*nr])
		}
	}
	deq := k.dequantizer(w.Type)
	seg0, seg1 := c0/bs*bb, (c1+bs-1)/bs*bb // c1 < cols only on a block boundary
	// A float32 matrix's whole panels are read where they lie (rows cols
	// apart); only a last, partial panel goes through the zero-padded
	// scratch.
	wf, direct := f32Rows(w, rb)
	tail := width / nr * nr // the first column (from c0) of a partial panel
	for r0 := 0; r0 < rows; r0 += kc {
		kk := min(kc, rows-r0)
		for r := range kk {
			if direct {
				if tail < width {
					copy(s[r*ld+tail:r*ld+width], wf[(r0+r)*cols+c0+tail:(r0+r)*cols+c1])
				}
				continue
			}
			row := w.Data[(r0+r)*rb : (r0+r+1)*rb]
			deq(s[r*ld:r*ld+width], row[seg0:seg1])
		}
		acc := r0 > 0
		for p := range panels {
			c := c0 + p*nr
			fullC := c+nr <= c1
			b, ldb := s[p*nr:], ld
			if direct && fullC {
				b, ldb = wf[r0*cols+c:], cols
			}
			for i := i0; i < i1; i += mr {
				m := min(mr, i1-i)
				if fullC && m == mr {
					g.run(dy[i*rows+r0:], rows, b, ldb, out[i*cols+c:], cols, kk, acc)
					continue
				}
				// A tail: pad the inputs and/or the columns through
				// scratch tiles, then copy the valid part back.
				nc := min(nr, c1-c)
				clear(tmpA)
				for t := range m {
					copy(tmpA[t*kk:(t+1)*kk], dy[(i+t)*rows+r0:(i+t)*rows+r0+kk])
				}
				if acc {
					for t := range m {
						copy(tmpC[t*nr:t*nr+nc], out[(i+t)*cols+c:])
					}
				}
				g.run(tmpA, kk, b, ldb, tmpC, nr, kk, acc)
				for t := range m {
					copy(out[(i+t)*cols+c:(i+t)*cols+c+nc], tmpC[t*nr:t*nr+nc])
				}
			}
		}
	}
}
