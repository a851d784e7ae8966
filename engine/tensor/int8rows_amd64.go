package tensor

import "orchmind/engine/quant"

// The group kernels (int8rows_amd64.s) set out[0:g] to the dot products of
// g rows of nb blocks (Q4_0) or super-blocks (Q4_K) each, row i at
// w + i·stride, with the activation q, d, m (Q8Act.M8); sc is the rows'
// part of the int8Scales table.
//
//   - dotQ4_0Q8VNNI16: 16 Q4_0 rows, VPDPBUSD; sc: f16 scales, 16 per block.
//   - dotQ4_KQ8VNNI16: 16 Q4_K rows, VPDPBUSD; sc: 320 bytes per super-block.
//   - dotQ4_0Q8AVX2x8, dotQ4_KQ8AVX2x8: the same for 8 rows with
//     VPMADDUBSW (sc: the groups-of-8 tables, 160 bytes per Q4_K
//     super-block).

//go:noescape
func dotQ4_0Q8VNNI16(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)

//go:noescape
func dotQ4_KQ8VNNI16(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)

//go:noescape
func dotQ4_0Q8AVX2x8(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)

//go:noescape
func dotQ4_KQ8AVX2x8(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)

// groupKernel is the signature the group kernels share.
type groupKernel func(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)

// groupCall runs kernel k over the g rows from first with every bound
// checked in Go. The sizes come from w's type: a stored block (Q4_0 block
// or Q4_K super-block), its part of the scale table (groupTabBytes) and
// the activation's Q8 blocks per stored block.
func groupCall(k groupKernel, g int, a *quant.Q8Act, w *Matrix, sc *int8Scales, first int, out []float32) {
	rb := len(w.Data) / w.Rows
	nb := rb / w.Type.BlockBytes()
	out = out[:g]
	if nb == 0 {
		clear(out)
		return
	}
	_ = w.Data[(first+g)*rb-1]
	tb := nb * groupTabBytes(w.Type, g)
	gi := first / g
	t := sc.tab[gi*tb : (gi+1)*tb]
	na := nb * w.Type.BlockSize() / quant.QK
	_, _, _ = a.Q[na*quant.QK-1], a.D[na-1], a.M8[na-1]
	k(&w.Data[first*rb], rb, &t[0], &a.Q[0], &a.D[0], &a.M8[0], nb, &out[0])
}

// q4GroupVNNI is the 16-row Q4_0 kernel with bounds checked.
func q4GroupVNNI(a *quant.Q8Act, w *Matrix, sc *int8Scales, first int, out []float32) {
	groupCall(dotQ4_0Q8VNNI16, 16, a, w, sc, first, out)
}

// q4KGroupVNNI is the 16-row Q4_K kernel with bounds checked.
func q4KGroupVNNI(a *quant.Q8Act, w *Matrix, sc *int8Scales, first int, out []float32) {
	groupCall(dotQ4_KQ8VNNI16, 16, a, w, sc, first, out)
}

// q4GroupAVX2 is the 8-row Q4_0 kernel with bounds checked.
func q4GroupAVX2(a *quant.Q8Act, w *Matrix, sc *int8Scales, first int, out []float32) {
	groupCall(dotQ4_0Q8AVX2x8, 8, a, w, sc, first, out)
}

// q4KGroupAVX2 is the 8-row Q4_K kernel with bounds checked.
func q4KGroupAVX2(a *quant.Q8Act, w *Matrix, sc *int8Scales, first int, out []float32) {
	groupCall(dotQ4_KQ8AVX2x8, 8, a, w, sc, first, out)
}
