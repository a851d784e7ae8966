package quant

import "fmt"

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
