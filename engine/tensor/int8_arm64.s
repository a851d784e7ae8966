// Hand-written arm64 kernels of the integer path for generation (int8.go,
// int8_arm64.go; SIMD.md "Int8 dot products"): the activation quantizer
// (Advanced SIMD) and the dot products of stored Q8_0, Q4_0, Q4_K and Q6_K
// rows with a quant.Q8Act, multiplying bytes with SDOT (FEAT_DotProd,
// ARMv8.2; Apple M1 and later, Cortex-A55/A76 and later, Neoverse N1 and
// later). Only called when the CPU reports it (int8_arm64.go).
//
// SDOT Vd.4S, Vn.16B, Vm.16B adds to each int32 lane i of Vd the four
// products Vn.B[4i+j]·Vm.B[4i+j], j < 4, both signed: one instruction
// multiplies 16 byte pairs exactly. Signed × signed means no sign trick:
// Q8_0 weights go in as they are, Q4_0 nibbles minus 8, Q6_K levels
// minus 32, Q4_K nibbles unsigned with the min term from the activation's
// block sums (Q8Act.M8). Per block (per 16 values for Q6_K) the int32 sum
// is converted once and added times d_w·d_x.
//
// Go's assembler has no SDOT and none of the floating-point vector
// arithmetic: those are emitted with WORD by the macros below, arguments
// register numbers (0–31) as in the Arm ARM (DDI 0487, section C7.2).
// Each macro's comment gives the Arm ARM bit fields its constant was
// built from; TestSDOTEncodingsDisassemble (int8_arm64_test.go) checks
// the expansions with GNU objdump for aarch64 where it is installed (every
// word decodes, to the intended instruction and registers). Go's ABI0
// saves no vector register; R18, R26–R30 are not used.

#include "textflag.h"

// SDOT Vd.4S, Vn.16B, Vm.16B (C7.2.300 SDOT (vector)):
// 0 Q=1 U=0 01110 size=10 0 Rm 1001 0 1 Rn Rd
#define SDOT(d, n, m) WORD $(0x4E809400 | (m)<<16 | (n)<<5 | (d))
// FMUL Vd.4S, Vn.4S, Vm.4S: 0 1 1 01110 0 0 1 Rm 110111 Rn Rd
#define I8FMUL(d, n, m) WORD $(0x6E20DC00 | (m)<<16 | (n)<<5 | (d))
// FMUL Vd.4S, Vn.4S, Vm.S[i] (by element): 0 1 0 01111 1 0 L M Rm 1001 H 0 Rn Rd,
// i = H:L
#define I8FMULE(d, n, m, i) WORD $(0x4F809000 | ((i)&1)<<21 | (m)<<16 | ((i)>>1)<<11 | (n)<<5 | (d))
// FADD Vd.4S, Vn.4S, Vm.4S: 0 1 0 01110 0 0 1 Rm 110101 Rn Rd
#define I8FADD(d, n, m) WORD $(0x4E20D400 | (m)<<16 | (n)<<5 | (d))
// FADDP Vd.4S, Vn.4S, Vm.4S: 0 1 1 01110 0 0 1 Rm 110101 Rn Rd
#define I8FADDP(d, n, m) WORD $(0x6E20D400 | (m)<<16 | (n)<<5 | (d))
// FADDP Sd, Vn.2S (scalar pairwise): 01 1 11110 0 0 11000 01101 10 Rn Rd
#define I8FADDP2S(d, n) WORD $(0x7E30D800 | (n)<<5 | (d))
// FMLA Vd.4S, Vn.4S, Vm.4S: 0 1 0 01110 0 0 1 Rm 110011 Rn Rd
#define I8FMLA(d, n, m) WORD $(0x4E20CC00 | (m)<<16 | (n)<<5 | (d))
// FMAX Vd.4S, Vn.4S, Vm.4S: 0 1 0 01110 0 0 1 Rm 111101 Rn Rd
#define I8FMAX(d, n, m) WORD $(0x4E20F400 | (m)<<16 | (n)<<5 | (d))
// FMAXV Sd, Vn.4S: 0 1 1 01110 0 0 11000 01111 10 Rn Rd
#define I8FMAXV(d, n) WORD $(0x6E30F800 | (n)<<5 | (d))
// FABS Vd.4S, Vn.4S: 0 1 0 01110 1 0 10000 01111 10 Rn Rd
#define I8FABS(d, n) WORD $(0x4EA0F800 | (n)<<5 | (d))
// FCVTNS Vd.4S, Vn.4S (to int32, nearest with ties to even):
// 0 1 0 01110 0 0 10000 11010 10 Rn Rd
#define I8FCVTNS(d, n) WORD $(0x4E21A800 | (n)<<5 | (d))
// FCVTL Vd.4S, Vn.4H (half → single): 0 0 0 01110 0 0 10000 10111 10 Rn Rd
#define I8FCVTL(d, n) WORD $(0x0E217800 | (n)<<5 | (d))
// SCVTF Vd.4S, Vn.4S (int32 → float32): 0 1 0 01110 0 0 10000 11101 10 Rn Rd
#define I8SCVTF(d, n) WORD $(0x4E21D800 | (n)<<5 | (d))
// SCVTF Vd.4S, Vn.4S, #3 (fixed point: int32 / 8, exact for the multiples
// of 8 in Q8Act.M8): 0 1 0 011110 immh:immb=0111101 (64−3) 11100 1 Rn Rd
#define I8SCVTF3(d, n) WORD $(0x4F3DE400 | (n)<<5 | (d))
// SXTL Vd.8H, Vn.8B: 0 0 0 011110 0001 000 10100 1 Rn Rd
#define I8SXTL8H(d, n) WORD $(0x0F08A400 | (n)<<5 | (d))
// SXTL Vd.4S, Vn.4H: 0 0 0 011110 0010 000 10100 1 Rn Rd
#define I8SXTL4S(d, n) WORD $(0x0F10A400 | (n)<<5 | (d))
// SXTL2 Vd.4S, Vn.8H: 0 1 0 011110 0010 000 10100 1 Rn Rd
#define I8SXTL24S(d, n) WORD $(0x4F10A400 | (n)<<5 | (d))

// ZEROI clears V(r), an SDOT accumulator (EOR Vr.16B, Vr.16B, Vr.16B:
// 0 1 1 01110 00 1 Rm 00011 1 Rn Rd).
#define ZEROI(r) WORD $(0x6E201C00 | (r)<<16 | (r)<<5 | (r))

// HSUMF leaves the sum of the 4 lanes of V(r) in F(r).
#define HSUMF(r) I8FADDP(r, r, r); I8FADDP2S(r, r)

// ---------------------------------------------------------------------------
// Activation quantizer

// func quantActNEON(x *float32, q *int8, d *float32, m128 *int32, m8 *int32, nb int)
// quant.QuantizeAct over nb blocks of 32 values, the same bytes: per block
// d = max|x|/127 (FDIV), id = 1/d (0 when d is 0), q = x·id (FMUL, one
// rounding) converted to the nearest integer with ties to even (FCVTNS, as
// the Go quantizer's (f + 1.5·2²³) − 1.5·2²³), narrowed to bytes with UZP1
// (the low halves); Σq from the int32 lanes.
TEXT ·quantActNEON(SB), NOSPLIT, $0-48
	MOVD  x+0(FP), R0
	MOVD  q+8(FP), R1
	MOVD  d+16(FP), R2
	MOVD  m128+24(FP), R3
	MOVD  m8+32(FP), R4
	MOVD  nb+40(FP), R5
	FMOVS $127.0, F28
	FMOVS $1.0, F29
	FMOVS ZR, F30
	CBZ   R5, qadone

qaloop:
	VLD1.P 64(R0), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P 64(R0), [V4.S4, V5.S4, V6.S4, V7.S4]
	I8FABS(16, 0); I8FABS(17, 1); I8FABS(18, 2); I8FABS(19, 3)
	I8FABS(20, 4); I8FABS(21, 5); I8FABS(22, 6); I8FABS(23, 7)
	I8FMAX(16, 16, 17); I8FMAX(18, 18, 19); I8FMAX(20, 20, 21); I8FMAX(22, 22, 23)
	I8FMAX(16, 16, 18); I8FMAX(20, 20, 22); I8FMAX(16, 16, 20)
	I8FMAXV(16, 16)
	FDIVS  F28, F16, F24           // d = amax/127
	FDIVS  F24, F29, F25           // id = 1/d
	FCMPS  $(0.0), F24
	FCSELS EQ, F30, F25, F25       // id = 0 when d = 0
	FMOVS.P F24, 4(R2)
	I8FMULE(0, 0, 25, 0); I8FMULE(1, 1, 25, 0); I8FMULE(2, 2, 25, 0); I8FMULE(3, 3, 25, 0)
	I8FMULE(4, 4, 25, 0); I8FMULE(5, 5, 25, 0); I8FMULE(6, 6, 25, 0); I8FMULE(7, 7, 25, 0)
	I8FCVTNS(0, 0); I8FCVTNS(1, 1); I8FCVTNS(2, 2); I8FCVTNS(3, 3)
	I8FCVTNS(4, 4); I8FCVTNS(5, 5); I8FCVTNS(6, 6); I8FCVTNS(7, 7)
	VADD   V1.S4, V0.S4, V16.S4
	VADD   V3.S4, V2.S4, V17.S4
	VADD   V5.S4, V4.S4, V18.S4
	VADD   V7.S4, V6.S4, V19.S4
	VADD   V17.S4, V16.S4, V16.S4
	VADD   V19.S4, V18.S4, V18.S4
	VADD   V18.S4, V16.S4, V16.S4
	VADDV  V16.S4, V16
	VUZP1  V1.H8, V0.H8, V0.H8     // int32 → int16: the low halves, in order
	VUZP1  V3.H8, V2.H8, V2.H8
	VUZP1  V5.H8, V4.H8, V4.H8
	VUZP1  V7.H8, V6.H8, V6.H8
	VUZP1  V2.B16, V0.B16, V0.B16  // int16 → int8
	VUZP1  V6.B16, V4.B16, V1.B16
	VST1.P [V0.B16, V1.B16], 32(R1)
	FMOVS  F16, R6
	NEGW   R6, R6
	LSLW   $7, R6, R7
	LSLW   $3, R6, R8
	MOVW.P R7, 4(R3)
	MOVW.P R8, 4(R4)
	SUBS   $1, R5, R5
	BNE    qaloop

qadone:
	RET

// ---------------------------------------------------------------------------
// Q8_0 and Q4_0 rows (blocks of an f16 scale and 32 values: Q8_0 32 int8,
// Q4_0 16 bytes holding values i and 16+i in the low and high nibble of
// byte i, stored +8). Four blocks per iteration: their four int32 vectors
// are reduced with 3 ADDP to one vector of the four block sums, which is
// converted and scaled at once (the four f16 d_w gathered into one vector
// with lane loads, d_x loaded as four floats): one SCVTF, FCVTL, FMUL and
// FMLA per 4 blocks. The 0–3 blocks left go one at a time.

// BSCALE(acc, isum, dw, dx, ln): acc += float(isum)·(d_w·d_x), d_w the f16
// in the low lanes of V(dw) (LD1R), d_x lane ln of V(dx).
#define BSCALE(acc, isum, dw, dx, ln) \
	I8FCVTL(dw, dw); \
	I8SCVTF(isum, isum); \
	I8FMULE(dw, dw, dx, ln); \
	I8FMLA(acc, isum, dw)

// QUADSUM: the four block sums in V16–V19 (lanes to add)
// into V30 with the scales: V20 holds the four f16 d_w, V22 the four d_x.
#define QUADSUM \
	VADDP V17.S4, V16.S4, V16.S4; \
	VADDP V19.S4, V18.S4, V18.S4; \
	VADDP V18.S4, V16.S4, V16.S4; \
	I8SCVTF(16, 16); \
	I8FCVTL(20, 20); \
	I8FMUL(20, 20, 22); \
	I8FMLA(30, 16, 20)

// Q8QUAD: four Q8_0 blocks at R0 against 128 activation bytes at R1, scales
// at R2 (all post-incremented), into V30.
#define Q8QUAD \
	VLD1.P 2(R0), V20.H[0]; \
	VLD1.P 32(R0), [V0.B16, V1.B16]; \
	VLD1.P 2(R0), V20.H[1]; \
	VLD1.P 32(R0), [V2.B16, V3.B16]; \
	VLD1.P 2(R0), V20.H[2]; \
	VLD1.P 32(R0), [V8.B16, V9.B16]; \
	VLD1.P 2(R0), V20.H[3]; \
	VLD1.P 32(R0), [V10.B16, V11.B16]; \
	VLD1.P 64(R1), [V4.B16, V5.B16, V6.B16, V7.B16]; \
	VLD1.P 64(R1), [V12.B16, V13.B16, V14.B16, V15.B16]; \
	VLD1.P 16(R2), [V22.S4]; \
	ZEROI(16); ZEROI(17); ZEROI(18); ZEROI(19); \
	SDOT(16, 0, 4); SDOT(17, 2, 6); SDOT(18, 8, 12); SDOT(19, 10, 14); \
	SDOT(16, 1, 5); SDOT(17, 3, 7); SDOT(18, 9, 13); SDOT(19, 11, 15); \
	QUADSUM

// Q8ONE: one Q8_0 block into V30.
#define Q8ONE \
	VLD1R.P 2(R0), [V20.H4]; \
	VLD1.P  32(R0), [V0.B16, V1.B16]; \
	VLD1.P  32(R1), [V4.B16, V5.B16]; \
	FMOVS.P 4(R2), F22; \
	ZEROI(16); \
	SDOT(16, 0, 4); SDOT(16, 1, 5); \
	BSCALE(30, 16, 20, 22, 0)

// func dotQ8_0Q8SDOT(w *byte, q *int8, d *float32, m *int32, nb int) float32
// Σ w·x over nb Q8_0 blocks, x the activation's blocks (m unused).
TEXT ·dotQ8_0Q8SDOT(SB), NOSPLIT, $0-44
	MOVD w+0(FP), R0
	MOVD q+8(FP), R1
	MOVD d+16(FP), R2
	MOVD nb+32(FP), R3
	ZEROI(30)
	ZEROI(31)
	CMP  $4, R3
	BLT  q8tail

q8loop:
	Q8QUAD
	SUB  $4, R3, R3
	CMP  $4, R3
	BGE  q8loop

q8tail:
	CBZ  R3, q8done

q8one:
	Q8ONE
	SUBS $1, R3, R3
	BNE  q8one

q8done:
	I8FADD(30, 30, 31)
	HSUMF(30)
	FMOVS F30, ret+40(FP)
	RET

// Q4NIB(w, lo, hi): the 16 bytes of V(w) as the block's 32 values minus 8,
// values 0–15 in V(lo), 16–31 in V(hi) (V28 = 0x0f, V29 = 8 in every byte).
#define Q4NIB(w, lo, hi) \
	VAND  V28.B16, w.B16, lo.B16; \
	VUSHR $4, w.B16, hi.B16; \
	VSUB  V29.B16, lo.B16, lo.B16; \
	VSUB  V29.B16, hi.B16, hi.B16

// Q4QUAD: four Q4_0 blocks at R0 into V30.
#define Q4QUAD \
	VLD1.P 2(R0), V20.H[0]; \
	VLD1.P 16(R0), [V0.B16]; \
	VLD1.P 2(R0), V20.H[1]; \
	VLD1.P 16(R0), [V1.B16]; \
	VLD1.P 2(R0), V20.H[2]; \
	VLD1.P 16(R0), [V2.B16]; \
	VLD1.P 2(R0), V20.H[3]; \
	VLD1.P 16(R0), [V3.B16]; \
	VLD1.P 64(R1), [V4.B16, V5.B16, V6.B16, V7.B16]; \
	VLD1.P 64(R1), [V12.B16, V13.B16, V14.B16, V15.B16]; \
	VLD1.P 16(R2), [V22.S4]; \
	Q4NIB(V0, V8, V9); Q4NIB(V1, V10, V11); Q4NIB(V2, V24, V25); Q4NIB(V3, V26, V27); \
	ZEROI(16); ZEROI(17); ZEROI(18); ZEROI(19); \
	SDOT(16, 8, 4); SDOT(17, 10, 6); SDOT(18, 24, 12); SDOT(19, 26, 14); \
	SDOT(16, 9, 5); SDOT(17, 11, 7); SDOT(18, 25, 13); SDOT(19, 27, 15); \
	QUADSUM

// Q4ONE: one Q4_0 block into V30.
#define Q4ONE \
	VLD1R.P 2(R0), [V20.H4]; \
	VLD1.P  16(R0), [V0.B16]; \
	VLD1.P  32(R1), [V4.B16, V5.B16]; \
	FMOVS.P 4(R2), F22; \
	Q4NIB(V0, V8, V9); \
	ZEROI(16); \
	SDOT(16, 8, 4); SDOT(16, 9, 5); \
	BSCALE(30, 16, 20, 22, 0)

// func dotQ4_0Q8SDOT(w *byte, q *int8, d *float32, m *int32, nb int) float32
// Σ w·x over nb Q4_0 blocks (m unused: the nibbles are made signed).
TEXT ·dotQ4_0Q8SDOT(SB), NOSPLIT, $0-44
	MOVD  w+0(FP), R0
	MOVD  q+8(FP), R1
	MOVD  d+16(FP), R2
	MOVD  nb+32(FP), R3
	VMOVI $15, V28.B16
	VMOVI $8, V29.B16
	ZEROI(30)
	ZEROI(31)
	CMP   $4, R3
	BLT   q4tail

q4loop:
	Q4QUAD
	SUB $4, R3, R3
	CMP $4, R3
	BGE q4loop

q4tail:
	CBZ  R3, q4done

q4one:
	Q4ONE
	SUBS $1, R3, R3
	BNE  q4one

q4done:
	I8FADD(30, 30, 31)
	HSUMF(30)
	FMOVS F30, ret+40(FP)
	RET

// ---------------------------------------------------------------------------
// Q4_K rows: super-blocks of 144 bytes (f16 d, f16 dmin, 12 bytes of 6-bit
// scales and mins, 128 bytes of nibbles: values 64j+l and 64j+32+l, l < 32,
// in the low and high nibble of byte 16+32j+l), 8 sub-blocks of 32 values,
// each one activation block. Value = d·sc_s·u − dmin·mn_s, so sub-block s
// gives d_x,s·(d·sc_s·Σu·q − dmin·mn_s·Σq), with −Σq = M8/8.

// Q4KHALF: 64 bytes of nibbles at R0 against 4 activation blocks at R1
// (both post-incremented): the sums Σu·q of sub-blocks 2j (low nibbles of
// the first 32 bytes), 2j+1 (their high nibbles), 2j+2, 2j+3, lanes still
// to add, in V(a0)–V(a3). Uses V0–V7, V16–V23 (V28 = 0x0f).
#define Q4KHALF(a0, a1, a2, a3) \
	VLD1.P 64(R0), [V0.B16, V1.B16, V2.B16, V3.B16]; \
	VLD1.P 64(R1), [V16.B16, V17.B16, V18.B16, V19.B16]; \
	VLD1.P 64(R1), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	VAND   V28.B16, V0.B16, V4.B16; VAND V28.B16, V1.B16, V5.B16; \
	VAND   V28.B16, V2.B16, V6.B16; VAND V28.B16, V3.B16, V7.B16; \
	VUSHR  $4, V0.B16, V0.B16; VUSHR $4, V1.B16, V1.B16; \
	VUSHR  $4, V2.B16, V2.B16; VUSHR $4, V3.B16, V3.B16; \
	ZEROI(a0); ZEROI(a1); ZEROI(a2); ZEROI(a3); \
	SDOT(a0, 4, 16); SDOT(a1, 0, 18); SDOT(a2, 6, 20); SDOT(a3, 2, 22); \
	SDOT(a0, 5, 17); SDOT(a1, 1, 19); SDOT(a2, 7, 21); SDOT(a3, 3, 23)

// func dotQ4_KQ8SDOT(w *byte, q *int8, d *float32, m *int32, nb int) float32
// Σ w·x over nb Q4_K super-blocks, m the activation's M8 (−8·Σq per block).
// Per super-block: the 12 scale bytes unpacked in general registers as
// three 32-bit words W0–W2 (sc0–3 = W0 & 0x3f3f3f3f, sc4–7 = (W2 &
// 0x0f0f0f0f) | ((W0 >> 2) & 0x30303030), the mins likewise from W1 and
// W2 >> 4), widened and converted; the 8 sums reduced to two vectors with
// ADDP; then V30 += Σu·q·(d·sc·d_x) and V31 += (M8/8)·(dmin·mn·d_x).
TEXT ·dotQ4_KQ8SDOT(SB), NOSPLIT, $0-44
	MOVD  w+0(FP), R0
	MOVD  q+8(FP), R1
	MOVD  d+16(FP), R2
	MOVD  m+24(FP), R3
	MOVD  nb+32(FP), R4
	VMOVI $15, V28.B16
	ZEROI(30)
	ZEROI(31)
	CBZ   R4, q4kdone

q4kloop:
	MOVWU 4(R0), R6
	MOVWU 8(R0), R7
	MOVWU 12(R0), R8
	ANDW  $0x3f3f3f3f, R6, R9
	ANDW  $0x3f3f3f3f, R7, R11
	LSRW  $2, R6, R10
	ANDW  $0x30303030, R10, R10
	ANDW  $0x0f0f0f0f, R8, R13
	ORRW  R13, R10, R10
	LSRW  $2, R7, R12
	ANDW  $0x30303030, R12, R12
	LSRW  $4, R8, R13
	ANDW  $0x0f0f0f0f, R13, R13
	ORRW  R13, R12, R12
	ORR   R10<<32, R9, R9
	ORR   R12<<32, R11, R11
	VMOV  R9, V24.D[0]         // sc0–7
	VMOV  R11, V24.D[1]        // mn0–7
	FMOVS (R0), F25            // d, dmin as halves in lanes 0, 1
	ADD   $16, R0, R0
	Q4KHALF(8, 9, 10, 11)
	Q4KHALF(12, 13, 14, 15)
	VADDP V9.S4, V8.S4, V8.S4
	VADDP V11.S4, V10.S4, V10.S4
	VADDP V13.S4, V12.S4, V12.S4
	VADDP V15.S4, V14.S4, V14.S4
	VADDP V10.S4, V8.S4, V8.S4     // Σu·q of sub-blocks 0–3
	VADDP V14.S4, V12.S4, V12.S4   // 4–7
	I8SCVTF(8, 8)
	I8SCVTF(12, 12)
	VUXTL  V24.B8, V26.H8
	VUXTL2 V24.B16, V27.H8
	VUXTL  V26.H4, V16.S4
	VUXTL2 V26.H8, V17.S4
	VUXTL  V27.H4, V18.S4
	VUXTL2 V27.H8, V19.S4
	I8SCVTF(16, 16); I8SCVTF(17, 17); I8SCVTF(18, 18); I8SCVTF(19, 19)
	I8FCVTL(25, 25)
	VLD1.P 32(R2), [V20.S4, V21.S4]   // d_x
	VLD1.P 32(R3), [V22.S4, V23.S4]   // M8
	I8SCVTF3(22, 22); I8SCVTF3(23, 23) // −Σq
	I8FMULE(16, 16, 25, 0); I8FMULE(17, 17, 25, 0)
	I8FMULE(18, 18, 25, 1); I8FMULE(19, 19, 25, 1)
	I8FMUL(16, 16, 20); I8FMUL(17, 17, 21); I8FMUL(18, 18, 20); I8FMUL(19, 19, 21)
	I8FMLA(30, 8, 16); I8FMLA(31, 12, 17); I8FMLA(30, 22, 18); I8FMLA(31, 23, 19)
	SUBS  $1, R4, R4
	BNE   q4kloop

q4kdone:
	I8FADD(30, 30, 31)
	HSUMF(30)
	FMOVS F30, ret+40(FP)
	RET

// ---------------------------------------------------------------------------
// Q6_K rows: super-blocks of 210 bytes (ql 128 bytes of low 4 bits, qh 64
// bytes of high 2 bits, 16 int8 scales, f16 d); value = d·sc·(u − 32), u of
// 6 bits, one scale per 16 values. Half n (128 values, activation blocks
// 4n…4n+3) takes ql[64n:64n+64] and qh[32n:32n+32]: for l < 32 the levels
// of values l, 32+l, 64+l, 96+l are ql[l] & 15 | (qh[l] & 3) << 4,
// ql[32+l] & 15 | (qh[l] >> 2 & 3) << 4, ql[l] >> 4 | (qh[l] >> 4 & 3) << 4
// and ql[32+l] >> 4 | (qh[l] >> 6) << 4.

// Q6KPIECE(l0, l2, h, o1, o3, t): the levels of 16 consecutive l from the
// ql bytes in V(l0) (ql[l]) and V(l2) (ql[32+l]) and the qh bytes in V(h),
// made signed (−32): value l in V(l0), 32+l in V(l2), 64+l in V(o1), 96+l
// in V(o3); V(t) scratch. SLI keeps the low nibble of its destination and
// inserts the other operand shifted left above it; USRA adds (here: ors,
// the bits do not overlap) a shifted right operand. V29 = 0x30, V28 =
// 0x3f, V27 = 32 in every byte.
#define Q6KPIECE(l0, l2, h, o1, o3, t) \
	VAND  V29.B16, h.B16, o1.B16; \
	VUSRA $4, l0.B16, o1.B16; \
	VUSHR $2, h.B16, t.B16; \
	VAND  V29.B16, t.B16, o3.B16; \
	VUSRA $4, l2.B16, o3.B16; \
	VSLI  $4, h.B16, l0.B16; \
	VSLI  $4, t.B16, l2.B16; \
	VAND  V28.B16, l0.B16, l0.B16; \
	VAND  V28.B16, l2.B16, l2.B16; \
	VSUB  V27.B16, l0.B16, l0.B16; \
	VSUB  V27.B16, l2.B16, l2.B16; \
	VSUB  V27.B16, o1.B16, o1.B16; \
	VSUB  V27.B16, o3.B16, o3.B16

// Q6KHALF: one half at R5 (ql) and R6 (qh) against 4 activation blocks at
// R1, all post-incremented; scales sc[8n…8n+7] at R7 (post-incremented),
// d in V26.S[0]; V31 += Σ over the 8 groups of 16 values of
// Σ(u−32)·q·(d·sc·d_x). Uses V0–V25.
#define Q6KHALF \
	VLD1.P 64(R5), [V0.B16, V1.B16, V2.B16, V3.B16]; \
	VLD1.P 32(R6), [V4.B16, V5.B16]; \
	Q6KPIECE(V0, V2, V4, V6, V7, V8); \
	Q6KPIECE(V1, V3, V5, V9, V10, V8); \
	VLD1.P 64(R1), [V16.B16, V17.B16, V18.B16, V19.B16]; \
	VLD1.P 64(R1), [V20.B16, V21.B16, V22.B16, V23.B16]; \
	ZEROI(11); ZEROI(12); ZEROI(13); ZEROI(14); \
	ZEROI(15); ZEROI(24); ZEROI(25); ZEROI(8); \
	SDOT(11, 0, 16); SDOT(12, 1, 17); SDOT(13, 2, 18); SDOT(14, 3, 19); \
	SDOT(15, 6, 20); SDOT(24, 9, 21); SDOT(25, 7, 22); SDOT(8, 10, 23); \
	VADDP V12.S4, V11.S4, V11.S4; \
	VADDP V14.S4, V13.S4, V13.S4; \
	VADDP V24.S4, V15.S4, V15.S4; \
	VADDP V8.S4, V25.S4, V25.S4; \
	VADDP V13.S4, V11.S4, V11.S4; \
	VADDP V25.S4, V15.S4, V15.S4; \
	I8SCVTF(11, 11); I8SCVTF(15, 15); \
	VLD1.P 8(R7), [V0.B8]; \
	I8SXTL8H(0, 0); I8SXTL4S(1, 0); I8SXTL24S(2, 0); \
	I8SCVTF(1, 1); I8SCVTF(2, 2); \
	VLD1.P 16(R2), [V3.S4]; \
	VZIP1 V3.S4, V3.S4, V4.S4; \
	VZIP2 V3.S4, V3.S4, V5.S4; \
	I8FMULE(1, 1, 26, 0); I8FMULE(2, 2, 26, 0); \
	I8FMUL(1, 1, 4); I8FMUL(2, 2, 5); \
	I8FMLA(31, 11, 1); I8FMLA(30, 15, 2)

// func dotQ6_KQ8SDOT(w *byte, q *int8, d *float32, m *int32, nb int) float32
// Σ w·x over nb Q6_K super-blocks (m unused: the levels are made signed).
// The 8 groups of 16 values of a half are 8 SDOT accumulators: ql[l] gives
// values l (block 4n, sc[8n] for l < 16, sc[8n+1] after), ql[32+l] block
// 4n+1, and so on; ADDP reduces them to the group sums in scale order.
TEXT ·dotQ6_KQ8SDOT(SB), NOSPLIT, $0-44
	MOVD  w+0(FP), R0
	MOVD  q+8(FP), R1
	MOVD  d+16(FP), R2
	MOVD  nb+32(FP), R4
	VMOVI $63, V28.B16
	VMOVI $48, V29.B16
	VMOVI $32, V27.B16
	ZEROI(30)
	ZEROI(31)
	CBZ   R4, q6kdone

q6kloop:
	ADD     $208, R0, R8
	VLD1R   (R8), [V26.H4]
	I8FCVTL(26, 26)            // d
	MOVD    R0, R5             // ql
	ADD     $128, R0, R6       // qh
	ADD     $192, R0, R7       // scales
	Q6KHALF
	Q6KHALF
	ADD     $210, R0, R0
	SUBS    $1, R4, R4
	BNE     q6kloop

q6kdone:
	I8FADD(30, 30, 31)
	HSUMF(30)
	FMOVS F30, ret+40(FP)
	RET
