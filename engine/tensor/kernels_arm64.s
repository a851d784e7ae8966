// arm64 NEON (Advanced SIMD) kernels of engine/tensor, hand-written.
//
// Every routine takes raw pointers and counts; the Go wrappers (simd.go,
// simd_arm64.go) bounds-check the slices first, so the assembly never
// touches memory outside them. Vectors are 128 bits: 4 float32 lanes.
// Go's ABI0 on arm64 saves no vector register, so V0–V31 are all free;
// R18 (platform), R26–R30 are not used.
//
// Go's arm64 assembler has the integer and load/store vector instructions
// used here (VLD1, VST1, VFMLA, VFMLS, VDUP, VAND, VORR, VSUB, VADD, VSHL,
// VUSHR, VTRN1/2, VCMTST, VBIT, VMOVI) but none of the floating-point
// arithmetic, conversion or by-element forms; those are emitted with WORD by
// the macros below. Their arguments are register numbers (0–31), d the
// destination, n and m the sources as in the Arm ARM (DDI 0487, C7.2);
// every encoding was checked with `go tool objdump` (see SIMD.md).

#include "textflag.h"

// FADD Vd.4S, Vn.4S, Vm.4S: 0 1 0 01110 0 0 1 Rm 110101 Rn Rd
#define FADD4S(d, n, m) WORD $(0x4E20D400 | (m)<<16 | (n)<<5 | (d))
// FSUB Vd.4S, Vn.4S, Vm.4S: 0 1 0 01110 1 0 1 Rm 110101 Rn Rd
#define FSUB4S(d, n, m) WORD $(0x4EA0D400 | (m)<<16 | (n)<<5 | (d))
// FMUL Vd.4S, Vn.4S, Vm.4S: 0 1 1 01110 0 0 1 Rm 110111 Rn Rd
#define FMUL4S(d, n, m) WORD $(0x6E20DC00 | (m)<<16 | (n)<<5 | (d))
// FDIV Vd.4S, Vn.4S, Vm.4S: 0 1 1 01110 0 0 1 Rm 111111 Rn Rd
#define FDIV4S(d, n, m) WORD $(0x6E20FC00 | (m)<<16 | (n)<<5 | (d))
// FMAX Vd.4S, Vn.4S, Vm.4S: 0 1 0 01110 0 0 1 Rm 111101 Rn Rd
#define FMAX4S(d, n, m) WORD $(0x4E20F400 | (m)<<16 | (n)<<5 | (d))
// FADDP Vd.4S, Vn.4S, Vm.4S (pairwise: n0+n1, n2+n3, m0+m1, m2+m3):
// 0 1 1 01110 0 0 1 Rm 110101 Rn Rd
#define FADDP4S(d, n, m) WORD $(0x6E20D400 | (m)<<16 | (n)<<5 | (d))
// FADDP Sd, Vn.2S (scalar: lane 0 + lane 1): 01 1 11110 0 0 11000 01101 10 Rn Rd
#define FADDP2S(d, n) WORD $(0x7E30D800 | (n)<<5 | (d))
// FMAXV Sd, Vn.4S (maximum of the 4 lanes): 0 1 1 01110 0 0 11000 01111 10 Rn Rd
#define FMAXV4S(d, n) WORD $(0x6E30F800 | (n)<<5 | (d))
// FMLA Vd.4S, Vn.4S, Vm.S[i] (by element): 0 1 0 01111 1 0 L M Rm 0001 H 0 Rn Rd,
// i = H:L, register M:Rm (all 32 registers for single precision)
#define FMLAE(d, n, m, i) WORD $(0x4F801000 | ((i)&1)<<21 | (m)<<16 | ((i)>>1)<<11 | (n)<<5 | (d))
// FCVTL Vd.4S, Vn.4H (half → single, low 4): 0 0 0 01110 0 0 10000 10111 10 Rn Rd
#define FCVTL4S(d, n) WORD $(0x0E217800 | (n)<<5 | (d))
// FCVTL2 Vd.4S, Vn.8H (half → single, high 4): 0 1 0 01110 0 0 10000 10111 10 Rn Rd
#define FCVTL24S(d, n) WORD $(0x4E217800 | (n)<<5 | (d))
// SXTL Vd.8H, Vn.8B (= SSHLL #0, low 8 bytes): 0 0 0 011110 0001 000 10100 1 Rn Rd
#define SXTL8H(d, n) WORD $(0x0F08A400 | (n)<<5 | (d))
// SXTL2 Vd.8H, Vn.16B (high 8 bytes): 0 1 0 011110 0001 000 10100 1 Rn Rd
#define SXTL28H(d, n) WORD $(0x4F08A400 | (n)<<5 | (d))
// SXTL Vd.4S, Vn.4H (= SSHLL #0, low 4 halfwords): 0 0 0 011110 0010 000 10100 1 Rn Rd
#define SXTL4S(d, n) WORD $(0x0F10A400 | (n)<<5 | (d))
// SXTL2 Vd.4S, Vn.8H (high 4 halfwords): 0 1 0 011110 0010 000 10100 1 Rn Rd
#define SXTL24S(d, n) WORD $(0x4F10A400 | (n)<<5 | (d))
// SCVTF Vd.4S, Vn.4S (int32 → float32): 0 1 0 01110 0 0 10000 11101 10 Rn Rd
#define SCVTF4S(d, n) WORD $(0x4E21D800 | (n)<<5 | (d))
// FRINTN Vd.4S, Vn.4S (round to nearest, ties to even): 0 1 0 01110 0 0 10000 11000 10 Rn Rd
#define FRINTN4S(d, n) WORD $(0x4E218800 | (n)<<5 | (d))
// FCVTZS Vd.4S, Vn.4S (float32 → int32, toward zero): 0 1 0 01110 1 0 10000 11011 10 Rn Rd
#define FCVTZS4S(d, n) WORD $(0x4EA1B800 | (n)<<5 | (d))

// HSUM leaves the sum of the 4 lanes of Vr in Sr (pairwise: (r0+r1)+(r2+r3)).
#define HSUM(r) FADDP4S(r, r, r); FADDP2S(r, r)

// ZERO8 clears V16–V23.
#define ZERO8 \
	VEOR V16.B16, V16.B16, V16.B16; VEOR V17.B16, V17.B16, V17.B16; \
	VEOR V18.B16, V18.B16, V18.B16; VEOR V19.B16, V19.B16, V19.B16; \
	VEOR V20.B16, V20.B16, V20.B16; VEOR V21.B16, V21.B16, V21.B16; \
	VEOR V22.B16, V22.B16, V22.B16; VEOR V23.B16, V23.B16, V23.B16

// ---------------------------------------------------------------------------
// float32 vectors

// func dotF32NEON(a, b *float32, n int) float32
// Σ a[i]·b[i]; n a multiple of 4. 32 values per iteration into 8
// accumulators (FMLA latency × 2 pipes), then 4 at a time.
TEXT ·dotF32NEON(SB), NOSPLIT, $0-28
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R2
	ZERO8
	CMP  $32, R2
	BLT  dot4

dot32:
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P 64(R1), [V8.S4, V9.S4, V10.S4, V11.S4]
	VLD1.P 64(R1), [V12.S4, V13.S4, V14.S4, V15.S4]
	VFMLA  V8.S4, V0.S4, V16.S4
	VFMLA  V9.S4, V1.S4, V17.S4
	VFMLA  V10.S4, V2.S4, V18.S4
	VFMLA  V11.S4, V3.S4, V19.S4
	VFMLA  V12.S4, V4.S4, V20.S4
	VFMLA  V13.S4, V5.S4, V21.S4
	VFMLA  V14.S4, V6.S4, V22.S4
	VFMLA  V15.S4, V7.S4, V23.S4
	SUB    $32, R2, R2
	CMP    $32, R2
	BGE    dot32

dot4:
	CBZ    R2, dotdone
	VLD1.P 16(R0), [V0.S4]
	VLD1.P 16(R1), [V8.S4]
	VFMLA  V8.S4, V0.S4, V16.S4
	SUB    $4, R2, R2
	B      dot4

dotdone:
	FADD4S(16, 16, 17)
	FADD4S(18, 18, 19)
	FADD4S(20, 20, 21)
	FADD4S(22, 22, 23)
	FADD4S(16, 16, 18)
	FADD4S(20, 20, 22)
	FADD4S(16, 16, 20)
	HSUM(16)
	FMOVS  F16, ret+24(FP)
	RET

// func axpyF32NEON(alpha float32, x, y *float32, n int)
// y[i] += alpha·x[i]; n a multiple of 4. y is read through R1 and written
// through R3.
TEXT ·axpyF32NEON(SB), NOSPLIT, $0-32
	FMOVS alpha+0(FP), F0
	VDUP  V0.S[0], V0.S4
	MOVD  x+8(FP), R0
	MOVD  y+16(FP), R1
	MOVD  n+24(FP), R2
	MOVD  R1, R3
	CMP   $16, R2
	BLT   ax4

ax16:
	VLD1.P 64(R0), [V1.S4, V2.S4, V3.S4, V4.S4]
	VLD1.P 64(R1), [V5.S4, V6.S4, V7.S4, V8.S4]
	VFMLA  V1.S4, V0.S4, V5.S4
	VFMLA  V2.S4, V0.S4, V6.S4
	VFMLA  V3.S4, V0.S4, V7.S4
	VFMLA  V4.S4, V0.S4, V8.S4
	VST1.P [V5.S4, V6.S4, V7.S4, V8.S4], 64(R3)
	SUB    $16, R2, R2
	CMP    $16, R2
	BGE    ax16

ax4:
	CBZ    R2, axdone
	VLD1.P 16(R0), [V1.S4]
	VLD1.P 16(R1), [V5.S4]
	VFMLA  V1.S4, V0.S4, V5.S4
	VST1.P [V5.S4], 16(R3)
	SUB    $4, R2, R2
	B      ax4

axdone:
	RET

// func dot4F32NEON(row, x *float32, stride, n int, out *[4]float32)
// out[j] = Σ row[i]·x[j·stride+i] for j < 4; n a multiple of 4. Each row
// load serves four inputs; 8 values per iteration, 8 accumulators.
TEXT ·dot4F32NEON(SB), NOSPLIT, $0-40
	MOVD row+0(FP), R0
	MOVD x+8(FP), R1
	MOVD stride+16(FP), R2
	MOVD n+24(FP), R3
	LSL  $2, R2, R2
	ADD  R2, R1, R4
	ADD  R2, R4, R5
	ADD  R2, R5, R6
	ZERO8
	CMP  $8, R3
	BLT  d4tail

d4loop:
	VLD1.P 32(R0), [V0.S4, V1.S4]
	VLD1.P 32(R1), [V2.S4, V3.S4]
	VLD1.P 32(R4), [V4.S4, V5.S4]
	VLD1.P 32(R5), [V6.S4, V7.S4]
	VLD1.P 32(R6), [V8.S4, V9.S4]
	VFMLA  V2.S4, V0.S4, V16.S4
	VFMLA  V3.S4, V1.S4, V17.S4
	VFMLA  V4.S4, V0.S4, V18.S4
	VFMLA  V5.S4, V1.S4, V19.S4
	VFMLA  V6.S4, V0.S4, V20.S4
	VFMLA  V7.S4, V1.S4, V21.S4
	VFMLA  V8.S4, V0.S4, V22.S4
	VFMLA  V9.S4, V1.S4, V23.S4
	SUB    $8, R3, R3
	CMP    $8, R3
	BGE    d4loop

d4tail:
	CBZ    R3, d4done // at most 4 left
	VLD1   (R0), [V0.S4]
	VLD1   (R1), [V2.S4]
	VLD1   (R4), [V4.S4]
	VLD1   (R5), [V6.S4]
	VLD1   (R6), [V8.S4]
	VFMLA  V2.S4, V0.S4, V16.S4
	VFMLA  V4.S4, V0.S4, V18.S4
	VFMLA  V6.S4, V0.S4, V20.S4
	VFMLA  V8.S4, V0.S4, V22.S4

d4done:
	FADD4S(16, 16, 17)
	FADD4S(18, 18, 19)
	FADD4S(20, 20, 21)
	FADD4S(22, 22, 23)
	FADDP4S(16, 16, 18) // s0 01, s0 23, s1 01, s1 23
	FADDP4S(20, 20, 22) // s2 …, s3 …
	FADDP4S(16, 16, 20) // s0, s1, s2, s3
	MOVD   out+32(FP), R7
	VST1   [V16.S4], (R7)
	RET

// ---------------------------------------------------------------------------
// F16 rows

// func dotF16NEON(x *float32, w *byte, n int) float32
// Σ x[i]·w[i] with w IEEE half precision; n a multiple of 4. FCVTL/FCVTL2
// widen 8 halves to two float32 vectors; 16 values per iteration.
TEXT ·dotF16NEON(SB), NOSPLIT, $0-28
	MOVD x+0(FP), R0
	MOVD w+8(FP), R1
	MOVD n+16(FP), R2
	ZERO8
	CMP  $16, R2
	BLT  h4

h16:
	VLD1.P 32(R1), [V0.H8, V1.H8]
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	FCVTL4S(2, 0)
	FCVTL24S(3, 0)
	FCVTL4S(10, 1)
	FCVTL24S(11, 1)
	VFMLA  V4.S4, V2.S4, V16.S4
	VFMLA  V5.S4, V3.S4, V17.S4
	VFMLA  V6.S4, V10.S4, V18.S4
	VFMLA  V7.S4, V11.S4, V19.S4
	SUB    $16, R2, R2
	CMP    $16, R2
	BGE    h16

h4:
	CBZ    R2, hdone
	VLD1.P 8(R1), [V0.H4]
	VLD1.P 16(R0), [V4.S4]
	FCVTL4S(2, 0)
	VFMLA  V4.S4, V2.S4, V16.S4
	SUB    $4, R2, R2
	B      h4

hdone:
	FADD4S(16, 16, 17)
	FADD4S(18, 18, 19)
	FADD4S(16, 16, 18)
	HSUM(16)
	FMOVS  F16, ret+24(FP)
	RET

// func dequantF16NEON(dst *float32, w *byte, n int)
// dst[i] = float32(w[i]); n a multiple of 4.
TEXT ·dequantF16NEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD w+8(FP), R1
	MOVD n+16(FP), R2
	CMP  $16, R2
	BLT  dh4

dh16:
	VLD1.P 32(R1), [V0.H8, V1.H8]
	FCVTL4S(2, 0)
	FCVTL24S(3, 0)
	FCVTL4S(4, 1)
	FCVTL24S(5, 1)
	VST1.P [V2.S4, V3.S4, V4.S4, V5.S4], 64(R0)
	SUB    $16, R2, R2
	CMP    $16, R2
	BGE    dh16

dh4:
	CBZ    R2, dhdone
	VLD1.P 8(R1), [V0.H4]
	FCVTL4S(2, 0)
	VST1.P [V2.S4], 16(R0)
	SUB    $4, R2, R2
	B      dh4

dhdone:
	RET

// ---------------------------------------------------------------------------
// Q8_0 and Q4_0 rows: blocks of an f16 scale d and 32 values (Q8_0: 32
// int8; Q4_0: 16 bytes, value i in the low nibble of byte i and value 16+i
// in the high nibble, stored +8). The loops below load the scale with
// LD1R (every lane) and FCVTL, so V24 holds d in all four lanes.

// WIDEN16 turns the 32 int16 in V2–V5 (8H each, value order) into float32
// in V8–V15: SXTL/SXTL2 to int32, then SCVTF.
#define WIDEN16 \
	SXTL4S(8, 2); SXTL24S(9, 2); SXTL4S(10, 3); SXTL24S(11, 3); \
	SXTL4S(12, 4); SXTL24S(13, 4); SXTL4S(14, 5); SXTL24S(15, 5); \
	SCVTF4S(8, 8); SCVTF4S(9, 9); SCVTF4S(10, 10); SCVTF4S(11, 11); \
	SCVTF4S(12, 12); SCVTF4S(13, 13); SCVTF4S(14, 14); SCVTF4S(15, 15)

// Q8VALS: the 32 int8 in V0, V1 → float32 in V8–V15 (uses V2–V5).
#define Q8VALS \
	SXTL8H(2, 0); SXTL28H(3, 0); SXTL8H(4, 1); SXTL28H(5, 1); \
	WIDEN16

// Q4VALS: the 16 bytes in V0 → the 32 values q−8 as float32 in V8–V15
// (uses V2–V7; V29 = 0x0f and V30 = 8 in every byte).
#define Q4VALS \
	VAND  V29.B16, V0.B16, V6.B16; \
	VUSHR $4, V0.B16, V7.B16; \
	VSUB  V30.B16, V6.B16, V6.B16; \
	VSUB  V30.B16, V7.B16, V7.B16; \
	SXTL8H(2, 6); SXTL28H(3, 6); SXTL8H(4, 7); SXTL28H(5, 7); \
	WIDEN16

// BLOCKDOT: V31 += d·Σ q·x for one block (q in V8–V15, x in V16–V23, d in
// V24): four products, four more fused in, summed as a tree, then one FMLA
// by the scale. Uses V25–V28.
#define BLOCKDOT \
	FMUL4S(25, 8, 16); FMUL4S(26, 9, 17); FMUL4S(27, 10, 18); FMUL4S(28, 11, 19); \
	VFMLA V20.S4, V12.S4, V25.S4; VFMLA V21.S4, V13.S4, V26.S4; \
	VFMLA V22.S4, V14.S4, V27.S4; VFMLA V23.S4, V15.S4, V28.S4; \
	FADD4S(25, 25, 26); FADD4S(27, 27, 28); FADD4S(25, 25, 27); \
	VFMLA V24.S4, V25.S4, V31.S4

// LOADX32: 32 float32 from (R0), post-incremented, into V16–V23.
#define LOADX32 \
	VLD1.P 64(R0), [V16.S4, V17.S4, V18.S4, V19.S4]; \
	VLD1.P 64(R0), [V20.S4, V21.S4, V22.S4, V23.S4]

// STORESCALED: V8–V15 ·= d (V24), stored to (R0), post-incremented.
#define STORESCALED \
	FMUL4S(8, 8, 24); FMUL4S(9, 9, 24); FMUL4S(10, 10, 24); FMUL4S(11, 11, 24); \
	FMUL4S(12, 12, 24); FMUL4S(13, 13, 24); FMUL4S(14, 14, 24); FMUL4S(15, 15, 24); \
	VST1.P [V8.S4, V9.S4, V10.S4, V11.S4], 64(R0); \
	VST1.P [V12.S4, V13.S4, V14.S4, V15.S4], 64(R0)

// AXPYSCALED: y (32 floats at R0 for reading, R3 for writing, both
// post-incremented) += (alpha·d)·q, alpha in V26, d in V24, q in V8–V15.
#define AXPYSCALED \
	FMUL4S(25, 24, 26); \
	VLD1.P 64(R0), [V16.S4, V17.S4, V18.S4, V19.S4]; \
	VLD1.P 64(R0), [V20.S4, V21.S4, V22.S4, V23.S4]; \
	VFMLA V8.S4, V25.S4, V16.S4; VFMLA V9.S4, V25.S4, V17.S4; \
	VFMLA V10.S4, V25.S4, V18.S4; VFMLA V11.S4, V25.S4, V19.S4; \
	VFMLA V12.S4, V25.S4, V20.S4; VFMLA V13.S4, V25.S4, V21.S4; \
	VFMLA V14.S4, V25.S4, V22.S4; VFMLA V15.S4, V25.S4, V23.S4; \
	VST1.P [V16.S4, V17.S4, V18.S4, V19.S4], 64(R3); \
	VST1.P [V20.S4, V21.S4, V22.S4, V23.S4], 64(R3)

// Q4CONSTS sets V29 = 0x0f and V30 = 8 in every byte.
#define Q4CONSTS VMOVI $15, V29.B16; VMOVI $8, V30.B16

// func dotQ8_0NEON(x *float32, w *byte, nb int) float32
// Σ x[i]·w[i] over nb Q8_0 blocks (32·nb values), no dequantized copy.
TEXT ·dotQ8_0NEON(SB), NOSPLIT, $0-28
	MOVD x+0(FP), R0
	MOVD w+8(FP), R1
	MOVD nb+16(FP), R2
	VEOR V31.B16, V31.B16, V31.B16
	CBZ  R2, q8dotdone

q8dotloop:
	VLD1R.P 2(R1), [V24.H4]
	VLD1.P  32(R1), [V0.B16, V1.B16]
	LOADX32
	FCVTL4S(24, 24)
	Q8VALS
	BLOCKDOT
	SUBS    $1, R2, R2
	BNE     q8dotloop

q8dotdone:
	HSUM(31)
	FMOVS F31, ret+24(FP)
	RET

// func dequantQ8_0NEON(dst *float32, w *byte, nb int)
// The 32·nb values of nb Q8_0 blocks as float32 (d·q).
TEXT ·dequantQ8_0NEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD w+8(FP), R1
	MOVD nb+16(FP), R2
	CBZ  R2, q8deqdone

q8deqloop:
	VLD1R.P 2(R1), [V24.H4]
	VLD1.P  32(R1), [V0.B16, V1.B16]
	FCVTL4S(24, 24)
	Q8VALS
	STORESCALED
	SUBS    $1, R2, R2
	BNE     q8deqloop

q8deqdone:
	RET

// func axpyQ8_0NEON(alpha float32, w *byte, y *float32, nb int)
// y[i] += alpha·w[i] over the 32·nb values of nb Q8_0 blocks.
TEXT ·axpyQ8_0NEON(SB), NOSPLIT, $0-32
	FMOVS alpha+0(FP), F26
	VDUP  V26.S[0], V26.S4
	MOVD  w+8(FP), R1
	MOVD  y+16(FP), R0
	MOVD  nb+24(FP), R2
	MOVD  R0, R3
	CBZ   R2, q8axdone

q8axloop:
	VLD1R.P 2(R1), [V24.H4]
	VLD1.P  32(R1), [V0.B16, V1.B16]
	FCVTL4S(24, 24)
	Q8VALS
	AXPYSCALED
	SUBS    $1, R2, R2
	BNE     q8axloop

q8axdone:
	RET

// func dotQ4_0NEON(x *float32, w *byte, nb int) float32
// Σ x[i]·w[i] over nb Q4_0 blocks (32·nb values), no dequantized copy.
TEXT ·dotQ4_0NEON(SB), NOSPLIT, $0-28
	MOVD x+0(FP), R0
	MOVD w+8(FP), R1
	MOVD nb+16(FP), R2
	Q4CONSTS
	VEOR V31.B16, V31.B16, V31.B16
	CBZ  R2, q4dotdone

q4dotloop:
	VLD1R.P 2(R1), [V24.H4]
	VLD1.P  16(R1), [V0.B16]
	LOADX32
	FCVTL4S(24, 24)
	Q4VALS
	BLOCKDOT
	SUBS    $1, R2, R2
	BNE     q4dotloop

q4dotdone:
	HSUM(31)
	FMOVS F31, ret+24(FP)
	RET

// func dequantQ4_0NEON(dst *float32, w *byte, nb int)
// The 32·nb values of nb Q4_0 blocks as float32 (d·(q−8)).
TEXT ·dequantQ4_0NEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD w+8(FP), R1
	MOVD nb+16(FP), R2
	Q4CONSTS
	CBZ  R2, q4deqdone

q4deqloop:
	VLD1R.P 2(R1), [V24.H4]
	VLD1.P  16(R1), [V0.B16]
	FCVTL4S(24, 24)
	Q4VALS
	STORESCALED
	SUBS    $1, R2, R2
	BNE     q4deqloop

q4deqdone:
	RET

// func axpyQ4_0NEON(alpha float32, w *byte, y *float32, nb int)
// y[i] += alpha·w[i] over the 32·nb values of nb Q4_0 blocks.
TEXT ·axpyQ4_0NEON(SB), NOSPLIT, $0-32
	FMOVS alpha+0(FP), F26
	VDUP  V26.S[0], V26.S4
	MOVD  w+8(FP), R1
	MOVD  y+16(FP), R0
	MOVD  nb+24(FP), R2
	MOVD  R0, R3
	Q4CONSTS
	CBZ   R2, q4axdone

q4axloop:
	VLD1R.P 2(R1), [V24.H4]
	VLD1.P  16(R1), [V0.B16]
	FCVTL4S(24, 24)
	Q4VALS
	AXPYSCALED
	SUBS    $1, R2, R2
	BNE     q4axloop

q4axdone:
	RET

// ---------------------------------------------------------------------------
// Blocked matrix kernels: an 8×8 tile of C in V16–V31 (row i, columns 0–3 in
// V(16+2i), columns 4–7 in V(17+2i)).

// GSTEP(p, b0, b1): one k step, acc[i] += B·A[i][k] for the 8 rows, with the
// B row in V(b0), V(b1) and A[i][k] in lane p of Vi (FMLA by element, so A
// needs no broadcast: one 4-float load of a row of A serves 4 k steps).
#define GSTEP(p, b0, b1) \
	FMLAE(16, b0, 0, p); FMLAE(17, b1, 0, p); FMLAE(18, b0, 1, p); FMLAE(19, b1, 1, p); \
	FMLAE(20, b0, 2, p); FMLAE(21, b1, 2, p); FMLAE(22, b0, 3, p); FMLAE(23, b1, 3, p); \
	FMLAE(24, b0, 4, p); FMLAE(25, b1, 4, p); FMLAE(26, b0, 5, p); FMLAE(27, b1, 5, p); \
	FMLAE(28, b0, 6, p); FMLAE(29, b1, 6, p); FMLAE(30, b0, 7, p); FMLAE(31, b1, 7, p)

// TR4 transposes the 4×4 block whose rows are r0–r3 into its columns c0–c3
// (t0–t3 are scratch): TRN1/TRN2 on 32-bit lanes, then on 64-bit halves.
#define TR4(r0, r1, r2, r3, c0, c1, c2, c3, t0, t1, t2, t3) \
	VTRN1 r1.S4, r0.S4, t0.S4; \
	VTRN2 r1.S4, r0.S4, t1.S4; \
	VTRN1 r3.S4, r2.S4, t2.S4; \
	VTRN2 r3.S4, r2.S4, t3.S4; \
	VTRN1 t2.D2, t0.D2, c0.D2; \
	VTRN1 t3.D2, t1.D2, c1.D2; \
	VTRN2 t2.D2, t0.D2, c2.D2; \
	VTRN2 t3.D2, t1.D2, c3.D2

// TSTORE8(dst, ld) stores the 8×8 block of V16–V31 transposed: column j
// (its 8 rows, as two vectors) at dst + j·ld bytes, dst post-incremented.
// Uses V0–V15.
#define TSTORE8(dst, ld) \
	TR4(V16, V18, V20, V22, V0, V2, V4, V6, V8, V9, V10, V11); \
	TR4(V24, V26, V28, V30, V1, V3, V5, V7, V12, V13, V14, V15); \
	VST1.P [V0.S4, V1.S4], (dst)(ld); \
	VST1.P [V2.S4, V3.S4], (dst)(ld); \
	VST1.P [V4.S4, V5.S4], (dst)(ld); \
	VST1.P [V6.S4, V7.S4], (dst)(ld); \
	TR4(V17, V19, V21, V23, V0, V2, V4, V6, V8, V9, V10, V11); \
	TR4(V25, V27, V29, V31, V1, V3, V5, V7, V12, V13, V14, V15); \
	VST1.P [V0.S4, V1.S4], (dst)(ld); \
	VST1.P [V2.S4, V3.S4], (dst)(ld); \
	VST1.P [V4.S4, V5.S4], (dst)(ld); \
	VST1.P [V6.S4, V7.S4], (dst)(ld)

// func gemmNEON(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k int, mode int)
// The 8×8 tile C = A·B (mode 0), C += A·B (mode 1) or C = A·B stored
// transposed, element (i, j) at c[j·ldc + i] (mode 2); A has k columns and
// rows lda floats apart, B k rows ldb floats apart, C rows ldc apart;
// k ≥ 1. Per 4 k steps: 8 loads of A (one per row), 4 of B (two vectors
// each) and 64 FMLAs by element into the 16 accumulators. The last k mod 4
// steps load one float per row of A.
TEXT ·gemmNEON(SB), NOSPLIT, $0-64
	MOVD a+0(FP), R0
	MOVD lda+8(FP), R14
	LSL  $2, R14, R14
	ADD  R14, R0, R1
	ADD  R14, R1, R2
	ADD  R14, R2, R3
	ADD  R14, R3, R4
	ADD  R14, R4, R5
	ADD  R14, R5, R6
	ADD  R14, R6, R7
	MOVD b+16(FP), R8
	MOVD ldb+24(FP), R9
	LSL  $2, R9, R9
	MOVD k+48(FP), R10
	ZERO8
	VEOR V24.B16, V24.B16, V24.B16
	VEOR V25.B16, V25.B16, V25.B16
	VEOR V26.B16, V26.B16, V26.B16
	VEOR V27.B16, V27.B16, V27.B16
	VEOR V28.B16, V28.B16, V28.B16
	VEOR V29.B16, V29.B16, V29.B16
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16
	CMP  $4, R10
	BLT  gemm1

gemm4:
	VLD1.P 16(R0), [V0.S4]
	VLD1.P 16(R1), [V1.S4]
	VLD1.P 16(R2), [V2.S4]
	VLD1.P 16(R3), [V3.S4]
	VLD1.P 16(R4), [V4.S4]
	VLD1.P 16(R5), [V5.S4]
	VLD1.P 16(R6), [V6.S4]
	VLD1.P 16(R7), [V7.S4]
	VLD1.P (R8)(R9), [V8.S4, V9.S4]
	VLD1.P (R8)(R9), [V10.S4, V11.S4]
	VLD1.P (R8)(R9), [V12.S4, V13.S4]
	VLD1.P (R8)(R9), [V14.S4, V15.S4]
	GSTEP(0, 8, 9)
	GSTEP(1, 10, 11)
	GSTEP(2, 12, 13)
	GSTEP(3, 14, 15)
	SUB    $4, R10, R10
	CMP    $4, R10
	BGE    gemm4

gemm1:
	CBZ     R10, gemmstore
	FMOVS.P 4(R0), F0
	FMOVS.P 4(R1), F1
	FMOVS.P 4(R2), F2
	FMOVS.P 4(R3), F3
	FMOVS.P 4(R4), F4
	FMOVS.P 4(R5), F5
	FMOVS.P 4(R6), F6
	FMOVS.P 4(R7), F7
	VLD1.P  (R8)(R9), [V8.S4, V9.S4]
	GSTEP(0, 8, 9)
	SUB     $1, R10, R10
	B       gemm1

gemmstore:
	MOVD c+32(FP), R11
	MOVD ldc+40(FP), R12
	LSL  $2, R12, R12
	MOVD mode+56(FP), R13
	CMP  $2, R13
	BEQ  gemmtrans
	CBZ  R13, gemmover
	MOVD R11, R15
	VLD1.P (R15)(R12), [V0.S4, V1.S4]
	VLD1.P (R15)(R12), [V2.S4, V3.S4]
	VLD1.P (R15)(R12), [V4.S4, V5.S4]
	VLD1.P (R15)(R12), [V6.S4, V7.S4]
	VLD1.P (R15)(R12), [V8.S4, V9.S4]
	VLD1.P (R15)(R12), [V10.S4, V11.S4]
	VLD1.P (R15)(R12), [V12.S4, V13.S4]
	VLD1   (R15), [V14.S4, V15.S4]
	FADD4S(16, 16, 0)
	FADD4S(17, 17, 1)
	FADD4S(18, 18, 2)
	FADD4S(19, 19, 3)
	FADD4S(20, 20, 4)
	FADD4S(21, 21, 5)
	FADD4S(22, 22, 6)
	FADD4S(23, 23, 7)
	FADD4S(24, 24, 8)
	FADD4S(25, 25, 9)
	FADD4S(26, 26, 10)
	FADD4S(27, 27, 11)
	FADD4S(28, 28, 12)
	FADD4S(29, 29, 13)
	FADD4S(30, 30, 14)
	FADD4S(31, 31, 15)

gemmover:
	VST1.P [V16.S4, V17.S4], (R11)(R12)
	VST1.P [V18.S4, V19.S4], (R11)(R12)
	VST1.P [V20.S4, V21.S4], (R11)(R12)
	VST1.P [V22.S4, V23.S4], (R11)(R12)
	VST1.P [V24.S4, V25.S4], (R11)(R12)
	VST1.P [V26.S4, V27.S4], (R11)(R12)
	VST1.P [V28.S4, V29.S4], (R11)(R12)
	VST1   [V30.S4, V31.S4], (R11)
	RET

gemmtrans:
	TSTORE8(R11, R12)
	RET

// func transpose8F32NEON(dst *float32, ldd int, x *float32, ldx int, n int)
// dst[c·ldd + i] = x[i·ldx + c] for i < 8, c < n; n a multiple of 8: the
// packing of MatMul's inputs. Per 8 columns: 16 loads, four 4×4 transposes
// (TR4) and 8 stores of 8 floats.
TEXT ·transpose8F32NEON(SB), NOSPLIT, $0-40
	MOVD dst+0(FP), R8
	MOVD ldd+8(FP), R9
	LSL  $2, R9, R9
	MOVD x+16(FP), R0
	MOVD ldx+24(FP), R14
	LSL  $2, R14, R14
	ADD  R14, R0, R1
	ADD  R14, R1, R2
	ADD  R14, R2, R3
	ADD  R14, R3, R4
	ADD  R14, R4, R5
	ADD  R14, R5, R6
	ADD  R14, R6, R7
	MOVD n+32(FP), R10
	CBZ  R10, t8done

t8loop:
	VLD1.P 32(R0), [V16.S4, V17.S4]
	VLD1.P 32(R1), [V18.S4, V19.S4]
	VLD1.P 32(R2), [V20.S4, V21.S4]
	VLD1.P 32(R3), [V22.S4, V23.S4]
	VLD1.P 32(R4), [V24.S4, V25.S4]
	VLD1.P 32(R5), [V26.S4, V27.S4]
	VLD1.P 32(R6), [V28.S4, V29.S4]
	VLD1.P 32(R7), [V30.S4, V31.S4]
	TSTORE8(R8, R9)
	SUBS   $8, R10, R10
	BNE    t8loop

t8done:
	RET

// ---------------------------------------------------------------------------
// Softmax and activation pieces

// func maxF32NEON(x *float32, n int) float32
// The largest of x[0:n]; n a positive multiple of 4. NaNs are not looked
// for.
TEXT ·maxF32NEON(SB), NOSPLIT, $0-20
	MOVD x+0(FP), R0
	MOVD n+8(FP), R1
	VLD1 (R0), [V0.S4]
	VORR V0.B16, V0.B16, V1.B16
	VORR V0.B16, V0.B16, V2.B16
	VORR V0.B16, V0.B16, V3.B16
	CMP  $16, R1
	BLT  mx4

mx16:
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	FMAX4S(0, 0, 4)
	FMAX4S(1, 1, 5)
	FMAX4S(2, 2, 6)
	FMAX4S(3, 3, 7)
	SUB    $16, R1, R1
	CMP    $16, R1
	BGE    mx16

mx4:
	CBZ    R1, mxdone
	VLD1.P 16(R0), [V4.S4]
	FMAX4S(0, 0, 4)
	SUB    $4, R1, R1
	B      mx4

mxdone:
	FMAX4S(0, 0, 1)
	FMAX4S(2, 2, 3)
	FMAX4S(0, 0, 2)
	FMAXV4S(0, 0)
	FMOVS  F0, ret+16(FP)
	RET

// EXPCONSTS loads the constants of the exponential (Exp32's algorithm):
// V17 = −87, V18 = log2 e, V19 = ln2 high part, V20 = ln2 low part,
// V21–V25 = 1/720, 1/120, 1/24, 1/6, 1/2, V26 = 1, V27 = int32 127.
#define EXPCONSTS \
	MOVW $0xc2ae0000, R3; VDUP R3, V17.S4; \
	MOVW $0x3fb8aa3b, R3; VDUP R3, V18.S4; \
	MOVW $0x3f318000, R3; VDUP R3, V19.S4; \
	MOVW $0xb95e8083, R3; VDUP R3, V20.S4; \
	MOVW $0x3ab60b61, R3; VDUP R3, V21.S4; \
	MOVW $0x3c088889, R3; VDUP R3, V22.S4; \
	MOVW $0x3d2aaaab, R3; VDUP R3, V23.S4; \
	MOVW $0x3e2aaaab, R3; VDUP R3, V24.S4; \
	MOVW $0x3f000000, R3; VDUP R3, V25.S4; \
	MOVW $0x3f800000, R3; VDUP R3, V26.S4; \
	MOVW $127, R3; VDUP R3, V27.S4

// func expSubF32NEON(x *float32, n int, m float32) float32
// x[i] = e^(x[i]−m) in place, returning their sum; n a multiple of 4.
// Per vector v = max(x−m, −87), k = round(v·log2 e) (ties to even),
// r = v − k·ln2 (two FMLS), p = degree-6 Taylor polynomial of e^r (Horner,
// one FMLA per degree), times 2^k built in the exponent bits. 8 values per
// iteration (V0–V4 and V8–V12), two sums (V28, V29).
TEXT ·expSubF32NEON(SB), NOSPLIT, $0-28
	MOVD  x+0(FP), R0
	MOVD  n+8(FP), R1
	FMOVS m+16(FP), F16
	VDUP  V16.S[0], V16.S4
	EXPCONSTS
	MOVD  R0, R2
	VEOR  V28.B16, V28.B16, V28.B16
	VEOR  V29.B16, V29.B16, V29.B16
	CMP   $8, R1
	BLT   ex4

ex8:
	VLD1.P 32(R0), [V0.S4, V1.S4]
	VORR   V1.B16, V1.B16, V8.B16
	FSUB4S(0, 0, 16)
	FSUB4S(8, 8, 16)
	FMAX4S(0, 0, 17)
	FMAX4S(8, 8, 17)
	FMUL4S(1, 0, 18)
	FMUL4S(9, 8, 18)
	FRINTN4S(1, 1)
	FRINTN4S(9, 9)
	VFMLS  V19.S4, V1.S4, V0.S4
	VFMLS  V19.S4, V9.S4, V8.S4
	VFMLS  V20.S4, V1.S4, V0.S4
	VFMLS  V20.S4, V9.S4, V8.S4
	VORR   V22.B16, V22.B16, V2.B16
	VORR   V22.B16, V22.B16, V10.B16
	VFMLA  V21.S4, V0.S4, V2.S4
	VFMLA  V21.S4, V8.S4, V10.S4
	VORR   V23.B16, V23.B16, V3.B16
	VORR   V23.B16, V23.B16, V11.B16
	VFMLA  V2.S4, V0.S4, V3.S4
	VFMLA  V10.S4, V8.S4, V11.S4
	VORR   V24.B16, V24.B16, V2.B16
	VORR   V24.B16, V24.B16, V10.B16
	VFMLA  V3.S4, V0.S4, V2.S4
	VFMLA  V11.S4, V8.S4, V10.S4
	VORR   V25.B16, V25.B16, V3.B16
	VORR   V25.B16, V25.B16, V11.B16
	VFMLA  V2.S4, V0.S4, V3.S4
	VFMLA  V10.S4, V8.S4, V11.S4
	VORR   V26.B16, V26.B16, V2.B16
	VORR   V26.B16, V26.B16, V10.B16
	VFMLA  V3.S4, V0.S4, V2.S4
	VFMLA  V11.S4, V8.S4, V10.S4
	VORR   V26.B16, V26.B16, V4.B16
	VORR   V26.B16, V26.B16, V12.B16
	VFMLA  V2.S4, V0.S4, V4.S4
	VFMLA  V10.S4, V8.S4, V12.S4
	FCVTZS4S(1, 1)
	FCVTZS4S(9, 9)
	VADD   V27.S4, V1.S4, V1.S4
	VADD   V27.S4, V9.S4, V9.S4
	VSHL   $23, V1.S4, V1.S4
	VSHL   $23, V9.S4, V9.S4
	FMUL4S(4, 4, 1)
	FMUL4S(12, 12, 9)
	VST1.P [V4.S4], 16(R2)
	VST1.P [V12.S4], 16(R2)
	FADD4S(28, 28, 4)
	FADD4S(29, 29, 12)
	SUB    $8, R1, R1
	CMP    $8, R1
	BGE    ex8

ex4:
	CBZ    R1, exdone // at most 4 left
	VLD1   (R0), [V0.S4]
	FSUB4S(0, 0, 16)
	FMAX4S(0, 0, 17)
	FMUL4S(1, 0, 18)
	FRINTN4S(1, 1)
	VFMLS  V19.S4, V1.S4, V0.S4
	VFMLS  V20.S4, V1.S4, V0.S4
	VORR   V22.B16, V22.B16, V2.B16
	VFMLA  V21.S4, V0.S4, V2.S4
	VORR   V23.B16, V23.B16, V3.B16
	VFMLA  V2.S4, V0.S4, V3.S4
	VORR   V24.B16, V24.B16, V2.B16
	VFMLA  V3.S4, V0.S4, V2.S4
	VORR   V25.B16, V25.B16, V3.B16
	VFMLA  V2.S4, V0.S4, V3.S4
	VORR   V26.B16, V26.B16, V2.B16
	VFMLA  V3.S4, V0.S4, V2.S4
	VORR   V26.B16, V26.B16, V4.B16
	VFMLA  V2.S4, V0.S4, V4.S4
	FCVTZS4S(1, 1)
	VADD   V27.S4, V1.S4, V1.S4
	VSHL   $23, V1.S4, V1.S4
	FMUL4S(4, 4, 1)
	VST1   [V4.S4], (R2)
	FADD4S(28, 28, 4)

exdone:
	FADD4S(28, 28, 29)
	HSUM(28)
	FMOVS  F28, ret+24(FP)
	RET

// func sigmoidF32NEON(dst, x *float32, n int)
// dst[i] = 1/(1+e^−x[i]); n a multiple of 4. e = exp(−|x|) by expSub's
// algorithm (never overflows), r = 1/(1+e) (FDIV), and the result is r
// where x ≥ 0, e·r where the sign of x is set (CMTST builds the mask, BIT
// selects), so there is no cancellation.
TEXT ·sigmoidF32NEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD x+8(FP), R1
	MOVD n+16(FP), R2
	EXPCONSTS
	MOVW $0x80000000, R3
	VDUP R3, V16.S4
	CBZ  R2, sgdone

sgloop:
	VLD1.P 16(R1), [V5.S4]
	VORR   V16.B16, V5.B16, V0.B16 // −|x|
	FMAX4S(0, 0, 17)
	FMUL4S(1, 0, 18)
	FRINTN4S(1, 1)
	VFMLS  V19.S4, V1.S4, V0.S4
	VFMLS  V20.S4, V1.S4, V0.S4
	VORR   V22.B16, V22.B16, V2.B16
	VFMLA  V21.S4, V0.S4, V2.S4
	VORR   V23.B16, V23.B16, V3.B16
	VFMLA  V2.S4, V0.S4, V3.S4
	VORR   V24.B16, V24.B16, V2.B16
	VFMLA  V3.S4, V0.S4, V2.S4
	VORR   V25.B16, V25.B16, V3.B16
	VFMLA  V2.S4, V0.S4, V3.S4
	VORR   V26.B16, V26.B16, V2.B16
	VFMLA  V3.S4, V0.S4, V2.S4
	VORR   V26.B16, V26.B16, V4.B16
	VFMLA  V2.S4, V0.S4, V4.S4
	FCVTZS4S(1, 1)
	VADD   V27.S4, V1.S4, V1.S4
	VSHL   $23, V1.S4, V1.S4
	FMUL4S(4, 4, 1)             // e = exp(−|x|)
	FADD4S(2, 4, 26)            // 1 + e
	FDIV4S(3, 26, 2)            // r = 1/(1+e)
	FMUL4S(2, 4, 3)             // e·r
	VCMTST V16.S4, V5.S4, V6.S4    // sign of x set
	VBIT   V6.B16, V2.B16, V3.B16  // there: e·r, else r
	VST1.P [V3.S4], 16(R0)
	SUBS   $4, R2, R2
	BNE    sgloop

sgdone:
	RET

// ---------------------------------------------------------------------------
// K-quant rows: super-blocks of 256 values (layouts in
// engine/quant/kquant.go). Q4_K and Q5_K values are d1·q − m1 with one
// (d1, m1) per 32 values; Q6_K values are ds·(q − 32) with one ds per 16.
// The scales of a super-block are unpacked into vector lanes once and used
// through the by-element forms (FMUL, FMLA, FMLS Vd.4S, Vn.4S, Vm.S[i]),
// so no broadcast per sub-block is needed. Dequantized (and axpy) values
// are rounded as quant's decoders round them: float32(d1·q) − m1 and
// ds·float32(q−32). The dots sum Σx·q and Σx per 32 values and apply d1
// and m1 once (Q6_K: Σx·q per 16 values, then ds), so they differ from the
// generic result by float32 rounding only.

// UXTL Vd.8H, Vn.8B (= USHLL #0): 0 0 1 011110 0001 000 10100 1 Rn Rd
#define UXTL8H(d, n) WORD $(0x2F08A400 | (n)<<5 | (d))
// UXTL2 Vd.8H, Vn.16B: 0 1 1 011110 0001 000 10100 1 Rn Rd
#define UXTL28H(d, n) WORD $(0x6F08A400 | (n)<<5 | (d))
// UXTL Vd.4S, Vn.4H: 0 0 1 011110 0010 000 10100 1 Rn Rd
#define UXTL4S(d, n) WORD $(0x2F10A400 | (n)<<5 | (d))
// UXTL2 Vd.4S, Vn.8H: 0 1 1 011110 0010 000 10100 1 Rn Rd
#define UXTL24S(d, n) WORD $(0x6F10A400 | (n)<<5 | (d))
// UCVTF Vd.4S, Vn.4S (uint32 → float32): 0 1 1 01110 0 0 10000 11101 10 Rn Rd
#define UCVTF4S(d, n) WORD $(0x6E21D800 | (n)<<5 | (d))
// FMUL Vd.4S, Vn.4S, Vm.S[i] (by element): 0 1 0 01111 1 0 L M Rm 1001 H 0 Rn Rd
#define FMULE(d, n, m, i) WORD $(0x4F809000 | ((i)&1)<<21 | (m)<<16 | ((i)>>1)<<11 | (n)<<5 | (d))
// FMLS Vd.4S, Vn.4S, Vm.S[i] (by element): 0 1 0 01111 1 0 L M Rm 0101 H 0 Rn Rd
#define FMLSE(d, n, m, i) WORD $(0x4F805000 | ((i)&1)<<21 | (m)<<16 | ((i)>>1)<<11 | (n)<<5 | (d))
// DUP Vd.4S, Vn.S[i]: 0 1 0 01110000 imm5 0 0000 1 Rn Rd, imm5 = i:100
#define DUPE(d, n, i) WORD $(0x4E000400 | ((i)<<3 | 4)<<16 | (n)<<5 | (d))

// UWIDEN: the 16 unsigned bytes in V(b) → float32 in V(o)…V(o+3), value
// order (uses V(t0), V(t1)).
#define UWIDEN(b, t0, t1, o) \
	UXTL8H(t0, b); UXTL28H(t1, b); \
	UXTL4S(o, t0); UXTL24S((o)+1, t0); UXTL4S((o)+2, t1); UXTL24S((o)+3, t1); \
	UCVTF4S(o, o); UCVTF4S((o)+1, (o)+1); UCVTF4S((o)+2, (o)+2); UCVTF4S((o)+3, (o)+3)

// SWIDEN: the 16 int8 in V(b) → float32 in V(o)…V(o+3) (uses V(t0), V(t1)).
#define SWIDEN(b, t0, t1, o) \
	SXTL8H(t0, b); SXTL28H(t1, b); \
	SXTL4S(o, t0); SXTL24S((o)+1, t0); SXTL4S((o)+2, t1); SXTL24S((o)+3, t1); \
	SCVTF4S(o, o); SCVTF4S((o)+1, (o)+1); SCVTF4S((o)+2, (o)+2); SCVTF4S((o)+3, (o)+3)

// KSCALES: the scales and mins of the Q4_K/Q5_K super-block at R1 (12
// bytes at R1+4, 6 bits each) times d and dmin (f16 at R1, R1+2), as
// float32: d1 of sub-blocks 0–3 in V24, 4–7 in V25, m1 in V26, V27. With
// the scale bytes as little-endian words W0, W1, W2: scales 0–3 are
// W0 & 0x3f3f3f3f, scales 4–7 (W2 & 0x0f0f0f0f) | ((W0 >> 6) & 0x03030303) << 4,
// mins 0–3 W1 & 0x3f3f3f3f, mins 4–7 ((W2 >> 4) & 0x0f0f0f0f) |
// ((W1 >> 6) & 0x03030303) << 4. Uses R4–R10, V0–V2.
#define KSCALES \
	MOVWU 4(R1), R4; MOVWU 8(R1), R5; MOVWU 12(R1), R6; \
	ANDW  $0x3f3f3f3f, R4, R7; ANDW $0x3f3f3f3f, R5, R8; \
	LSRW  $6, R4, R4; ANDW $0x03030303, R4, R4; LSLW $4, R4, R4; \
	ANDW  $0x0f0f0f0f, R6, R9; ORRW R9, R4, R4; \
	LSRW  $6, R5, R5; ANDW $0x03030303, R5, R5; LSLW $4, R5, R5; \
	LSRW  $4, R6, R6; ANDW $0x0f0f0f0f, R6, R6; ORRW R6, R5, R5; \
	VMOV  R7, V0.S[0]; VMOV R4, V0.S[1]; VMOV R8, V0.S[2]; VMOV R5, V0.S[3]; \
	UXTL8H(1, 0); UXTL28H(2, 0); \
	UXTL4S(24, 1); UXTL24S(25, 1); UXTL4S(26, 2); UXTL24S(27, 2); \
	UCVTF4S(24, 24); UCVTF4S(25, 25); UCVTF4S(26, 26); UCVTF4S(27, 27); \
	VLD1R (R1), [V0.H4]; ADD $2, R1, R10; VLD1R (R10), [V1.H4]; \
	FCVTL4S(0, 0); FCVTL4S(1, 1); \
	FMUL4S(24, 24, 0); FMUL4S(25, 25, 0); FMUL4S(26, 26, 1); FMUL4S(27, 27, 1)

// Q4KNIBS: the 32 bytes at R3 (post-incremented) → low nibbles in V16,
// V17 and high nibbles in V18, V19 (V29 = 0x0f in every byte).
#define Q4KNIBS \
	VLD1.P 32(R3), [V14.B16, V15.B16]; \
	VAND   V29.B16, V14.B16, V16.B16; VAND V29.B16, V15.B16, V17.B16; \
	VUSHR  $4, V14.B16, V18.B16; VUSHR $4, V15.B16, V19.B16

// KSUBDOT: one 32-value sub-block of levels (bytes V(b0), V(b1)) against
// the next 32 x (R0, post-incremented): V12 = Σx·q, V13 = Σx, then
// V31 += d1·V12 and V30 −= m1·V13, d1 = V(dr).S[ln], m1 = V(mr).S[ln].
// Uses V0–V5, V8–V13.
#define KSUBDOT(b0, b1, dr, mr, ln) \
	UWIDEN(b0, 4, 5, 0); \
	VLD1.P 64(R0), [V8.S4, V9.S4, V10.S4, V11.S4]; \
	FMUL4S(12, 0, 8); FADD4S(13, 8, 9); \
	VFMLA  V9.S4, V1.S4, V12.S4; VFMLA V10.S4, V2.S4, V12.S4; VFMLA V11.S4, V3.S4, V12.S4; \
	FADD4S(13, 13, 10); FADD4S(13, 13, 11); \
	UWIDEN(b1, 4, 5, 0); \
	VLD1.P 64(R0), [V8.S4, V9.S4, V10.S4, V11.S4]; \
	VFMLA  V8.S4, V0.S4, V12.S4; VFMLA V9.S4, V1.S4, V12.S4; \
	VFMLA  V10.S4, V2.S4, V12.S4; VFMLA V11.S4, V3.S4, V12.S4; \
	FADD4S(13, 13, 8); FADD4S(13, 13, 9); FADD4S(13, 13, 10); FADD4S(13, 13, 11); \
	FMLAE(31, 12, dr, ln); FMLSE(30, 13, mr, ln)

// KVALS: the 16 levels in bytes V(b) → values float32(d1·q) − m1 in V0–V3
// (d1 = V(dr).S[ln], m1 in every lane of V12). Uses V4, V5.
#define KVALS(b, dr, ln) \
	UWIDEN(b, 4, 5, 0); \
	FMULE(0, 0, dr, ln); FMULE(1, 1, dr, ln); FMULE(2, 2, dr, ln); FMULE(3, 3, dr, ln); \
	FSUB4S(0, 0, 12); FSUB4S(1, 1, 12); FSUB4S(2, 2, 12); FSUB4S(3, 3, 12)

// KSUBDEQ: one sub-block's 32 values stored to (R0), post-incremented.
#define KSUBDEQ(b0, b1, dr, mr, ln) \
	DUPE(12, mr, ln); \
	KVALS(b0, dr, ln); \
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R0); \
	KVALS(b1, dr, ln); \
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R0)

// AXPY16: y (16 floats read at R0, written at R11, both post-incremented)
// += alpha·V0–V3, alpha in every lane of V28. Uses V8–V11.
#define AXPY16 \
	VLD1.P 64(R0), [V8.S4, V9.S4, V10.S4, V11.S4]; \
	VFMLA  V0.S4, V28.S4, V8.S4; VFMLA V1.S4, V28.S4, V9.S4; \
	VFMLA  V2.S4, V28.S4, V10.S4; VFMLA V3.S4, V28.S4, V11.S4; \
	VST1.P [V8.S4, V9.S4, V10.S4, V11.S4], 64(R11)

// KSUBAXPY: one sub-block's 32 values, alpha times, added to y.
#define KSUBAXPY(b0, b1, dr, mr, ln) \
	DUPE(12, mr, ln); \
	KVALS(b0, dr, ln); \
	AXPY16; \
	KVALS(b1, dr, ln); \
	AXPY16

// Q4KBLOCK(SUB): one Q4_K super-block at R1 through the sub-block macro
// SUB (KSUBDOT, KSUBDEQ or KSUBAXPY): values 64j+l (l < 32) are the low
// nibbles of bytes 16+32j+l with scale 2j, values 64j+32+l the high ones
// with scale 2j+1.
#define Q4KBLOCK(SUB) \
	KSCALES; \
	ADD $16, R1, R3; \
	Q4KNIBS; SUB(16, 17, 24, 26, 0); SUB(18, 19, 24, 26, 1); \
	Q4KNIBS; SUB(16, 17, 24, 26, 2); SUB(18, 19, 24, 26, 3); \
	Q4KNIBS; SUB(16, 17, 25, 27, 0); SUB(18, 19, 25, 27, 1); \
	Q4KNIBS; SUB(16, 17, 25, 27, 2); SUB(18, 19, 25, 27, 3)

// func dotQ4_KNEON(x *float32, w *byte, nb int) float32
// Σ x[i]·w[i] over nb Q4_K super-blocks (256·nb values).
TEXT ·dotQ4_KNEON(SB), NOSPLIT, $0-28
	MOVD x+0(FP), R0
	MOVD w+8(FP), R1
	MOVD nb+16(FP), R2
	VMOVI $15, V29.B16
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16
	CBZ  R2, q4kdotdone

q4kdotloop:
	Q4KBLOCK(KSUBDOT)
	ADD  $144, R1, R1
	SUBS $1, R2, R2
	BNE  q4kdotloop

q4kdotdone:
	FADD4S(31, 31, 30)
	HSUM(31)
	FMOVS F31, ret+24(FP)
	RET

// func dequantQ4_KNEON(dst *float32, w *byte, nb int)
// The 256·nb values of nb Q4_K super-blocks as float32.
TEXT ·dequantQ4_KNEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD w+8(FP), R1
	MOVD nb+16(FP), R2
	VMOVI $15, V29.B16
	CBZ  R2, q4kdeqdone

q4kdeqloop:
	Q4KBLOCK(KSUBDEQ)
	ADD  $144, R1, R1
	SUBS $1, R2, R2
	BNE  q4kdeqloop

q4kdeqdone:
	RET

// func axpyQ4_KNEON(alpha float32, w *byte, y *float32, nb int)
// y[i] += alpha·w[i] over the 256·nb values of nb Q4_K super-blocks.
TEXT ·axpyQ4_KNEON(SB), NOSPLIT, $0-32
	FMOVS alpha+0(FP), F28
	VDUP  V28.S[0], V28.S4
	MOVD  w+8(FP), R1
	MOVD  y+16(FP), R0
	MOVD  nb+24(FP), R2
	MOVD  R0, R11
	VMOVI $15, V29.B16
	CBZ   R2, q4kaxdone

q4kaxloop:
	Q4KBLOCK(KSUBAXPY)
	ADD  $144, R1, R1
	SUBS $1, R2, R2
	BNE  q4kaxloop

q4kaxdone:
	RET

// Q5KBIT(SH, n, d0, d1): the high bits of a Q5_K group into the levels:
// qh (V20, V21) shifted by SH (VSHL or VUSHR) n bits so that the group's
// bit lands on bit 4, masked with V23 (0x10 in every byte), ORed into d0,
// d1. Uses V12, V13.
#define Q5KBIT(SH, n, d0, d1) \
	SH   $n, V20.B16, V12.B16; SH $n, V21.B16, V13.B16; \
	VAND V23.B16, V12.B16, V12.B16; VAND V23.B16, V13.B16, V13.B16; \
	VORR V12.B16, d0.B16, d0.B16; VORR V13.B16, d1.B16, d1.B16

// Q5KBIT0: Q5KBIT for a bit already on bit 4.
#define Q5KBIT0(d0, d1) \
	VAND V23.B16, V20.B16, V12.B16; VAND V23.B16, V21.B16, V13.B16; \
	VORR V12.B16, d0.B16, d0.B16; VORR V13.B16, d1.B16, d1.B16

// Q5KBLOCK(SUB): one Q5_K super-block at R1 (nibbles at R1+48, high bits
// qh at R1+16: bit 2j of qh[l] is bit 4 of level 64j+l, bit 2j+1 of level
// 64j+32+l) through the sub-block macro SUB, as Q4KBLOCK.
#define Q5KBLOCK(SUB) \
	KSCALES; \
	ADD    $16, R1, R3; \
	VLD1.P 32(R3), [V20.B16, V21.B16]; \
	Q4KNIBS; Q5KBIT(VSHL, 4, V16, V17); Q5KBIT(VSHL, 3, V18, V19); \
	SUB(16, 17, 24, 26, 0); SUB(18, 19, 24, 26, 1); \
	Q4KNIBS; Q5KBIT(VSHL, 2, V16, V17); Q5KBIT(VSHL, 1, V18, V19); \
	SUB(16, 17, 24, 26, 2); SUB(18, 19, 24, 26, 3); \
	Q4KNIBS; Q5KBIT0(V16, V17); Q5KBIT(VUSHR, 1, V18, V19); \
	SUB(16, 17, 25, 27, 0); SUB(18, 19, 25, 27, 1); \
	Q4KNIBS; Q5KBIT(VUSHR, 2, V16, V17); Q5KBIT(VUSHR, 3, V18, V19); \
	SUB(16, 17, 25, 27, 2); SUB(18, 19, 25, 27, 3)

// Q5KCONSTS sets V29 = 0x0f and V23 = 0x10 in every byte.
#define Q5KCONSTS VMOVI $15, V29.B16; VMOVI $16, V23.B16

// func dotQ5_KNEON(x *float32, w *byte, nb int) float32
// Σ x[i]·w[i] over nb Q5_K super-blocks (256·nb values).
TEXT ·dotQ5_KNEON(SB), NOSPLIT, $0-28
	MOVD x+0(FP), R0
	MOVD w+8(FP), R1
	MOVD nb+16(FP), R2
	Q5KCONSTS
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16
	CBZ  R2, q5kdotdone

q5kdotloop:
	Q5KBLOCK(KSUBDOT)
	ADD  $176, R1, R1
	SUBS $1, R2, R2
	BNE  q5kdotloop

q5kdotdone:
	FADD4S(31, 31, 30)
	HSUM(31)
	FMOVS F31, ret+24(FP)
	RET

// func dequantQ5_KNEON(dst *float32, w *byte, nb int)
// The 256·nb values of nb Q5_K super-blocks as float32.
TEXT ·dequantQ5_KNEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD w+8(FP), R1
	MOVD nb+16(FP), R2
	Q5KCONSTS
	CBZ  R2, q5kdeqdone

q5kdeqloop:
	Q5KBLOCK(KSUBDEQ)
	ADD  $176, R1, R1
	SUBS $1, R2, R2
	BNE  q5kdeqloop

q5kdeqdone:
	RET

// func axpyQ5_KNEON(alpha float32, w *byte, y *float32, nb int)
// y[i] += alpha·w[i] over the 256·nb values of nb Q5_K super-blocks.
TEXT ·axpyQ5_KNEON(SB), NOSPLIT, $0-32
	FMOVS alpha+0(FP), F28
	VDUP  V28.S[0], V28.S4
	MOVD  w+8(FP), R1
	MOVD  y+16(FP), R0
	MOVD  nb+24(FP), R2
	MOVD  R0, R11
	Q5KCONSTS
	CBZ   R2, q5kaxdone

q5kaxloop:
	Q5KBLOCK(KSUBAXPY)
	ADD  $176, R1, R1
	SUBS $1, R2, R2
	BNE  q5kaxloop

q5kaxdone:
	RET

// Q6KSCALES: ds = d·sc (sc the int8 at R1+192, d the f16 at R1+208) of
// the 16 sub-blocks of the Q6_K super-block at R1: ds[s] in
// V(24 + s/4).S[s%4]. Uses R10, V0–V3.
#define Q6KSCALES \
	ADD  $192, R1, R10; VLD1 (R10), [V0.B16]; \
	SXTL8H(1, 0); SXTL28H(2, 0); \
	SXTL4S(24, 1); SXTL24S(25, 1); SXTL4S(26, 2); SXTL24S(27, 2); \
	SCVTF4S(24, 24); SCVTF4S(25, 25); SCVTF4S(26, 26); SCVTF4S(27, 27); \
	ADD  $208, R1, R10; VLD1R (R10), [V3.H4]; FCVTL4S(3, 3); \
	FMUL4S(24, 24, 3); FMUL4S(25, 25, 3); FMUL4S(26, 26, 3); FMUL4S(27, 27, 3)

// Q6KLEVELS: the 128 levels of one half of a Q6_K super-block, minus 32,
// as int8 in value order in V16–V23: with A = ql[0:32] (64 bytes at R3,
// post-incremented: A in V8, V9, B = ql[32:64] in V10, V11) and H =
// qh[0:32] (32 bytes at R10, post-incremented, in V14, V15), values 0–31
// are A&15 | (H<<4)&0x30, 32–63 B&15 | (H<<2)&0x30, 64–95 A>>4 | H&0x30
// and 96–127 B>>4 | (H>>2)&0x30 (NEON shifts bytes, so nothing crosses
// into the next byte). V29 = 0x0f, V7 = 0x30, V6 = 32 in every byte.
// Uses V12, V13.
#define Q6KHBITS(SH, n, d0, d1) \
	SH   $n, V14.B16, V12.B16; SH $n, V15.B16, V13.B16; \
	VAND V7.B16, V12.B16, V12.B16; VAND V7.B16, V13.B16, V13.B16; \
	VORR V12.B16, d0.B16, d0.B16; VORR V13.B16, d1.B16, d1.B16

#define Q6KLEVELS \
	VLD1.P 64(R3), [V8.B16, V9.B16, V10.B16, V11.B16]; \
	VLD1.P 32(R10), [V14.B16, V15.B16]; \
	VAND   V29.B16, V8.B16, V16.B16; VAND V29.B16, V9.B16, V17.B16; \
	Q6KHBITS(VSHL, 4, V16, V17); \
	VAND   V29.B16, V10.B16, V18.B16; VAND V29.B16, V11.B16, V19.B16; \
	Q6KHBITS(VSHL, 2, V18, V19); \
	VUSHR  $4, V8.B16, V20.B16; VUSHR $4, V9.B16, V21.B16; \
	VAND   V7.B16, V14.B16, V12.B16; VAND V7.B16, V15.B16, V13.B16; \
	VORR   V12.B16, V20.B16, V20.B16; VORR V13.B16, V21.B16, V21.B16; \
	VUSHR  $4, V10.B16, V22.B16; VUSHR $4, V11.B16, V23.B16; \
	Q6KHBITS(VUSHR, 2, V22, V23); \
	VSUB   V6.B16, V16.B16, V16.B16; VSUB V6.B16, V17.B16, V17.B16; \
	VSUB   V6.B16, V18.B16, V18.B16; VSUB V6.B16, V19.B16, V19.B16; \
	VSUB   V6.B16, V20.B16, V20.B16; VSUB V6.B16, V21.B16, V21.B16; \
	VSUB   V6.B16, V22.B16, V22.B16; VSUB V6.B16, V23.B16, V23.B16

// Q6KDOT16: the 16 levels in V(lv) against the next 16 x (R0,
// post-incremented): V31 += ds·Σx·(q−32), ds = V(dr).S[ln]. Uses V0–V5,
// V8–V12.
#define Q6KDOT16(lv, dr, ln) \
	SWIDEN(lv, 4, 5, 0); \
	VLD1.P 64(R0), [V8.S4, V9.S4, V10.S4, V11.S4]; \
	FMUL4S(12, 0, 8); VFMLA V9.S4, V1.S4, V12.S4; \
	VFMLA  V10.S4, V2.S4, V12.S4; VFMLA V11.S4, V3.S4, V12.S4; \
	FMLAE(31, 12, dr, ln)

// Q6KVALS16: the 16 values ds·float32(q−32) of V(lv) in V0–V3.
#define Q6KVALS16(lv, dr, ln) \
	SWIDEN(lv, 4, 5, 0); \
	FMULE(0, 0, dr, ln); FMULE(1, 1, dr, ln); FMULE(2, 2, dr, ln); FMULE(3, 3, dr, ln)

// Q6KDEQ16: the 16 values stored to (R0), post-incremented.
#define Q6KDEQ16(lv, dr, ln) \
	Q6KVALS16(lv, dr, ln); \
	VST1.P [V0.S4, V1.S4, V2.S4, V3.S4], 64(R0)

// Q6KAXPY16: alpha times the 16 values added to y.
#define Q6KAXPY16(lv, dr, ln) \
	Q6KVALS16(lv, dr, ln); \
	AXPY16

// Q6KBLOCK(CHUNK): one Q6_K super-block at R1 through CHUNK (Q6KDOT16,
// Q6KDEQ16 or Q6KAXPY16), 16 values (one scale) at a time.
#define Q6KHALF(CHUNK, r0, r1) \
	Q6KLEVELS; \
	CHUNK(16, r0, 0); CHUNK(17, r0, 1); CHUNK(18, r0, 2); CHUNK(19, r0, 3); \
	CHUNK(20, r1, 0); CHUNK(21, r1, 1); CHUNK(22, r1, 2); CHUNK(23, r1, 3)

#define Q6KBLOCK(CHUNK) \
	Q6KSCALES; \
	MOVD R1, R3; ADD $128, R1, R10; \
	Q6KHALF(CHUNK, 24, 25); \
	Q6KHALF(CHUNK, 26, 27)

// Q6KCONSTS sets V29 = 0x0f, V7 = 0x30 and V6 = 32 in every byte.
#define Q6KCONSTS VMOVI $15, V29.B16; VMOVI $48, V7.B16; VMOVI $32, V6.B16

// func dotQ6_KNEON(x *float32, w *byte, nb int) float32
// Σ x[i]·w[i] over nb Q6_K super-blocks (256·nb values).
TEXT ·dotQ6_KNEON(SB), NOSPLIT, $0-28
	MOVD x+0(FP), R0
	MOVD w+8(FP), R1
	MOVD nb+16(FP), R2
	Q6KCONSTS
	VEOR V31.B16, V31.B16, V31.B16
	CBZ  R2, q6kdotdone

q6kdotloop:
	Q6KBLOCK(Q6KDOT16)
	ADD  $210, R1, R1
	SUBS $1, R2, R2
	BNE  q6kdotloop

q6kdotdone:
	HSUM(31)
	FMOVS F31, ret+24(FP)
	RET

// func dequantQ6_KNEON(dst *float32, w *byte, nb int)
// The 256·nb values of nb Q6_K super-blocks as float32.
TEXT ·dequantQ6_KNEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD w+8(FP), R1
	MOVD nb+16(FP), R2
	Q6KCONSTS
	CBZ  R2, q6kdeqdone

q6kdeqloop:
	Q6KBLOCK(Q6KDEQ16)
	ADD  $210, R1, R1
	SUBS $1, R2, R2
	BNE  q6kdeqloop

q6kdeqdone:
	RET

// func axpyQ6_KNEON(alpha float32, w *byte, y *float32, nb int)
// y[i] += alpha·w[i] over the 256·nb values of nb Q6_K super-blocks.
TEXT ·axpyQ6_KNEON(SB), NOSPLIT, $0-32
	FMOVS alpha+0(FP), F28
	VDUP  V28.S[0], V28.S4
	MOVD  w+8(FP), R1
	MOVD  y+16(FP), R0
	MOVD  nb+24(FP), R2
	MOVD  R0, R11
	Q6KCONSTS
	CBZ   R2, q6kaxdone

q6kaxloop:
	Q6KBLOCK(Q6KAXPY16)
	ADD  $210, R1, R1
	SUBS $1, R2, R2
	BNE  q6kaxloop

q6kaxdone:
	RET
