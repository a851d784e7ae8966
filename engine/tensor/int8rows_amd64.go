package tensor

import "orchmind/engine/quant"

// dotQ4_0Q8VNNI16 (int8rows_amd64.s) sets out[0:16] to the dot products of
// 16 Q4_0 rows of nb blocks each, row i at w + i·stride, with the
// activation q, d, m (Q8Act.M8); sc holds the rows' f16 scales, 16 per
// block (int8Scales).
//
//go:noescape
func dotQ4_0Q8VNNI16(w *byte, stride int, sc *uint16, q *int8, d *float32, m *int32, nb int, out *float32)

// q4GroupVNNI is the 16-row Q4_0 kernel with bounds checked.
func q4GroupVNNI(a *quant.Q8Act, w *Matrix, sc *int8Scales, first int, out []float32) {
	const g = 16
	rb := len(w.Data) / w.Rows
	nb := rb / q4bb
	out = out[:g]
	if nb == 0 {
		clear(out)
		return
	}
	_ = w.Data[(first+g)*rb-1]
	gi := first / g
	t := sc.f16[gi*nb*g : (gi+1)*nb*g]
	_, _, _ = a.Q[nb*quant.QK-1], a.D[nb-1], a.M8[nb-1]
	dotQ4_0Q8VNNI16(&w.Data[first*rb], rb, &t[0], &a.Q[0], &a.D[0], &a.M8[0], nb, &out[0])
}
