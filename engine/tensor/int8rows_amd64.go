package tensor

import "orchmind/engine/quant"

// dotQ4_0Q8VNNI16 (int8rows_amd64.s) sets out[0:16] to the dot products of
// 16 Q4_0 rows of nb blocks each, row i at w + i·stride, with the
// activation q, d, m (Q8Act.M8); sc holds the rows' f16 scales, 16 per
// block (int8Scales).
//
//go:noescape
func dotQ4_0Q8VNNI16(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)

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
	t := sc.tab[gi*nb*2*g : (gi+1)*nb*2*g]
	_, _, _ = a.Q[nb*quant.QK-1], a.D[nb-1], a.M8[nb-1]
	dotQ4_0Q8VNNI16(&w.Data[first*rb], rb, &t[0], &a.Q[0], &a.D[0], &a.M8[0], nb, &out[0])
}

// dotQ4_KQ8VNNI16 (int8rows_amd64.s) sets out[0:16] to the dot products of
// 16 Q4_K rows of nb super-blocks each, row i at w + i·stride, with the
// activation q, d, m (Q8Act.M8); sc is the rows' part of the int8Scales
// table (320 bytes per super-block).
//
//go:noescape
func dotQ4_KQ8VNNI16(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)

// q4KGroupVNNI is the 16-row Q4_K kernel with bounds checked.
func q4KGroupVNNI(a *quant.Q8Act, w *Matrix, sc *int8Scales, first int, out []float32) {
	const g = 16
	rb := len(w.Data) / w.Rows
	nb := rb / q4KBytes
	out = out[:g]
	if nb == 0 {
		clear(out)
		return
	}
	_ = w.Data[(first+g)*rb-1]
	gi := first / g
	t := sc.tab[gi*nb*20*g : (gi+1)*nb*20*g]
	na := nb * quant.QKK / quant.QK
	_, _, _ = a.Q[na*quant.QK-1], a.D[na-1], a.M8[na-1]
	dotQ4_KQ8VNNI16(&w.Data[first*rb], rb, &t[0], &a.Q[0], &a.D[0], &a.M8[0], nb, &out[0])
}

// dotQ4_0Q8AVX2x8 (int8rows_amd64.s) is dotQ4_0Q8VNNI16 for 8 rows with
// VPMADDUBSW (sc: the groups-of-8 table).
//
//go:noescape
func dotQ4_0Q8AVX2x8(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)

// q4GroupAVX2 is the 8-row Q4_0 kernel with bounds checked.
func q4GroupAVX2(a *quant.Q8Act, w *Matrix, sc *int8Scales, first int, out []float32) {
	const g = 8
	rb := len(w.Data) / w.Rows
	nb := rb / q4bb
	out = out[:g]
	if nb == 0 {
		clear(out)
		return
	}
	_ = w.Data[(first+g)*rb-1]
	gi := first / g
	t := sc.tab[gi*nb*2*g : (gi+1)*nb*2*g]
	_, _, _ = a.Q[nb*quant.QK-1], a.D[nb-1], a.M8[nb-1]
	dotQ4_0Q8AVX2x8(&w.Data[first*rb], rb, &t[0], &a.Q[0], &a.D[0], &a.M8[0], nb, &out[0])
}

// dotQ4_KQ8AVX2x8 (int8rows_amd64.s) is dotQ4_KQ8VNNI16 for 8 rows with
// VPMADDUBSW (sc: the groups-of-8 table, 160 bytes per super-block).
//
//go:noescape
func dotQ4_KQ8AVX2x8(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)

// q4KGroupAVX2 is the 8-row Q4_K kernel with bounds checked.
func q4KGroupAVX2(a *quant.Q8Act, w *Matrix, sc *int8Scales, first int, out []float32) {
	const g = 8
	rb := len(w.Data) / w.Rows
	nb := rb / q4KBytes
	out = out[:g]
	if nb == 0 {
		clear(out)
		return
	}
	_ = w.Data[(first+g)*rb-1]
	gi := first / g
	t := sc.tab[gi*nb*20*g : (gi+1)*nb*20*g]
	na := nb * quant.QKK / quant.QK
	_, _, _ = a.Q[na*quant.QK-1], a.D[na-1], a.M8[na-1]
	dotQ4_KQ8AVX2x8(&w.Data[first*rb], rb, &t[0], &a.Q[0], &a.D[0], &a.M8[0], nb, &out[0])
}
