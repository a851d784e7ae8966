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
	VPXORD Z0, Z0, Z0
	VPBROADCASTD i8rnib<>(SB), Z31
	TESTQ CX, CX
	JZ   q4r_done
q4r_loop:
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
