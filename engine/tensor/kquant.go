package tensor

import "orchmind/engine/quant"

// Pure-Go row kernels for the K-quants (Q4_K, Q5_K, Q6_K: super-blocks of
// 256 values, layouts in engine/quant/kquant.go). They are the generic
// set's kernels for these types (and would serve a SIMD set without
// assembly for one of them; avx2, avx512 and neon have it for all three).
// Each works on a run of whole super-blocks written straight into the
// caller's buffer (no per-call type switch or error as in
// quant.Dequantize).
//
// Q4_K and Q5_K values are w = d1·q − m1 with one (d1, m1) per 32 values,
// computed with the roundings of quant's decoders (float32(d1·q), then
// − m1), so dequantized values are bit-identical to theirs; the dot uses
// the same w. Q6_K values are ds·(q−32) with one ds per 16 values and q of
// 6 bits. Levels come from a table of their float32 values (cheaper than
// converting each integer). Measured against the per-sub-block table of
// all 16 or 32 possible values, computing each value was faster (Q4_K
// dequantization 0.51 vs 0.67 ns per value).

// Super-block sizes in bytes.
const (
	q4KBytes = 2 + 2 + 12 + quant.QKK/2
	q5KBytes = 2 + 2 + 12 + quant.QKK/8 + quant.QKK/2
	q6KBytes = quant.QKK/2 + quant.QKK/4 + quant.QKK/16 + 2
)

// kScales unpacks the eight 6-bit scales and mins of a Q4_K/Q5_K
// super-block from its 12 scale bytes (quant's scaleMinK4 for j = 0..7).
func kScales(q *[12]byte) (sc, mn [8]uint8) {
	for j := range 4 {
		sc[j] = q[j] & 63
		mn[j] = q[j+4] & 63
		sc[j+4] = q[j+8]&0xF | (q[j]>>6)<<4
		mn[j+4] = q[j+8]>>4 | (q[j+4]>>6)<<4
	}
	return sc, mn
}

// kSub holds the scale d1 and min m1 of each 32-value sub-block of a
// Q4_K/Q5_K super-block, rounded as quant's decoders round them.
type kSub struct{ d, m [8]float32 }

func kSubScales(b []byte) (k kSub) {
	d, dm := f16(b), f16(b[2:])
	sc, mn := kScales((*[12]byte)(b[4:16]))
	for s := range 8 {
		k.d[s], k.m[s] = d*float32(sc[s]), dm*float32(mn[s])
	}
	return k
}

// levels holds float32(q) for q < 64.
var levels = func() (t [64]float32) {
	for q := range t {
		t[q] = float32(q)
	}
	return t
}()

// q6Scales fills ds[s] with the scale of sub-block s (16 values) of the
// Q6_K super-block b, float32(d·sc[s]) as quant's decoder rounds it.
func q6Scales(b []byte, ds *[16]float32) {
	d := f16(b[208:])
	sc := (*[16]byte)(b[192:208])
	for s := range ds {
		ds[s] = d * float32(int8(sc[s]))
	}
}

// q6Level holds float32(q−32) for the 6-bit Q6_K levels q.
var q6Level = func() (t [64]float32) {
	for q := range t {
		t[q] = float32(q - 32)
	}
	return t
}()

// dequantQ4KGo writes the values of the Q4_K super-blocks of row to dst,
// bit-identical to quant.Dequantize.
func dequantQ4KGo(dst []float32, row []byte) {
	for ; len(row) >= q4KBytes; row, dst = row[q4KBytes:], dst[quant.QKK:] {
		k := kSubScales(row)
		y := (*[quant.QKK]float32)(dst[:quant.QKK])
		for j := range 4 {
			q := (*[32]byte)(row[16+32*j : 48+32*j])
			d1, m1, d2, m2 := k.d[2*j], k.m[2*j], k.d[2*j+1], k.m[2*j+1]
			yl, yh := (*[32]float32)(y[64*j:64*j+32]), (*[32]float32)(y[64*j+32:64*j+64])
			for l, v := range q {
				yl[l] = float32(d1*levels[v&15]) - m1
				yh[l] = float32(d2*levels[v>>4]) - m2
			}
		}
	}
}

// dotQ4KGo returns Σ x[i]·w[i] over the Q4_K super-blocks of row.
func dotQ4KGo(x []float32, row []byte) float32 {
	var sum float32
	for ; len(row) >= q4KBytes; row, x = row[q4KBytes:], x[quant.QKK:] {
		k := kSubScales(row)
		xb := (*[quant.QKK]float32)(x[:quant.QKK])
		for j := range 4 {
			q := (*[32]byte)(row[16+32*j : 48+32*j])
			d1, m1, d2, m2 := k.d[2*j], k.m[2*j], k.d[2*j+1], k.m[2*j+1]
			xl, xh := (*[32]float32)(xb[64*j:64*j+32]), (*[32]float32)(xb[64*j+32:64*j+64])
			var s0, s1, s2, s3 float32
			for l := 0; l < 32; l += 2 {
				v0, v1 := q[l], q[l+1]
				s0 += xl[l] * (float32(d1*levels[v0&15]) - m1)
				s1 += xh[l] * (float32(d2*levels[v0>>4]) - m2)
				s2 += xl[l+1] * (float32(d1*levels[v1&15]) - m1)
				s3 += xh[l+1] * (float32(d2*levels[v1>>4]) - m2)
			}
			sum += (s0 + s2) + (s1 + s3)
		}
	}
	return sum
}

// axpyQ4KGo computes y[i] += alpha·w[i] over the Q4_K super-blocks of row.
func axpyQ4KGo(alpha float32, row []byte, y []float32) {
	for ; len(row) >= q4KBytes; row, y = row[q4KBytes:], y[quant.QKK:] {
		k := kSubScales(row)
		yb := (*[quant.QKK]float32)(y[:quant.QKK])
		for j := range 4 {
			q := (*[32]byte)(row[16+32*j : 48+32*j])
			d1, m1, d2, m2 := k.d[2*j], k.m[2*j], k.d[2*j+1], k.m[2*j+1]
			yl, yh := (*[32]float32)(yb[64*j:64*j+32]), (*[32]float32)(yb[64*j+32:64*j+64])
			for l, v := range q {
				yl[l] += alpha * (float32(d1*levels[v&15]) - m1)
				yh[l] += alpha * (float32(d2*levels[v>>4]) - m2)
			}
		}
	}
}

// q5Levels returns the 5-bit levels of values l (low nibble of ql) and
// l+32 (high nibble) of group j of a Q5_K super-block, h being qh[l].
func q5Levels(ql, h byte, j int) (lo, hi byte) {
	return ql&15 | (h>>(2*j)&1)<<4, ql>>4 | (h>>(2*j+1)&1)<<4
}

// dequantQ5KGo writes the values of the Q5_K super-blocks of row to dst,
// bit-identical to quant.Dequantize.
func dequantQ5KGo(dst []float32, row []byte) {
	for ; len(row) >= q5KBytes; row, dst = row[q5KBytes:], dst[quant.QKK:] {
		k := kSubScales(row)
		qh := (*[32]byte)(row[16:48])
		y := (*[quant.QKK]float32)(dst[:quant.QKK])
		for j := range 4 {
			ql := (*[32]byte)(row[48+32*j : 80+32*j])
			d1, m1, d2, m2 := k.d[2*j], k.m[2*j], k.d[2*j+1], k.m[2*j+1]
			yl, yh := (*[32]float32)(y[64*j:64*j+32]), (*[32]float32)(y[64*j+32:64*j+64])
			for l, v := range ql {
				a, b := q5Levels(v, qh[l], j)
				yl[l] = float32(d1*levels[a&31]) - m1
				yh[l] = float32(d2*levels[b&31]) - m2
			}
		}
	}
}

// dotQ5KGo returns Σ x[i]·w[i] over the Q5_K super-blocks of row.
func dotQ5KGo(x []float32, row []byte) float32 {
	var sum float32
	for ; len(row) >= q5KBytes; row, x = row[q5KBytes:], x[quant.QKK:] {
		k := kSubScales(row)
		qh := (*[32]byte)(row[16:48])
		xb := (*[quant.QKK]float32)(x[:quant.QKK])
		for j := range 4 {
			ql := (*[32]byte)(row[48+32*j : 80+32*j])
			d1, m1, d2, m2 := k.d[2*j], k.m[2*j], k.d[2*j+1], k.m[2*j+1]
			xl, xh := (*[32]float32)(xb[64*j:64*j+32]), (*[32]float32)(xb[64*j+32:64*j+64])
			var s0, s1, s2, s3 float32
			for l := 0; l < 32; l += 2 {
				a0, b0 := q5Levels(ql[l], qh[l], j)
				a1, b1 := q5Levels(ql[l+1], qh[l+1], j)
				s0 += xl[l] * (float32(d1*levels[a0&31]) - m1)
				s1 += xh[l] * (float32(d2*levels[b0&31]) - m2)
				s2 += xl[l+1] * (float32(d1*levels[a1&31]) - m1)
				s3 += xh[l+1] * (float32(d2*levels[b1&31]) - m2)
			}
			sum += (s0 + s2) + (s1 + s3)
		}
	}
	return sum
}

// axpyQ5KGo computes y[i] += alpha·w[i] over the Q5_K super-blocks of row.
func axpyQ5KGo(alpha float32, row []byte, y []float32) {
	for ; len(row) >= q5KBytes; row, y = row[q5KBytes:], y[quant.QKK:] {
		k := kSubScales(row)
		qh := (*[32]byte)(row[16:48])
		yb := (*[quant.QKK]float32)(y[:quant.QKK])
		for j := range 4 {
			ql := (*[32]byte)(row[48+32*j : 80+32*j])
			d1, m1, d2, m2 := k.d[2*j], k.m[2*j], k.d[2*j+1], k.m[2*j+1]
			yl, yh := (*[32]float32)(yb[64*j:64*j+32]), (*[32]float32)(yb[64*j+32:64*j+64])
			for l, v := range ql {
				a, b := q5Levels(v, qh[l], j)
				yl[l] += alpha * (float32(d1*levels[a&31]) - m1)
				yh[l] += alpha * (float32(d2*levels[b&31]) - m2)
			}
		}
	}
}

// q6Levels returns the four 6-bit levels that byte l of a Q6_K half shares:
// a = ql[l], b = ql[l+32], h = qh[l], for values l, l+32, l+64, l+96.
func q6Levels(a, b, h byte) (q1, q2, q3, q4 byte) {
	return (a & 15) | (h&3)<<4, (b & 15) | (h>>2&3)<<4, a>>4 | (h>>4&3)<<4, b>>4 | (h>>6)<<4
}

// dequantQ6KGo writes the values of the Q6_K super-blocks of row to dst,
// bit-identical to quant.Dequantize.
func dequantQ6KGo(dst []float32, row []byte) {
	var ds [16]float32
	for ; len(row) >= q6KBytes; row, dst = row[q6KBytes:], dst[quant.QKK:] {
		q6Scales(row, &ds)
		for n := range 2 {
			ql := (*[64]byte)(row[64*n : 64*n+64])
			qh := (*[32]byte)(row[128+32*n : 160+32*n])
			y := (*[128]float32)(dst[128*n : 128*n+128])
			for l := range 32 {
				is := 8*n + l/16
				q1, q2, q3, q4 := q6Levels(ql[l], ql[l+32], qh[l])
				y[l] = ds[is&15] * q6Level[q1&63]
				y[l+32] = ds[(is+2)&15] * q6Level[q2&63]
				y[l+64] = ds[(is+4)&15] * q6Level[q3&63]
				y[l+96] = ds[(is+6)&15] * q6Level[q4&63]
			}
		}
	}
}

// dotQ6KGo returns Σ x[i]·w[i] over the Q6_K super-blocks of row: per 16
// values Σ x·(q−32), then times ds.
func dotQ6KGo(x []float32, row []byte) float32 {
	var ds [16]float32
	var sum float32
	for ; len(row) >= q6KBytes; row, x = row[q6KBytes:], x[quant.QKK:] {
		q6Scales(row, &ds)
		for n := range 2 {
			ql := (*[64]byte)(row[64*n : 64*n+64])
			qh := (*[32]byte)(row[128+32*n : 160+32*n])
			xb := (*[128]float32)(x[128*n : 128*n+128])
			for c := 0; c < 32; c += 16 {
				var s1, s2, s3, s4 float32
				for l := c; l < c+16; l++ {
					q1, q2, q3, q4 := q6Levels(ql[l], ql[l+32], qh[l])
					s1 += xb[l] * q6Level[q1&63]
					s2 += xb[l+32] * q6Level[q2&63]
					s3 += xb[l+64] * q6Level[q3&63]
					s4 += xb[l+96] * q6Level[q4&63]
				}
				is := 8*n + c/16
				sum += (ds[is]*s1 + ds[is+2]*s2) + (ds[is+4]*s3 + ds[is+6]*s4)
			}
		}
	}
	return sum
}

// axpyQ6KGo computes y[i] += alpha·w[i] over the Q6_K super-blocks of row.
func axpyQ6KGo(alpha float32, row []byte, y []float32) {
	var ds [16]float32
	for ; len(row) >= q6KBytes; row, y = row[q6KBytes:], y[quant.QKK:] {
		q6Scales(row, &ds)
		for n := range 2 {
			ql := (*[64]byte)(row[64*n : 64*n+64])
			qh := (*[32]byte)(row[128+32*n : 160+32*n])
			yb := (*[128]float32)(y[128*n : 128*n+128])
			for l := range 32 {
				is := 8*n + l/16
				q1, q2, q3, q4 := q6Levels(ql[l], ql[l+32], qh[l])
				yb[l] += alpha * (ds[is&15] * q6Level[q1&63])
				yb[l+32] += alpha * (ds[(is+2)&15] * q6Level[q2&63])
				yb[l+64] += alpha * (ds[(is+4)&15] * q6Level[q3&63])
				yb[l+96] += alpha * (ds[(is+6)&15] * q6Level[q4&63])
			}
		}
	}
}
