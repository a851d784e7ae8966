//go:build amd64 || arm64

package tensor

import (
	"orchmind/engine/quant"
)

// asmSet is one family of assembly kernels (kernels_amd64.s, generated;
// kernels_arm64.s, hand-written).
type asmSet struct {
	name                 string
	lanes                int // float32 lanes per vector: the kernels' granularity
	dotF32               func(a, b *float32, n int) float32
	axpyF32              func(alpha float32, x, y *float32, n int)
	dot4F32              func(row, x *float32, stride, n int, out *[4]float32)
	dotF16               func(x *float32, w *byte, n int) float32
	dequantF16           func(dst *float32, w *byte, n int)
	dotQ8, dotQ4         func(x *float32, w *byte, nb int) float32
	dequantQ8, dequantQ4 func(dst *float32, w *byte, nb int)
	axpyQ8, axpyQ4       func(alpha float32, w *byte, y *float32, nb int)
	gemm                 func(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k int, acc int)
	gemmT                func(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k int)
	transpose8           func(dst *float32, ldd int, x *float32, ldx int, n int)
	maxF32               func(x *float32, n int) float32
	expSubF32            func(x *float32, n int, m float32) float32
	sigmoidF32           func(dst, x *float32, n int)
	sigmoidLanes         int // granularity of sigmoidF32
	mr, nr               int // gemm tile: rows of A and C, columns of B and C
	// kquant holds the K-quant row kernels by type (over nb super-blocks
	// of 256 values); a type missing here runs the pure-Go kernels.
	kquant map[quant.Type]blockKernels
}

// blockKernels are the assembly row kernels of one block type, over nb
// whole blocks.
type blockKernels struct {
	dot     func(x *float32, w *byte, nb int) float32
	dequant func(dst *float32, w *byte, nb int)
	axpy    func(alpha float32, w *byte, y *float32, nb int)
}

// kernels wraps the assembly in slice-checked functions. Every wrapper
// bounds-checks its slices before passing raw pointers on, and finishes the
// elements past the last whole vector in Go.
func (s *asmSet) kernels() *kernels {
	mask := s.lanes - 1
	dot := func(a, b []float32) float32 {
		n := len(a)
		b = b[:n]
		m := n &^ mask
		var sum float32
		if m > 0 {
			sum = s.dotF32(&a[0], &b[0], m)
		}
		for i := m; i < n; i++ {
			sum += a[i] * b[i]
		}
		return sum
	}
	axpy := func(alpha float32, x, y []float32) {
		n := len(x)
		y = y[:n]
		m := n &^ mask
		if m > 0 {
			s.axpyF32(alpha, &x[0], &y[0], m)
		}
		for i := m; i < n; i++ {
			y[i] += alpha * x[i]
		}
	}
	dot4 := func(row, x []float32, stride int, o *[4]float32) {
		n := len(row)
		if n == 0 {
			*o = [4]float32{}
			return
		}
		_ = x[3*stride+n-1] // bounds check for all four inputs
		m := n &^ mask
		if m > 0 {
			s.dot4F32(&row[0], &x[0], stride, m, o)
		} else {
			*o = [4]float32{}
		}
		for i := m; i < n; i++ {
			for j := range o {
				o[j] += row[i] * x[j*stride+i]
			}
		}
	}
	const q8b, q4b = 2 + quant.QK, 2 + quant.QK/2
	// blockDot, blockDeq and blockAxpy wrap kernels over whole blocks of
	// bs values in bb bytes.
	blockDot := func(f func(*float32, *byte, int) float32, bs, bb int) func([]float32, []byte) float32 {
		return func(x []float32, row []byte) float32 {
			nb := len(row) / bb
			if nb == 0 {
				return 0
			}
			_ = x[nb*bs-1]
			return f(&x[0], &row[0], nb)
		}
	}
	blockDeq := func(f func(*float32, *byte, int), bs, bb int) func([]float32, []byte) {
		return func(dst []float32, row []byte) {
			nb := len(row) / bb
			if nb == 0 {
				return
			}
			_ = dst[nb*bs-1]
			f(&dst[0], &row[0], nb)
		}
	}
	blockAxpy := func(f func(float32, *byte, *float32, int), bs, bb int) func(float32, []byte, []float32) {
		return func(alpha float32, row []byte, y []float32) {
			nb := len(row) / bb
			if nb == 0 {
				return
			}
			_ = y[nb*bs-1]
			f(alpha, &row[0], &y[0], nb)
		}
	}
	f16Dot := func(x []float32, row []byte) float32 {
		n := len(row) / 2
		x = x[:n]
		m := n &^ mask
		var sum float32
		if m > 0 {
			sum = s.dotF16(&x[0], &row[0], m)
		}
		for i := m; i < n; i++ {
			sum += x[i] * f16(row[2*i:])
		}
		return sum
	}
	f16Deq := func(dst []float32, row []byte) {
		n := len(row) / 2
		dst = dst[:n]
		m := n &^ mask
		if m > 0 {
			s.dequantF16(&dst[0], &row[0], m)
		}
		for i := m; i < n; i++ {
			dst[i] = f16(row[2*i:])
		}
	}
	f32Dot := func(x []float32, row []byte) float32 {
		if v, ok := asFloat32(row); ok {
			return dot(v, x)
		}
		return dotBytesF32(x, row)
	}
	f32Deq := func(dst []float32, row []byte) {
		if v, ok := asFloat32(row); ok {
			copy(dst, v)
			return
		}
		if err := quant.Dequantize(quant.F32, row, dst[:len(row)/4]); err != nil {
			panic(err) // len(row) is a multiple of 4 by construction
		}
	}
	maxf := func(x []float32) float32 {
		n := len(x)
		m := n &^ mask
		if m == 0 {
			return maxGo(x)
		}
		r := s.maxF32(&x[0], m)
		for _, v := range x[m:] {
			if v > r {
				r = v
			}
		}
		return r
	}
	sigmoid := func(dst, x []float32) {
		n := len(x)
		dst = dst[:n]
		m := n &^ (s.sigmoidLanes - 1)
		if m > 0 {
			s.sigmoidF32(&dst[0], &x[0], m)
		}
		sigmoidGo(dst[m:], x[m:])
	}
	expSub := func(x []float32, mx float32) float32 {
		n := len(x)
		m := n &^ mask
		var z float32
		if m > 0 {
			z = s.expSubF32(&x[0], m, mx)
		}
		return z + expSubGo(x[m:], mx)
	}
	rows := map[quant.Type]rowKernels{
		quant.F32:  {dot: f32Dot, dequant: f32Deq},
		quant.F16:  {dot: f16Dot, dequant: f16Deq},
		quant.Q8_0: {dot: blockDot(s.dotQ8, quant.QK, q8b), dequant: blockDeq(s.dequantQ8, quant.QK, q8b), axpy: blockAxpy(s.axpyQ8, quant.QK, q8b)},
		quant.Q4_0: {dot: blockDot(s.dotQ4, quant.QK, q4b), dequant: blockDeq(s.dequantQ4, quant.QK, q4b), axpy: blockAxpy(s.axpyQ4, quant.QK, q4b)},
	}
	for t, rk := range kquantGo {
		if bk, ok := s.kquant[t]; ok {
			bs, bb := t.BlockSize(), t.BlockBytes()
			rk = rowKernels{dot: blockDot(bk.dot, bs, bb), dequant: blockDeq(bk.dequant, bs, bb), axpy: blockAxpy(bk.axpy, bs, bb)}
		}
		rows[t] = rk // the pure-Go kernels unless the set has assembly
	}
	return &kernels{
		name:    s.name,
		dot:     dot,
		axpy:    axpy,
		max:     maxf,
		expSub:  expSub,
		sigmoid: sigmoid,
		dot4:    dot4,
		gemm:    &gemmKernel{mr: s.mr, nr: s.nr, f: s.gemm, ft: s.gemmT, t8: s.transpose8},
		rows:    rows,
	}
}

// dotBytesF32 is the dot product with a misaligned stored F32 row.
func dotBytesF32(x []float32, row []byte) float32 {
	tmp := make([]float32, len(row)/4)
	if err := quant.Dequantize(quant.F32, row, tmp); err != nil {
		panic(err) // len(row) is a multiple of 4 by construction
	}
	return dotGo(x, tmp)
}
