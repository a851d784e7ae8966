package quant

import (
	"fmt"
	"math"
)

// K-quants: super-blocks of 256 values, as in llama.cpp's ggml-quants.c
// (dequantize_row_q4_K, _q5_K, _q6_K). The arithmetic below follows the C
// reference operation by operation, with explicit float32 rounding so the
// results are bit-identical (tested against outputs of the C code).

// scaleMinK4 unpacks the 6-bit scale and min j (0..7) of a Q4_K/Q5_K block.
func scaleMinK4(j int, q []byte) (d, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j] >> 6) << 4)
}

func dequantizeK(t Type, src []byte, dst []float32) error {
	nb := len(dst) / QKK
	switch t {
	case Q4_K:
		for i := range nb {
			dequantizeQ4KBlock(src[i*144:(i+1)*144], dst[i*QKK:(i+1)*QKK])
		}
	case Q5_K:
		for i := range nb {
			dequantizeQ5KBlock(src[i*176:(i+1)*176], dst[i*QKK:(i+1)*QKK])
		}
	case Q6_K:
		for i := range nb {
			dequantizeQ6KBlock(src[i*210:(i+1)*210], dst[i*QKK:(i+1)*QKK])
		}
	default:
		return fmt.Errorf("dequantization of %s is not implemented", t)
	}
	return nil
}

// Q4_K: f16 d, f16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles.
func dequantizeQ4KBlock(b []byte, y []float32) {
	d, min := F16ToF32(le16(b)), F16ToF32(le16(b[2:]))
	scales, q := b[4:16], b[16:144]
	is := 0
	for j := 0; j < QKK; j += 64 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), min*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), min*float32(m)
		for l := range 32 {
			y[j+l] = float32(d1*float32(q[l]&0xF)) - m1
		}
		for l := range 32 {
			y[j+32+l] = float32(d2*float32(q[l]>>4)) - m2
		}
		q = q[32:]
		is += 2
	}
}

// Q5_K: f16 d, f16 dmin, 12 bytes of scales/mins, 32 bytes of high bits,
// 128 bytes of low nibbles.
func dequantizeQ5KBlock(b []byte, y []float32) {
	d, min := F16ToF32(le16(b)), F16ToF32(le16(b[2:]))
	scales, qh, ql := b[4:16], b[16:48], b[48:176]
	is := 0
	u1, u2 := byte(1), byte(2)
	for j := 0; j < QKK; j += 64 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), min*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), min*float32(m)
		for l := range 32 {
			v := ql[l] & 0xF
			if qh[l]&u1 != 0 {
				v += 16
			}
			y[j+l] = float32(d1*float32(v)) - m1
		}
		for l := range 32 {
			v := ql[l] >> 4
			if qh[l]&u2 != 0 {
				v += 16
			}
			y[j+32+l] = float32(d2*float32(v)) - m2
		}
		ql = ql[32:]
		is += 2
		u1 <<= 2
		u2 <<= 2
	}
}

// Q6_K: 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 int8
// scales, f16 d.
func dequantizeQ6KBlock(b []byte, y []float32) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := F16ToF32(le16(b[208:]))
	for n := 0; n < QKK; n += 128 {
		for l := range 32 {
			is := l / 16
			q1 := int8((ql[l]&0xF)|((qh[l]>>0)&3)<<4) - 32
			q2 := int8((ql[l+32]&0xF)|((qh[l]>>2)&3)<<4) - 32
			q3 := int8((ql[l]>>4)|((qh[l]>>4)&3)<<4) - 32
			q4 := int8((ql[l+32]>>4)|((qh[l]>>6)&3)<<4) - 32
			y[n+l] = float32(d*float32(int8(sc[is]))) * float32(q1)
			y[n+l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
			y[n+l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
			y[n+l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
		}
		ql, qh, sc = ql[64:], qh[32:], sc[8:]
	}
}

// The quantizers below are ggml's quantize_row_q4_K_ref, _q5_K_ref and
// _q6_K_ref (with their helpers make_qkx2_quants and make_qx_quants),
// transcribed operation by operation. Every product that feeds a sum is
// wrapped in an explicit float32 conversion: the Go spec lets a compiler
// fuse x*y+z into one FMA (it does on arm64, and on amd64 at GOAMD64=v3)
// unless a conversion forces the rounding, and the C reference rounds each
// operation. Tests check the output bytes against the C code's.

// groupMaxEps is ggml's GROUP_MAX_EPS: groups whose largest magnitude is
// below it are stored as zeros.
const groupMaxEps = float32(1e-15)

// nearestInt is ggml's nearest_int: round to nearest, ties to even, through
// the float32 magic-number trick (exact for |v| ≤ 4194303; other inputs
// give some integer, which callers clamp).
func nearestInt(v float32) int {
	val := v + 12582912
	i := int32(math.Float32bits(val))
	return int((i & 0x007fffff) - 0x00400000)
}

func clampInt(v, lo, hi int) int { return max(lo, min(hi, v)) }

// makeQKX2 is make_qkx2_quants with use_mad false: it picks a scale and a
// non-positive minimum for x (levels 0..nmax) minimising the weighted
// squared error, writes the levels to l and returns the scale and −min.
func makeQKX2(nmax int, x, w []float32, l, laux []uint8, rmin, rdelta float32, nstep int) (scale, negMin float32) {
	n := len(x)
	lo, hi := x[0], x[0]
	sumW := w[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		sumW += w[i]
		sumX += float32(w[i] * x[i])
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		for i := range n {
			l[i] = 0
		}
		return 0, -lo
	}
	iscale := float32(nmax) / (hi - lo)
	scale = 1 / iscale
	var bestErr float32
	for i := range n {
		q := clampInt(nearestInt(float32(iscale*(x[i]-lo))), 0, nmax)
		l[i] = uint8(q)
		diff := float32(float32(scale*float32(q))+lo) - x[i]
		bestErr += float32(w[i] * float32(diff*diff))
	}
	for is := 0; is <= nstep; is++ {
		iscale = (float32(rmin+float32(rdelta*float32(is))) + float32(nmax)) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i := range n {
			q := clampInt(nearestInt(float32(iscale*(x[i]-lo))), 0, nmax)
			laux[i] = uint8(q)
			wl := float32(w[i] * float32(q))
			sumL += wl
			sumL2 += float32(wl * float32(q))
			sumXL += float32(wl * x[i])
		}
		d := float32(sumW*sumL2) - float32(sumL*sumL)
		if d <= 0 {
			continue
		}
		thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / d
		thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / d
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		var curErr float32
		for i := range n {
			diff := float32(float32(thisScale*float32(laux[i]))+thisMin) - x[i]
			curErr += float32(w[i] * float32(diff*diff))
		}
		if curErr < bestErr {
			copy(l[:n], laux[:n])
			bestErr = curErr
			scale = thisScale
			lo = thisMin
		}
	}
	return scale, -lo
}

// makeQX is make_qx_quants with rmse_type 1 and no importance weights:
// signed levels −nmax..nmax−1 stored as 0..2·nmax−1 in l; returns the scale.
func makeQX(nmax int, x []float32, l []uint8) float32 {
	var mx, amax float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, mx = a, v
		}
	}
	if amax < groupMaxEps {
		for i := range x {
			l[i] = 0
		}
		return 0
	}
	sums := func(iscale float32, store bool) (sumlx, suml2 float32) {
		for i, v := range x {
			q := clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1)
			if store {
				l[i] = uint8(q + nmax)
			}
			w := float32(v * v)
			sumlx += float32(float32(w*v) * float32(q))
			suml2 += float32(float32(w*float32(q)) * float32(q))
		}
		return sumlx, suml2
	}
	iscale := float32(-nmax) / mx
	sumlx, suml2 := sums(iscale, true)
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := float32(scale * sumlx)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + float32(0.1*float32(is))) / mx
		sumlx, suml2 = sums(iscale, false)
		if suml2 > 0 && float32(sumlx*sumlx) > float32(best*suml2) {
			sums(iscale, true)
			scale = sumlx / suml2
			best = float32(scale * sumlx)
		}
	}
	return scale
}

// quantizeK appends the K-quant encoding of src (a whole number of 256-value
// super-blocks) to dst.
func quantizeK(t Type, src []float32, dst []byte) ([]byte, error) {
	if len(src)%QKK != 0 {
		return dst, fmt.Errorf("%s: %d values is not a multiple of the super-block size %d", t, len(src), QKK)
	}
	for b := 0; b < len(src); b += QKK {
		x := src[b : b+QKK]
		switch t {
		case Q4_K:
			dst = quantizeQ45KBlock(x, dst, false)
		case Q5_K:
			dst = quantizeQ45KBlock(x, dst, true)
		case Q6_K:
			dst = quantizeQ6KBlock(x, dst)
		default:
			return dst, fmt.Errorf("quantization to %s is not supported (use q8_0, q4_0, q4_1, q4_k, q5_k, q6_k, f16, bf16 or f32)", t)
		}
	}
	return dst, nil
}

// quantizeQ45KBlock appends one Q4_K (five false) or Q5_K (five true)
// super-block of x[:256] to dst.
func quantizeQ45KBlock(x []float32, dst []byte, five bool) []byte {
	nmax, rmin, nstep := 15, float32(-1), 20
	if five {
		nmax, rmin, nstep = 31, -0.5, 15
	}
	var (
		l              [QKK]uint8
		laux           [32]uint8
		weights        [32]float32
		scales, mins   [QKK / 32]float32
		maxScale, maxM float32
	)
	for j := range QKK / 32 {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for i, v := range xs {
			weights[i] = avX + abs32(v)
		}
		scales[j], mins[j] = makeQKX2(nmax, xs, weights[:], l[32*j:32*j+32], laux[:], rmin, 0.1, nstep)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxM {
			maxM = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxM > 0 {
		invMin = 63 / maxM
	}
	var sc [12]byte
	for j := range QKK / 32 {
		ls := min(63, uint8(nearestInt(float32(invScale*scales[j]))))
		lm := min(63, uint8(nearestInt(float32(invMin*mins[j]))))
		if j < 4 {
			sc[j], sc[j+4] = ls, lm
		} else {
			sc[j+4] = (ls & 0xF) | (lm&0xF)<<4
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	dh, mh := F32ToF16(maxScale/63), F32ToF16(maxM/63)
	for j := range QKK / 32 {
		s, m := scaleMinK4(j, sc[:])
		d := F16ToF32(dh) * float32(s)
		if d == 0 {
			continue
		}
		dm := F16ToF32(mh) * float32(m)
		for i := range 32 {
			l[32*j+i] = uint8(clampInt(nearestInt((x[32*j+i]+dm)/d), 0, nmax))
		}
	}
	dst = put16(dst, dh)
	dst = put16(dst, mh)
	dst = append(dst, sc[:]...)
	if !five {
		for j := 0; j < QKK; j += 64 {
			for i := range 32 {
				dst = append(dst, l[j+i]|l[j+i+32]<<4)
			}
		}
		return dst
	}
	var qh [QKK / 8]byte
	var ql [QKK / 2]byte
	m1, m2 := byte(1), byte(2)
	for n := 0; n < QKK; n += 64 {
		for j := range 32 {
			l1, l2 := l[n+j], l[n+j+32]
			if l1 > 15 {
				l1 -= 16
				qh[j] |= m1
			}
			if l2 > 15 {
				l2 -= 16
				qh[j] |= m2
			}
			ql[n/2+j] = l1 | l2<<4
		}
		m1 <<= 2
		m2 <<= 2
	}
	dst = append(dst, qh[:]...)
	return append(dst, ql[:]...)
}

// quantizeQ6KBlock appends one Q6_K super-block of x[:256] to dst.
func quantizeQ6KBlock(x []float32, dst []byte) []byte {
	var (
		l                 [QKK]uint8
		scales            [QKK / 16]float32
		maxScale, maxAbsS float32
	)
	for ib := range QKK / 16 {
		s := makeQX(32, x[16*ib:16*ib+16], l[16*ib:16*ib+16])
		scales[ib] = s
		if a := abs32(s); a > maxAbsS {
			maxAbsS, maxScale = a, s
		}
	}
	if maxAbsS < groupMaxEps {
		return append(dst, make([]byte, 210)...)
	}
	iscale := -128 / maxScale
	dh := F32ToF16(1 / iscale)
	var sc [QKK / 16]int8
	for ib := range sc {
		sc[ib] = int8(min(127, nearestInt(float32(iscale*scales[ib]))))
	}
	for j := range QKK / 16 {
		d := F16ToF32(dh) * float32(sc[j])
		if d == 0 {
			continue
		}
		for i := range 16 {
			l[16*j+i] = uint8(clampInt(nearestInt(x[16*j+i]/d), -32, 31) + 32)
		}
	}
	var ql [QKK / 2]byte
	var qh [QKK / 4]byte
	for j := 0; j < QKK; j += 128 {
		o, h := j/2, j/4
		for i := range 32 {
			q1, q2, q3, q4 := l[j+i]&0xF, l[j+i+32]&0xF, l[j+i+64]&0xF, l[j+i+96]&0xF
			ql[o+i] = q1 | q3<<4
			ql[o+i+32] = q2 | q4<<4
			qh[h+i] = l[j+i]>>4 | (l[j+i+32]>>4)<<2 | (l[j+i+64]>>4)<<4 | (l[j+i+96]>>4)<<6
		}
	}
	dst = append(dst, ql[:]...)
	dst = append(dst, qh[:]...)
	for _, s := range sc {
		dst = append(dst, byte(s))
	}
	return put16(dst, dh)
}
