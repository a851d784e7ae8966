package tensor

import (
	"sync/atomic"

	"orchmind/engine/quant"
)

// Several rows per kernel call (see SIMD.md, "Int8 dot products: rows in
// groups"). A group kernel multiplies one quantized activation with
// `group` consecutive stored rows, loading every activation block once
// for all of them, and sums each block's products so that one vector
// lane holds one row: the block's float scaling is then one conversion
// and one FMA for the whole group, with the group's weight scales read as
// one vector from a side table (int8Scales) made once per matrix.

// int8Group is a kernel over `group` consecutive rows of whole blocks:
// out[i] = Σ w_i·x for rows first…first+group−1 of w.
type int8Group struct {
	group int
	dot   func(a *quant.Q8Act, w *Matrix, sc *int8Scales, first int, out []float32)
}

// int8Scales is a Q4_0 or Q8_0 matrix's f16 block scales rearranged for
// the group kernels: for each group of g rows (whole groups only) and
// each block b, the g rows' scales side by side (group-major, then block,
// then row). It costs 2 bytes per block (1/9 of Q4_0's bytes, 1/17 of
// Q8_0's) and is made at the first integer product with the matrix.
type int8Scales struct {
	data  *byte // the matrix's Data it was made from
	group int
	f16   []uint16
}

// groupScales returns w's scale table for groups of g rows, making and
// caching it on w at first use (concurrent first uses may each make one;
// one is kept).
func (w *Matrix) groupScales(g int) *int8Scales {
	if s := w.i8.Load(); s != nil && s.group == g && len(w.Data) > 0 && s.data == &w.Data[0] {
		return s
	}
	s := makeGroupScales(w, g)
	w.i8.Store(s)
	return s
}

// makeGroupScales builds the scale table of w for groups of g rows.
func makeGroupScales(w *Matrix, g int) *int8Scales {
	bb := w.Type.BlockBytes()
	rb := len(w.Data) / max(w.Rows, 1)
	nb := rb / bb
	groups := w.Rows / g
	s := &int8Scales{group: g, f16: make([]uint16, groups*nb*g)}
	if len(w.Data) > 0 {
		s.data = &w.Data[0]
	}
	for gi := range groups {
		for i := range g {
			row := w.Data[(gi*g+i)*rb:]
			for b := range nb {
				s.f16[(gi*nb+b)*g+i] = uint16(row[b*bb]) | uint16(row[b*bb+1])<<8
			}
		}
	}
	return s
}

// int8Cache is the per-matrix state of the integer path (the group
// kernels' scale table), held by Matrix.
type int8Cache = atomic.Pointer[int8Scales]
