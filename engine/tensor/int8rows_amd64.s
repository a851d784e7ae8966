// Hand-written: integer dot products of 16 stored Q4_0 rows at once with
// one activation vector quantized to int8 blocks (quant.Q8Act), for
// generation (see int8rows.go and SIMD.md, "rows in groups").
//
// Per activation block b (32 values): its first 16 bytes are broadcast to
// the four 128-bit chunks of Z30, the last 16 to Z29. Accumulator p
// (p = 0…3) takes in chunk c the 16 nibble bytes of row 4c+p's block b:
// low nibbles are values 0–15 (times Z30), high nibbles 16–31 (times
// Z29), two VPDPBUSD. Each int32 lane then holds a row's sum over 8
// values; a 4×4 transpose-and-add of the four accumulators inside each
// 128-bit chunk (unpack dwords, add, unpack qwords, add) leaves lane
// 4c+p = the exact Σ u·q of row 4c+p. −8·Σq (Q8Act.M8) is added, the 16
// sums converted to float32 and added into the float accumulator times
// d_w·d_x, where d_w are the 16 rows' f16 scales of block b from the
// side table (one VCVTPH2PS) and d_x the activation's scale (embedded
// broadcast). Per 16 rows × 32 values: 16 loads, 12 nibble operations, 8
// VPDPBUSD, 9 for the transpose, 5 for the scaling.

#include "textflag.h"

DATA i8rnib<>+0(SB)/4, $0x0f0f0f0f
GLOBL i8rnib<>(SB), RODATA|NOPTR, $4

// Q4ROWS loads into zu (xu its low 128 bits) the nibble bytes at a0…a3
// (rows of chunks 0…3), splits them into zu (low nibbles) and zh (high)
// and sets acc to Σ u·q per dword lane.
#define Q4ROWS(acc, xu, zu, zh, a0, a1, a2, a3) \
	VMOVDQU a0, xu; \
	VINSERTI32X4 $1, a1, zu, zu; \
	VINSERTI32X4 $2, a2, zu, zu; \
	VINSERTI32X4 $3, a3, zu, zu; \
	VPSRLW $4, zu, zh; \
	VPANDD Z31, zu, zu; \
	VPANDD Z31, zh, zh; \
	VPXORD acc, acc, acc; \
	VPDPBUSD Z30, zu, acc; \
	VPDPBUSD Z29, zh, acc

// func dotQ4_0Q8VNNI16(w *byte, stride int, sc *uint16, q *int8, d *float32, m *int32, nb int, out *float32)
TEXT ·dotQ4_0Q8VNNI16(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), BX
	MOVQ sc+16(FP), R14
	MOVQ q+24(FP), DI
	MOVQ d+32(FP), DX
	MOVQ m+40(FP), R8
	MOVQ nb+48(FP), CX
	MOVQ out+56(FP), AX
	LEAQ (BX)(BX*2), R13  // 3·stride
	LEAQ (SI)(BX*4), R10  // row 4
	LEAQ (R10)(BX*4), R11 // row 8
	LEAQ (R11)(BX*4), R12 // row 12
	LEAQ (R12)(BX*4), R9  // the next group, prefetched as this one runs
	VPXORD Z0, Z0, Z0
	VPBROADCASTD i8rnib<>(SB), Z31
	TESTQ CX, CX
	JZ   q4r_done
q4r_loop:
	PREFETCHT1 (R9)
	PREFETCHT1 64(R9)
	PREFETCHT1 128(R9)
	PREFETCHT1 192(R9)
	PREFETCHT1 256(R9)
	ADDQ $288, R9
	VBROADCASTI32X4 (DI), Z30
	VBROADCASTI32X4 16(DI), Z29
	Q4ROWS(Z1, X5, Z5, Z9, 2(SI), 2(R10), 2(R11), 2(R12))
	Q4ROWS(Z2, X6, Z6, Z10, 2(SI)(BX*1), 2(R10)(BX*1), 2(R11)(BX*1), 2(R12)(BX*1))
	Q4ROWS(Z3, X7, Z7, Z11, 2(SI)(BX*2), 2(R10)(BX*2), 2(R11)(BX*2), 2(R12)(BX*2))
	Q4ROWS(Z4, X8, Z8, Z12, 2(SI)(R13*1), 2(R10)(R13*1), 2(R11)(R13*1), 2(R12)(R13*1))
	VPUNPCKLDQ Z2, Z1, Z5
	VPUNPCKHDQ Z2, Z1, Z6
	VPADDD Z6, Z5, Z5      // rows p=0,1: [Σ lanes 0,2; Σ lanes 1,3] interleaved
	VPUNPCKLDQ Z4, Z3, Z6
	VPUNPCKHDQ Z4, Z3, Z7
	VPADDD Z7, Z6, Z6      // rows p=2,3
	VPUNPCKLQDQ Z6, Z5, Z7
	VPUNPCKHQDQ Z6, Z5, Z8
	VPADDD Z8, Z7, Z7      // lane 4c+p: Σ u·q of row 4c+p
	VPADDD.BCST (R8), Z7, Z7
	VCVTDQ2PS Z7, Z7
	VCVTPH2PS (R14), Z8
	VMULPS.BCST (DX), Z8, Z8
	VFMADD231PS Z8, Z7, Z0
	ADDQ $18, SI
	ADDQ $18, R10
	ADDQ $18, R11
	ADDQ $18, R12
	ADDQ $32, DI
	ADDQ $4, DX
	ADDQ $4, R8
	ADDQ $32, R14
	DECQ CX
	JNZ  q4r_loop
q4r_done:
	VMOVUPS Z0, (AX)
	VZEROUPPER
	RET

// Q4_K, 16 rows at once. Per super-block (256 values, 144 bytes per row)
// and pair j of sub-blocks (32 nibble bytes per row: low nibbles are
// sub-block 2j, high 2j+1), each row's 32 bytes are taken as two halves
// of 16 (values 0–15 and 16–31 of both sub-blocks), loaded four rows to a
// register as for Q4_0; low nibbles go into accumulators Z1–Z4 against
// the activation's sub-block 2j, high nibbles into Z5–Z8 against 2j+1.
// The same transpose-add gives lane r = Σ u·q of row r for each of the two
// sub-blocks, which are added into Z0 times d_r·sc_r,s·d_x,s (16 scale
// bytes from the side table, converted, times the 16 rows' d and the
// activation block's scale). The min terms of the 8 sub-blocks,
// −dmin_r·Σ_s mn_r,s·d_x,s·Σq_s, are accumulated in Z25 as
// Σ_s mn_r,s·(d_x,s·M8_s/8) (M8 = −8·Σq; the 8 products on the stack)
// and added times dmin_r once per super-block.
//
// Side table per super-block (int8Scales): 0 d[16] f16, 32 dmin[16] f16,
// 64 + 16s sc_s[16], 192 + 16s mn_s[16].

DATA i8reighth<>+0(SB)/4, $0x3e000000 // 0.125
GLOBL i8reighth<>(SB), RODATA|NOPTR, $4

// Q4KR loads the 16 bytes at a0…a3 into zu (chunks 0…3) and adds low
// nibbles × al into accl, high nibbles × ah into acch.
#define Q4KR(accl, acch, xu, zu, zh, a0, a1, a2, a3, al, ah) \
	VMOVDQU a0, xu; \
	VINSERTI32X4 $1, a1, zu, zu; \
	VINSERTI32X4 $2, a2, zu, zu; \
	VINSERTI32X4 $3, a3, zu, zu; \
	VPSRLW $4, zu, zh; \
	VPANDD Z31, zu, zu; \
	VPANDD Z31, zh, zh; \
	VPDPBUSD al, zu, accl; \
	VPDPBUSD ah, zh, acch

// Q4KHALF runs the half of pair bytes at offset o of every row.
#define Q4KHALF(o, al, ah) \
	Q4KR(Z1, Z5, X9, Z9, Z10, o(SI), o(R10), o(R11), o(R12), al, ah); \
	Q4KR(Z2, Z6, X11, Z11, Z12, o(SI)(BX*1), o(R10)(BX*1), o(R11)(BX*1), o(R12)(BX*1), al, ah); \
	Q4KR(Z3, Z7, X9, Z9, Z10, o(SI)(BX*2), o(R10)(BX*2), o(R11)(BX*2), o(R12)(BX*2), al, ah); \
	Q4KR(Z4, Z8, X11, Z11, Z12, o(SI)(R13*1), o(R10)(R13*1), o(R11)(R13*1), o(R12)(R13*1), al, ah)

// TADD4 sets out to the transpose-add of a0…a3: lane 4c+p = Σ of the
// four lanes of chunk c of ap. Clobbers Z13–Z15.
#define TADD4(a0, a1, a2, a3, out) \
	VPUNPCKLDQ a1, a0, Z13; \
	VPUNPCKHDQ a1, a0, Z14; \
	VPADDD Z14, Z13, Z13; \
	VPUNPCKLDQ a3, a2, Z14; \
	VPUNPCKHDQ a3, a2, Z15; \
	VPADDD Z15, Z14, Z14; \
	VPUNPCKLQDQ Z14, Z13, Z15; \
	VPUNPCKHQDQ Z14, Z13, out; \
	VPADDD Z15, out, out

// Q4KSUB adds sub-block s's sums (int32 in isum) times d·sc_s·d_x,s into
// Z0 and mn_s·(d_x,s·M8_s/8) into Z25. Clobbers Z20, Z21.
#define Q4KSUB(s, isum) \
	VPMOVZXBD 64+16*(s)(R14), Z20; \
	VCVTDQ2PS Z20, Z20; \
	VMULPS Z24, Z20, Z20; \
	VMULPS.BCST 4*(s)(DX), Z20, Z20; \
	VCVTDQ2PS isum, isum; \
	VFMADD231PS Z20, isum, Z0; \
	VPMOVZXBD 192+16*(s)(R14), Z21; \
	VCVTDQ2PS Z21, Z21; \
	VFMADD231PS.BCST 4*(s)(SP), Z21, Z25

// Q4KPAIR runs sub-blocks 2j and 2j+1, prefetching a quarter of the
// next group's super-block (9 lines; 36 per super-block: 16 × 144 bytes).
#define Q4KPAIR(j) \
	PREFETCHT1 (R9); \
	PREFETCHT1 64(R9); \
	PREFETCHT1 128(R9); \
	PREFETCHT1 192(R9); \
	PREFETCHT1 256(R9); \
	PREFETCHT1 320(R9); \
	PREFETCHT1 384(R9); \
	PREFETCHT1 448(R9); \
	PREFETCHT1 512(R9); \
	ADDQ $576, R9; \
	VBROADCASTI32X4 64*j(DI), Z26; \
	VBROADCASTI32X4 64*j+16(DI), Z27; \
	VBROADCASTI32X4 64*j+32(DI), Z28; \
	VBROADCASTI32X4 64*j+48(DI), Z29; \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z7, Z7, Z7; \
	VPXORD Z8, Z8, Z8; \
	Q4KHALF(16+32*j, Z26, Z28); \
	Q4KHALF(32+32*j, Z27, Z29); \
	TADD4(Z1, Z2, Z3, Z4, Z16); \
	TADD4(Z5, Z6, Z7, Z8, Z17); \
	Q4KSUB(2*j, Z16); \
	Q4KSUB(2*j+1, Z17)

// func dotQ4_KQ8VNNI16(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)
TEXT ·dotQ4_KQ8VNNI16(SB), NOSPLIT, $32-64
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), BX
	MOVQ sc+16(FP), R14
	MOVQ q+24(FP), DI
	MOVQ d+32(FP), DX
	MOVQ m+40(FP), R8
	MOVQ nb+48(FP), CX
	MOVQ out+56(FP), AX
	LEAQ (BX)(BX*2), R13
	LEAQ (SI)(BX*4), R10
	LEAQ (R10)(BX*4), R11
	LEAQ (R11)(BX*4), R12
	LEAQ (R12)(BX*4), R9 // the next group, prefetched as this one runs
	VPXORD Z0, Z0, Z0
	VPBROADCASTD i8rnib<>(SB), Z31
	VBROADCASTSS i8reighth<>(SB), Y22
	TESTQ CX, CX
	JZ   q4kr_done
q4kr_loop:
	VCVTDQ2PS (R8), Y13
	VMULPS (DX), Y13, Y13
	VMULPS Y22, Y13, Y13
	VMOVUPS Y13, 0(SP)   // d_x,s·M8_s/8 = −d_x,s·Σq_s
	VCVTPH2PS 0(R14), Z24
	VCVTPH2PS 32(R14), Z23
	VPXORD Z25, Z25, Z25
	Q4KPAIR(0)
	Q4KPAIR(1)
	Q4KPAIR(2)
	Q4KPAIR(3)
	VFMADD231PS Z23, Z25, Z0
	ADDQ $144, SI
	ADDQ $144, R10
	ADDQ $144, R11
	ADDQ $144, R12
	ADDQ $256, DI
	ADDQ $32, DX
	ADDQ $32, R8
	ADDQ $320, R14
	DECQ CX
	JNZ  q4kr_loop
q4kr_done:
	MOVQ out+56(FP), AX
	VMOVUPS Z0, (AX)
	VZEROUPPER
	RET

// Q4_0 on avx2, 8 rows at once: the Q4_0 scheme above on ymm registers.
// Accumulator p (Y0–Y3) takes in lane c (128 bits) the nibble bytes of
// row 4c+p; low nibbles times the activation's first 16 bytes (Y12, in
// both lanes), high nibbles times the last 16 (Y13), both VPMADDUBSW into
// int16 pairs (at most 2·15·127 each, 7620 for the two added), one
// VPMADDWD by ones to int32; three VPHADDD leave lane 4c+p = the exact
// Σ u·q of row 4c+p. Then −8·Σq, conversion, and one FMA with the 8 rows'
// scales (side table, groups of 8) times d_x.

// Q4ROWS2 sets acc to row pair (a0, a1)'s Σ u·q per dword lane (4 per
// 128-bit lane). Clobbers Y4, Y5.
#define Q4ROWS2(acc, a0, a1) \
	VMOVDQU a0, X4; \
	VINSERTI128 $1, a1, Y4, Y4; \
	VPSRLW $4, Y4, Y5; \
	VPAND Y14, Y4, Y4; \
	VPAND Y14, Y5, Y5; \
	VPMADDUBSW Y12, Y4, Y4; \
	VPMADDUBSW Y13, Y5, Y5; \
	VPADDW Y5, Y4, Y4; \
	VPMADDWD Y15, Y4, acc

// func dotQ4_0Q8AVX2x8(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)
TEXT ·dotQ4_0Q8AVX2x8(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), BX
	MOVQ sc+16(FP), R14
	MOVQ q+24(FP), DI
	MOVQ d+32(FP), DX
	MOVQ m+40(FP), R8
	MOVQ nb+48(FP), CX
	MOVQ out+56(FP), AX
	LEAQ (BX)(BX*2), R13 // 3·stride
	LEAQ (SI)(BX*4), R10 // row 4
	LEAQ (R10)(BX*4), R9 // the next group, prefetched as this one runs
	VXORPS Y11, Y11, Y11
	VPBROADCASTD i8rnib<>(SB), Y14
	VPBROADCASTD i8rones<>(SB), Y15
	TESTQ CX, CX
	JZ   q4a8_done
q4a8_loop:
	PREFETCHT1 (R9)
	PREFETCHT1 64(R9)
	PREFETCHT1 128(R9)
	ADDQ $144, R9
	VBROADCASTI128 (DI), Y12
	VBROADCASTI128 16(DI), Y13
	Q4ROWS2(Y0, 2(SI), 2(R10))
	Q4ROWS2(Y1, 2(SI)(BX*1), 2(R10)(BX*1))
	Q4ROWS2(Y2, 2(SI)(BX*2), 2(R10)(BX*2))
	Q4ROWS2(Y3, 2(SI)(R13*1), 2(R10)(R13*1))
	VPHADDD Y1, Y0, Y0
	VPHADDD Y3, Y2, Y2
	VPHADDD Y2, Y0, Y0 // lane 4c+p: Σ u·q of row 4c+p
	VPBROADCASTD (R8), Y1
	VPADDD Y1, Y0, Y0
	VCVTDQ2PS Y0, Y0
	VCVTPH2PS (R14), Y1
	VBROADCASTSS (DX), Y2
	VMULPS Y2, Y1, Y1
	VFMADD231PS Y1, Y0, Y11
	ADDQ $18, SI
	ADDQ $18, R10
	ADDQ $32, DI
	ADDQ $4, DX
	ADDQ $4, R8
	ADDQ $16, R14
	DECQ CX
	JNZ  q4a8_loop
q4a8_done:
	VMOVUPS Y11, (AX)
	VZEROUPPER
	RET

DATA i8rones<>+0(SB)/4, $0x00010001
GLOBL i8rones<>(SB), RODATA|NOPTR, $4

// Q4_K on avx2, 8 rows at once: the vnni Q4_K scheme on ymm registers,
// two rows per register (lane c: row 4c+p). VPMADDUBSW gives int16 pairs
// per half (≤ 3810), the two halves of a sub-block are added in int16
// (≤ 7620), then VPMADDWD by ones and three VPHADDD give lane = row.
// Registers: Y0 the sum, Y1 the min terms of the super-block, Y2–Y5 and
// Y6–Y9 the low- and high-nibble accumulators, Y10–Y11 the activation
// halves, Y12–Y13 nibbles, Y14 the nibble mask, Y15 int16 ones. Side
// table per super-block (groups of 8): 0 d[8], 16 dmin[8], 32 + 8s
// sc_s[8], 96 + 8s mn_s[8].

// Q4KR2A sets accl, acch to the int16 products of the nibbles of rows
// (a0, a1) with Y10 (low) and Y11 (high).
#define Q4KR2A(accl, acch, a0, a1) \
	VMOVDQU a0, X12; \
	VINSERTI128 $1, a1, Y12, Y12; \
	VPSRLW $4, Y12, Y13; \
	VPAND Y14, Y12, Y12; \
	VPAND Y14, Y13, Y13; \
	VPMADDUBSW Y10, Y12, accl; \
	VPMADDUBSW Y11, Y13, acch

// Q4KR2B adds them instead.
#define Q4KR2B(accl, acch, a0, a1) \
	VMOVDQU a0, X12; \
	VINSERTI128 $1, a1, Y12, Y12; \
	VPSRLW $4, Y12, Y13; \
	VPAND Y14, Y12, Y12; \
	VPAND Y14, Y13, Y13; \
	VPMADDUBSW Y10, Y12, Y12; \
	VPMADDUBSW Y11, Y13, Y13; \
	VPADDW Y12, accl, accl; \
	VPADDW Y13, acch, acch

#define Q4KHALF2A(o) \
	Q4KR2A(Y2, Y6, o(SI), o(R10)); \
	Q4KR2A(Y3, Y7, o(SI)(BX*1), o(R10)(BX*1)); \
	Q4KR2A(Y4, Y8, o(SI)(BX*2), o(R10)(BX*2)); \
	Q4KR2A(Y5, Y9, o(SI)(R13*1), o(R10)(R13*1))

#define Q4KHALF2B(o) \
	Q4KR2B(Y2, Y6, o(SI), o(R10)); \
	Q4KR2B(Y3, Y7, o(SI)(BX*1), o(R10)(BX*1)); \
	Q4KR2B(Y4, Y8, o(SI)(BX*2), o(R10)(BX*2)); \
	Q4KR2B(Y5, Y9, o(SI)(R13*1), o(R10)(R13*1))

// Q4KSUB2 adds sub-block s's sums (int32 in isum, lane = row) times
// d·sc_s·d_x,s into Y0 and mn_s·(d_x,s·M8_s/8) into Y1.
#define Q4KSUB2(s, isum) \
	VPMOVZXBD 32+8*(s)(R14), Y10; \
	VCVTDQ2PS Y10, Y10; \
	VCVTPH2PS (R14), Y11; \
	VMULPS Y11, Y10, Y10; \
	VBROADCASTSS 4*(s)(DX), Y11; \
	VMULPS Y11, Y10, Y10; \
	VCVTDQ2PS isum, isum; \
	VFMADD231PS Y10, isum, Y0; \
	VPMOVZXBD 96+8*(s)(R14), Y10; \
	VCVTDQ2PS Y10, Y10; \
	VBROADCASTSS 4*(s)(SP), Y11; \
	VFMADD231PS Y11, Y10, Y1

// Q4KPAIR2 runs sub-blocks 2j and 2j+1, prefetching a quarter of the
// next group's super-block (8 × 144 bytes: 4.5 lines, 5 fetched).
#define Q4KPAIR2(j) \
	PREFETCHT1 (R9); \
	PREFETCHT1 64(R9); \
	PREFETCHT1 128(R9); \
	PREFETCHT1 192(R9); \
	PREFETCHT1 256(R9); \
	ADDQ $288, R9; \
	VBROADCASTI128 64*j(DI), Y10; \
	VBROADCASTI128 64*j+32(DI), Y11; \
	Q4KHALF2A(16+32*j); \
	VBROADCASTI128 64*j+16(DI), Y10; \
	VBROADCASTI128 64*j+48(DI), Y11; \
	Q4KHALF2B(32+32*j); \
	VPMADDWD Y15, Y2, Y2; \
	VPMADDWD Y15, Y3, Y3; \
	VPMADDWD Y15, Y4, Y4; \
	VPMADDWD Y15, Y5, Y5; \
	VPMADDWD Y15, Y6, Y6; \
	VPMADDWD Y15, Y7, Y7; \
	VPMADDWD Y15, Y8, Y8; \
	VPMADDWD Y15, Y9, Y9; \
	VPHADDD Y3, Y2, Y2; \
	VPHADDD Y5, Y4, Y4; \
	VPHADDD Y4, Y2, Y2; \
	VPHADDD Y7, Y6, Y6; \
	VPHADDD Y9, Y8, Y8; \
	VPHADDD Y8, Y6, Y6; \
	Q4KSUB2(2*j, Y2); \
	Q4KSUB2(2*j+1, Y6)

// func dotQ4_KQ8AVX2x8(w *byte, stride int, sc *byte, q *int8, d *float32, m *int32, nb int, out *float32)
TEXT ·dotQ4_KQ8AVX2x8(SB), NOSPLIT, $32-64
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), BX
	MOVQ sc+16(FP), R14
	MOVQ q+24(FP), DI
	MOVQ d+32(FP), DX
	MOVQ m+40(FP), R8
	MOVQ nb+48(FP), CX
	LEAQ (BX)(BX*2), R13
	LEAQ (SI)(BX*4), R10
	LEAQ (R10)(BX*4), R9 // the next group, prefetched as this one runs
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VPBROADCASTD i8rnib<>(SB), Y14
	VPBROADCASTD i8rones<>(SB), Y15
	TESTQ CX, CX
	JZ   q4ka8_done
q4ka8_loop:
	VCVTDQ2PS (R8), Y10
	VMULPS (DX), Y10, Y10
	VBROADCASTSS i8reighth<>(SB), Y11
	VMULPS Y11, Y10, Y10
	VMOVUPS Y10, 0(SP) // d_x,s·M8_s/8 = −d_x,s·Σq_s
	Q4KPAIR2(0)
	Q4KPAIR2(1)
	Q4KPAIR2(2)
	Q4KPAIR2(3)
	VCVTPH2PS 16(R14), Y10
	VFMADD231PS Y10, Y1, Y0
	VXORPS Y1, Y1, Y1
	ADDQ $144, SI
	ADDQ $144, R10
	ADDQ $256, DI
	ADDQ $32, DX
	ADDQ $32, R8
	ADDQ $160, R14
	DECQ CX
	JNZ  q4ka8_loop
q4ka8_done:
	MOVQ out+56(FP), AX
	VMOVUPS Y0, (AX)
	VZEROUPPER
	RET
