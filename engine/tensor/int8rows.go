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

// int8Scales is a matrix's block scales rearranged for the group
// kernels, group by group (whole groups of g rows only), then block
// (Q4_0) or super-block (Q4_K), the g rows side by side in each field:
//
//   - Q4_0 (and Q8_0, same layout): the g rows' f16 scales of the block
//     (2g bytes; 1/9 of Q4_0's bytes);
//   - Q4_K: the g rows' f16 d, then their f16 dmin, then for each of the 8
//     sub-blocks the g rows' 6-bit scales as bytes, then the 8 sub-blocks'
//     mins likewise (20g bytes, 1/7.2 of Q4_K's bytes).
//
// It is made at the first integer product with the matrix.
type int8Scales struct {
	data  *byte // the matrix's Data it was made from
	group int
	tab   []byte
}

// groupTabBytes is the table's size per group and block (super-block for
// Q4_K) for groups of g rows of type t.
func groupTabBytes(t quant.Type, g int) int {
	if t == quant.Q4_K {
		return 20 * g
	}
	return 2 * g
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
	tb := groupTabBytes(w.Type, g)
	s := &int8Scales{group: g, tab: make([]byte, groups*nb*tb)}
	if len(w.Data) > 0 {
		s.data = &w.Data[0]
	}
	for gi := range groups {
		for i := range g {
			row := w.Data[(gi*g+i)*rb:]
			for b := range nb {
				blk := row[b*bb : (b+1)*bb]
				t := s.tab[(gi*nb+b)*tb : (gi*nb+b+1)*tb]
				t[2*i], t[2*i+1] = blk[0], blk[1]
				if w.Type != quant.Q4_K {
					continue
				}
				t[2*g+2*i], t[2*g+2*i+1] = blk[2], blk[3]
				sc, mn := kScales((*[12]byte)(blk[4:16]))
				for sub := range 8 {
					t[4*g+sub*g+i] = sc[sub]
					t[12*g+sub*g+i] = mn[sub]
				}
			}
		}
	}
	return s
}

// int8Cache is the per-matrix state of the integer path (the group
// kernels' scale table), held by Matrix.
type int8Cache = atomic.Pointer[int8Scales]
