package main

// K-quant row kernels: Q4_K, Q5_K and Q6_K super-blocks of 256 values
// (layouts in engine/quant/kquant.go), each as a fused dot (float32 x ·
// stored row), a dequantization to float32 and a fused axpy (y += α·row).
//
// The three kinds share one body per type and ISA: the body produces the
// values of a super-block one vector at a time and hands each to a sink
// (FMA into an accumulator, store, or load-FMA-store into y). Dequantized
// and axpy values are computed with the roundings of the reference
// decoders (bit-identical dequantization); the dot may fuse a multiply and
// an add where that saves an instruction (its result differs from the
// generic one only by float32 rounding).

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Super-block sizes and offsets.
const (
	qkk      = 256
	q4KBytes = 144 // f16 d, f16 dmin, 12 scale bytes, 128 nibble bytes
	q5KBytes = 176 // f16 d, f16 dmin, 12 scale bytes, 32 high-bit bytes, 128 nibble bytes
	q6KBytes = 210 // 128 nibble bytes, 64 high-pair bytes, 16 int8 scales, f16 d
)

// kind is what a K-quant kernel does with the values it decodes.
type kind int

const (
	kindDot kind = iota
	kindDequant
	kindAxpy
)

// sink receives the decoded values of a super-block, one vector at a time.
type sink struct {
	s     isa
	kind  kind
	p     reg.Register     // x (dot), dst (dequantize) or y (axpy), at the super-block
	accs  []reg.VecVirtual // dot accumulators, used in turn
	alpha reg.VecVirtual   // axpy
	n     int
}

// put takes w, the values at float offset off of the super-block.
func (k *sink) put(w reg.VecVirtual, off int) {
	m := Mem{Base: k.p, Disp: off * f32Bytes}
	switch k.kind {
	case kindDot:
		VFMADD231PS(m, w, k.accs[k.n%len(k.accs)])
		k.n++
	case kindDequant:
		VMOVUPS(w, m)
	case kindAxpy:
		v := k.s.vec()
		VMOVUPS(m, v)
		VFMADD231PS(w, k.alpha, v)
		VMOVUPS(v, m)
	}
}

// kconsts are the constant vectors a body uses, set up once before the
// loop (nil where unused).
type kconsts struct {
	iota0, iota16 reg.VecVirtual // float32 0…lanes−1 and 16…
	m0f, m30, b4  reg.VecVirtual // 0x0f, 0x30, 0x10 in each int32 lane, or each byte where levels are built on bytes (Q6_K, AVX2 Q5_K)
	c32           reg.VecVirtual // 32 in each byte
}

// kTypes describes each K-quant type for the kernel template.
var kTypes = map[string]struct {
	bytes int
	setup func(s isa, kd kind) *kconsts
	body  func(s isa, k *sink, c *kconsts, w reg.Register, local Mem)
	local int // bytes of stack scratch: scales, then staged level bytes (Q6_K, AVX2 Q5_K)
}{
	"Q4_K": {q4KBytes, q4KSetup, q4KBody, 64},
	"Q5_K": {q5KBytes, q5KSetup, q5KBody, 320},
	"Q6_K": {q6KBytes, q6KSetup, q6KBody, 320},
}

func q4KSetup(s isa, kd kind) *kconsts {
	if s.lanes == 16 {
		return &kconsts{iota0: iotaVec(s, 0)}
	}
	return &kconsts{m0f: consts32(s, 0x0f)}
}

func q5KSetup(s isa, kd kind) *kconsts {
	if s.lanes == 16 {
		return &kconsts{iota0: iotaVec(s, 0), iota16: iotaVec(s, 16), m0f: consts32(s, 0x0f)}
	}
	return &kconsts{m0f: consts32(s, 0x0f0f0f0f), b4: consts32(s, 0x10101010)} // byte masks
}

func q6KSetup(s isa, kd kind) *kconsts {
	// byte masks and the bias 32 in every byte
	return &kconsts{m0f: consts32(s, 0x0f0f0f0f), m30: consts32(s, 0x30303030), c32: consts32(s, 0x20202020)}
}

// kquantKernel emits one K-quant kernel: a loop over nb super-blocks, each
// prefetching the weights rowPrefetch bytes ahead (one PREFETCHT0 per
// cache line of the super-block) and then running the type's body.
func kquantKernel(s isa, typ string, kd kind) {
	t := kTypes[typ]
	var name string
	switch kd {
	case kindDot:
		name = "dot" + typ + s.suffix
		TEXT(name, NOSPLIT, "func(x *float32, w *byte, nb int) float32")
		Doc(name + " returns Σ x[i]·w[i] for nb " + typ + " super-blocks at w (256·nb values).")
	case kindDequant:
		name = "dequant" + typ + s.suffix
		TEXT(name, NOSPLIT, "func(dst *float32, w *byte, nb int)")
		Doc(name + " writes the 256·nb values of nb " + typ + " super-blocks at w as float32 to dst.")
	case kindAxpy:
		name = "axpy" + typ + s.suffix
		TEXT(name, NOSPLIT, "func(alpha float32, w *byte, y *float32, nb int)")
		Doc(name + " computes y[i] += alpha·w[i] for the 256·nb values of nb " + typ + " super-blocks at w.")
	}
	k := &sink{s: s, kind: kd}
	switch kd {
	case kindDot:
		k.p = Load(Param("x"), GP64())
	case kindDequant:
		k.p = Load(Param("dst"), GP64())
	case kindAxpy:
		k.alpha = broadcastParam(s, "alpha")
		k.p = Load(Param("y"), GP64())
	}
	w := Load(Param("w"), GP64())
	nb := Load(Param("nb"), GP64())
	local := AllocLocal(t.local)
	if kd == kindDot {
		k.accs = []reg.VecVirtual{s.vec(), s.vec(), s.vec(), s.vec()}
		zero(k.accs...)
	}
	c := t.setup(s, kd)
	Label(name + "loop")
	CMPQ(nb, U32(0))
	JE(LabelRef(name + "done"))
	for off := 0; off < t.bytes; off += 64 {
		PREFETCHT0(Mem{Base: w, Disp: rowPrefetch + off})
	}
	t.body(s, k, c, w, local)
	ADDQ(U32(t.bytes), w)
	ADDQ(U32(qkk*f32Bytes), k.p)
	DECQ(nb)
	JMP(LabelRef(name + "loop"))
	Label(name + "done")
	if kd == kindDot {
		VADDPS(k.accs[1], k.accs[0], k.accs[0])
		VADDPS(k.accs[3], k.accs[2], k.accs[2])
		VADDPS(k.accs[2], k.accs[0], k.accs[0])
		hsum(s, k.accs[0])
		return
	}
	VZEROUPPER()
	RET()
}

// kScales unpacks the eight 6-bit scales and mins of the Q4_K/Q5_K
// super-block at w (12 bytes at w+4) and stores d·scale[j] as float32 at
// local+4j and dmin·min[j] at local+32+4j, j < 8: the products quant's
// decoder computes, rounded the same way. With the scale bytes read as
// three little-endian words W0, W1, W2: scales 0..3 are W0 & 0x3f3f3f3f,
// scales 4..7 (W2 & 0x0f0f0f0f) | ((W0 >> 6) & 0x03030303) << 4, mins
// 0..3 W1 & 0x3f3f3f3f and mins 4..7 ((W2 >> 4) & 0x0f0f0f0f) |
// ((W1 >> 6) & 0x03030303) << 4.
func kScales(w reg.Register, local Mem) {
	w0, w1, w2 := GP32(), GP32(), GP32()
	MOVL(Mem{Base: w, Disp: 4}, w0)
	MOVL(Mem{Base: w, Disp: 8}, w1)
	MOVL(Mem{Base: w, Disp: 12}, w2)
	scLo, mLo := GP32(), GP32()
	MOVL(w0, scLo)
	ANDL(U32(0x3f3f3f3f), scLo)
	MOVL(w1, mLo)
	ANDL(U32(0x3f3f3f3f), mLo)
	// scales 4..7 into w0, mins 4..7 into w1
	SHRL(U8(6), w0)
	ANDL(U32(0x03030303), w0)
	SHLL(U8(4), w0)
	SHRL(U8(6), w1)
	ANDL(U32(0x03030303), w1)
	SHLL(U8(4), w1)
	hi := GP32()
	MOVL(w2, hi)
	ANDL(U32(0x0f0f0f0f), hi)
	ORL(hi, w0)
	SHRL(U8(4), w2)
	ANDL(U32(0x0f0f0f0f), w2)
	ORL(w2, w1)
	for i, p := range [][2]reg.Register{{scLo, w0}, {mLo, w1}} {
		x := XMM()
		VMOVD(p[0], x)
		VPINSRD(U8(1), p[1], x, x)
		v := YMM()
		VPMOVZXBD(x, v)
		VCVTDQ2PS(v, v)
		h := XMM()
		VPBROADCASTW(Mem{Base: w, Disp: 2 * i}, h)
		d := YMM()
		VCVTPH2PS(h, d)
		VMULPS(d, v, v)
		VMOVUPS(v, local.Offset(32*i))
	}
}

// iotaVec returns a new vector holding float32 add, add+1, … in its lanes:
// the bytes built in GP registers (no data section needed), widened and
// converted.
func iotaVec(s isa, add int) reg.VecVirtual {
	var lo, hi uint64
	for i := range 8 {
		lo |= uint64(add+i) << (8 * i)
		hi |= uint64(add+8+i) << (8 * i)
	}
	g := GP64()
	x := XMM()
	MOVQ(U64(lo), g)
	VMOVQ(g, x)
	MOVQ(U64(hi), g)
	VPINSRQ(U8(1), g, x, x)
	v := s.vec()
	VPMOVZXBD(x, v)
	VCVTDQ2PS(v, v)
	return v
}

// shiftD sets dst = src shifted left by n bits (right by −n) in each
// 32-bit lane; n = 0 copies.
func shiftD(s isa, n int, src, dst reg.VecVirtual) {
	switch {
	case n > 0:
		VPSLLD(U8(n), src, dst)
	case n < 0:
		VPSRLD(U8(-n), src, dst)
	case s.lanes == 16:
		VMOVDQA32(src, dst)
	default:
		VMOVDQA(src, dst)
	}
}

// ternary returns the VPTERNLOGD immediate of the bitwise function f of
// (dst, src2, src3): Go's operand order is VPTERNLOGD imm, src3, src2, dst.
func ternary(f func(a, b, c uint8) uint8) U8 { return U8(f(0xf0, 0xcc, 0xaa)) }

// kTable computes a table vector d·iota − m (dot, one FMA) or float32(d·iota) − m
// (the decoder's rounding) from the broadcast scale d and min m at local
// offsets; it overwrites and returns m.
func kTable(s isa, kd kind, iota reg.VecVirtual, d, m Mem) reg.VecVirtual {
	dv, mv := s.vec(), s.vec()
	VBROADCASTSS(d, dv)
	VBROADCASTSS(m, mv)
	if kd == kindDot {
		VFMSUB231PS(dv, iota, mv) // mv = iota·d − m
		return mv
	}
	VMULPS(dv, iota, dv)
	VSUBPS(mv, dv, mv)
	return mv
}

// q4KBody decodes one Q4_K super-block. Values 64j+l (l < 32) are the low
// nibbles of bytes 16+32j+l, values 64j+32+l their high nibbles, with
// scale/min 2j and 2j+1.
//
// AVX-512: each sub-block's 16 possible values form one vector (a table:
// d1·q − m1 for q = 0..15), and VPERMPS looks the nibbles up in it, using
// only the low 4 bits of each index lane: per 16 values one VPMOVZXBD (for
// 32 values), one shift and one VPERMPS. AVX2 (8-entry VPERMPS only):
// mask/shift, convert, then one FMA (dot) or multiply and subtract.
func q4KBody(s isa, k *sink, c *kconsts, w reg.Register, local Mem) {
	kScales(w, local)
	if s.lanes == 16 {
		iota := c.iota0
		for j := range 4 {
			tlo := kTable(s, k.kind, iota, local.Offset(8*j), local.Offset(32+8*j))
			thi := kTable(s, k.kind, iota, local.Offset(8*j+4), local.Offset(32+8*j+4))
			for h := range 2 {
				b := s.vec()
				VPMOVZXBD(Mem{Base: w, Disp: 16 + 32*j + 16*h}, b)
				lo := s.vec()
				VPERMPS(tlo, b, lo)
				k.put(lo, 64*j+16*h)
				VPSRLD(U8(4), b, b)
				VPERMPS(thi, b, b)
				k.put(b, 64*j+32+16*h)
			}
		}
		return
	}
	mask := c.m0f
	for j := range 4 {
		d := [2]reg.VecVirtual{s.vec(), s.vec()}
		m := [2]reg.VecVirtual{s.vec(), s.vec()}
		for i := range 2 {
			VBROADCASTSS(local.Offset(8*j+4*i), d[i])
			VBROADCASTSS(local.Offset(32+8*j+4*i), m[i])
		}
		for q := range 4 {
			b := s.vec()
			VPMOVZXBD(Mem{Base: w, Disp: 16 + 32*j + 8*q}, b)
			lo := s.vec()
			and(s, mask, b, lo)
			VPSRLD(U8(4), b, b)
			for i, v := range []reg.VecVirtual{lo, b} {
				VCVTDQ2PS(v, v)
				kScale(k.kind, v, d[i], m[i])
				k.put(v, 64*j+32*i+8*q)
			}
		}
	}
}

// kScale turns levels v (float32) into values: v·d − m in one FMA for the
// dot, float32(v·d) − m otherwise.
func kScale(kd kind, v, d, m reg.VecVirtual) {
	if kd == kindDot {
		VFMSUB213PS(m, d, v)
		return
	}
	VMULPS(d, v, v)
	VSUBPS(m, v, v)
}

// q5KBody decodes one Q5_K super-block: as Q4_K, with bit 2j (low nibbles)
// or 2j+1 (high nibbles) of the high-bit byte qh[l] (at 16+l) as bit 4 of
// the level. AVX-512: a 32-entry table per sub-block in two vectors and
// VPERMI2PS, the index assembled with one VPTERNLOGD (bits 0–3 from the
// nibble byte, bit 4 from the shifted qh; the bits above are ignored).
// AVX2: the levels assembled with shifts and masks, converted and scaled.
func q5KBody(s isa, k *sink, c *kconsts, w reg.Register, local Mem) {
	kScales(w, local)
	const qh, ql = 16, 48
	if s.lanes == 16 {
		iota0, iota16, mask := c.iota0, c.iota16, c.m0f
		hv := [2]reg.VecVirtual{s.vec(), s.vec()}
		for h := range 2 {
			VPMOVZXBD(Mem{Base: w, Disp: qh + 16*h}, hv[h])
		}
		// dst = mask ? src2 : dst
		sel := ternary(func(a, b, c uint8) uint8 { return b&c | a&^c })
		for j := range 4 {
			var tab [2][2]reg.VecVirtual // [sub-block][levels 0..15, 16..31]
			for i := range 2 {
				d, m := local.Offset(8*j+4*i), local.Offset(32+8*j+4*i)
				tab[i][0] = kTable(s, k.kind, iota0, d, m)
				tab[i][1] = kTable(s, k.kind, iota16, d, m)
			}
			for h := range 2 {
				b := s.vec()
				VPMOVZXBD(Mem{Base: w, Disp: ql + 32*j + 16*h}, b)
				for i := range 2 {
					// bit 2j+i of qh to bit 4
					idx := s.vec()
					shiftD(s, 4-2*j-i, hv[h], idx)
					if i == 1 {
						VPSRLD(U8(4), b, b)
					}
					VPTERNLOGD(sel, mask, b, idx)
					VPERMI2PS(tab[i][1], tab[i][0], idx)
					k.put(idx, 64*j+32*i+16*h)
				}
			}
		}
		return
	}
	// AVX2: the levels of the whole super-block assembled on bytes (32 at
	// a time, 16-bit shifts: the 0x10 mask clears what crosses bytes) into
	// the scratch at +64, then widened, converted and scaled 8 at a time.
	mask, bit4 := c.m0f, c.b4
	h := s.vec()
	VMOVDQU(Mem{Base: w, Disp: qh}, h)
	for j := range 4 {
		q := s.vec()
		VMOVDQU(Mem{Base: w, Disp: ql + 32*j}, q)
		for i := range 2 {
			v, t := s.vec(), s.vec()
			if i == 0 {
				VPAND(mask, q, v)
			} else {
				VPSRLW(U8(4), q, v)
				VPAND(mask, v, v)
			}
			switch sh := 4 - 2*j - i; {
			case sh > 0:
				VPSLLW(U8(sh), h, t)
				VPAND(bit4, t, t)
			case sh < 0:
				VPSRLW(U8(-sh), h, t)
				VPAND(bit4, t, t)
			default:
				VPAND(bit4, h, t)
			}
			VPOR(t, v, v)
			VMOVDQU(v, local.Offset(64+64*j+32*i))
		}
	}
	for j := range 4 {
		for i := range 2 {
			d, m := s.vec(), s.vec()
			VBROADCASTSS(local.Offset(8*j+4*i), d)
			VBROADCASTSS(local.Offset(32+8*j+4*i), m)
			for o := 0; o < 32; o += 8 {
				v := s.vec()
				VPMOVZXBD(local.Offset(64+64*j+32*i+o), v)
				VCVTDQ2PS(v, v)
				kScale(k.kind, v, d, m)
				k.put(v, 64*j+32*i+o)
			}
		}
	}
}

// q6KBody decodes one Q6_K super-block. For half n (values 128n…) and
// l < 32, with A = ql[64n+l], B = ql[64n+32+l] and H = qh[32n+l] (qh at
// 128), the levels of values 128n+l, +32, +64, +96 are
// A&15 | (H&3)<<4, B&15 | (H>>2&3)<<4, A>>4 | (H>>4&3)<<4 and
// B>>4 | (H>>6)<<4; the value is (level − 32)·ds, ds = d·sc with sc the
// int8 scale of its 16 values (at 192), rounded as quant's decoder does.
//
// The levels are assembled on bytes, 32 (AVX2) or 64 (AVX-512) at a time
// with 16-bit shifts and masks (a shift carries bits into the next byte
// only where the mask then clears them), biased to int8 level − 32 and
// stored in the stack scratch, one half of the super-block (128 values)
// at a time; each vector of values is then one sign-extending load,
// a conversion and a multiply by the broadcast ds. Per 64 values that is
// about 21 vector instructions on AVX-512 where assembling each level on
// 32-bit lanes took 30. Scratch: ds[16] at +0, the 128 level bytes at +64.
func q6KBody(s isa, k *sink, cs *kconsts, w reg.Register, local Mem) {
	const qh, scales, dOff, lv = 128, 192, 208, 64
	d := scale(s, w, dOff)
	for o := 0; o < 16; o += s.lanes {
		v := s.vec()
		VPMOVSXBD(Mem{Base: w, Disp: scales + o}, v)
		VCVTDQ2PS(v, v)
		VMULPS(d, v, v)
		VMOVUPS(v, local.Offset(4*o))
	}
	m0f, m30, c32 := cs.m0f, cs.m30, cs.c32
	for n := range 2 {
		if s.lanes == 16 {
			// q: ql[64n:64n+64] = A‖B, h2 = H‖H>>2: the first 64 values
			// (levels q1‖q2) are q&15 | (h2<<4)&0x30, the next 64 (q3‖q4)
			// (q>>4)&15 | h2&0x30.
			q := s.vec()
			VMOVDQU64(Mem{Base: w, Disp: 64 * n}, q)
			h, h2 := YMM(), YMM()
			VMOVDQU(Mem{Base: w, Disp: qh + 32*n}, h)
			VPSRLW(U8(2), h, h2)
			hh := s.vec()
			VINSERTI64X4(U8(1), h2, h.AsZ(), hh)
			// dst | (src2 & src3)
			orAnd := ternary(func(a, b, c uint8) uint8 { return a | b&c })
			t := s.vec()
			VPSLLW(U8(4), hh, t)
			VPANDD(m30, t, t)
			VPTERNLOGD(orAnd, m0f, q, t)
			VPSUBB(c32, t, t)
			VMOVDQU64(t, local.Offset(lv+128*n))
			VPSRLW(U8(4), q, q)
			VPANDD(m30, hh, hh)
			VPTERNLOGD(orAnd, m0f, q, hh)
			VPSUBB(c32, hh, hh)
			VMOVDQU64(hh, local.Offset(lv+128*n+64))
		} else {
			a, b, h := s.vec(), s.vec(), s.vec()
			VMOVDQU(Mem{Base: w, Disp: 64 * n}, a)
			VMOVDQU(Mem{Base: w, Disp: 64*n + 32}, b)
			VMOVDQU(Mem{Base: w, Disp: qh + 32*n}, h)
			for i := range 4 {
				q, t := s.vec(), s.vec()
				src := []reg.VecVirtual{a, b}[i%2]
				if i < 2 {
					VPAND(m0f, src, q)
				} else {
					VPSRLW(U8(4), src, q)
					VPAND(m0f, q, q)
				}
				switch sh := 4 - 2*i; {
				case sh > 0:
					VPSLLW(U8(sh), h, t)
					VPAND(m30, t, t)
				case sh < 0:
					VPSRLW(U8(-sh), h, t)
					VPAND(m30, t, t)
				default:
					VPAND(m30, h, t)
				}
				VPOR(t, q, q)
				VPSUBB(c32, q, q)
				VMOVDQU(q, local.Offset(lv+128*n+32*i))
			}
		}
	}
	for n := range 2 {
		var ds reg.VecVirtual
		for o := 0; o < 128; o += s.lanes {
			if o%16 == 0 {
				ds = s.vec()
				VBROADCASTSS(local.Offset(4*(8*n+o/16)), ds)
			}
			v := s.vec()
			VPMOVSXBD(local.Offset(lv+128*n+o), v)
			VCVTDQ2PS(v, v)
			VMULPS(ds, v, v)
			k.put(v, 128*n+o)
		}
	}
}
