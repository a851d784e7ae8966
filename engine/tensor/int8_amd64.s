// Hand-written: integer dot products of stored Q8_0/Q4_0 rows with an
// activation vector quantized to int8 blocks (quant.Q8Act), for
// generation (see int8.go and SIMD.md). One block of 32 values is one ymm
// register. Per block the exact int32 sum Σ w·q is built in 8 lanes,
// converted to float32 and added into the accumulator times d_w·d_x (d_w
// the block's f16 scale, d_x the activation's). Two blocks per iteration
// into two accumulators.
//
// avx2: VPMADDUBSW multiplies unsigned bytes by signed ones. Q8_0 weights
// are signed, so the sign trick: |w| times q with w's sign applied
// (VPABSB, VPSIGNB; |w| ≤ 128 and |q| ≤ 127 keep the int16 pair sums
// below 32767), then VPMADDWD by ones. Q4_0's nibbles u are unsigned
// already: Σ u·q, then Σ (u−8)·q = Σ u·q − 8·Σq with −8·Σq precomputed
// per block (Q8Act.M8) added into lane 0.
//
// vnni: VPDPBUSD (AVX512-VNNI, EVEX ymm) sums four u8·s8 products into
// each int32 lane. Q8_0 weights become unsigned by w+128 (XOR 0x80),
// with −128·Σq (Q8Act.M128) as the lane-0 start; Q4_0 as above.

#include "textflag.h"

// Shared constants: int16 ones, nibble mask, 0x80 bytes.
DATA int8ones<>+0(SB)/4, $0x00010001
GLOBL int8ones<>(SB), RODATA|NOPTR, $4
DATA int8nib<>+0(SB)/4, $0x0f0f0f0f
GLOBL int8nib<>(SB), RODATA|NOPTR, $4
DATA int8sgn<>+0(SB)/4, $0x80808080
GLOBL int8sgn<>(SB), RODATA|NOPTR, $4

// SCALE adds Y4 (8 int32 sums, converted here) times d_w (f16 at
// woff(SI)) · d_x (float32 at doff(DX)) into acc. Clobbers Y5, Y6.
#define SCALE(woff, doff, acc) \
	VCVTDQ2PS Y4, Y4; \
	VPBROADCASTW woff(SI), X5; \
	VCVTPH2PS X5, Y5; \
	VBROADCASTSS doff(DX), Y6; \
	VMULPS Y6, Y5, Y5; \
	VFMADD231PS Y5, Y4, acc

// Q8AVX2 is one Q8_0 block at woff(SI) against q at qoff(DI).
#define Q8AVX2(woff, qoff, doff, acc) \
	VMOVDQU qoff(DI), Y2; \
	VPABSB 2+woff(SI), Y3; \
	VPSIGNB 2+woff(SI), Y2, Y2; \
	VPMADDUBSW Y2, Y3, Y4; \
	VPMADDWD Y15, Y4, Y4; \
	SCALE(woff, doff, acc)

// NIBBLES unpacks the Q4_0 block at woff(SI) into Y2: 32 bytes 0–15,
// low nibbles first. Clobbers X3.
#define NIBBLES(woff) \
	VMOVDQU 2+woff(SI), X2; \
	VPSRLW $4, X2, X3; \
	VINSERTI128 $1, X3, Y2, Y2; \
	VPAND Y14, Y2, Y2

// Q4AVX2 is one Q4_0 block at woff(SI); moff(R8) holds −8·Σq.
#define Q4AVX2(woff, qoff, doff, moff, acc) \
	NIBBLES(woff); \
	VPMADDUBSW qoff(DI), Y2, Y4; \
	VPMADDWD Y15, Y4, Y4; \
	VMOVD moff(R8), X7; \
	VPADDD Y7, Y4, Y4; \
	SCALE(woff, doff, acc)

// Q8VNNI is one Q8_0 block; moff(R8) holds −128·Σq.
#define Q8VNNI(woff, qoff, doff, moff, acc) \
	VPXOR 2+woff(SI), Y13, Y2; \
	VMOVD moff(R8), X4; \
	VPDPBUSD qoff(DI), Y2, Y4; \
	SCALE(woff, doff, acc)

// Q4VNNI is one Q4_0 block; moff(R8) holds −8·Σq.
#define Q4VNNI(woff, qoff, doff, moff, acc) \
	NIBBLES(woff); \
	VMOVD moff(R8), X4; \
	VPDPBUSD qoff(DI), Y2, Y4; \
	SCALE(woff, doff, acc)

// LOAD reads the arguments and sets up constants and accumulators.
#define LOAD \
	MOVQ w+0(FP), SI; \
	MOVQ q+8(FP), DI; \
	MOVQ d+16(FP), DX; \
	MOVQ m+24(FP), R8; \
	MOVQ nb+32(FP), CX; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VPBROADCASTD int8ones<>(SB), Y15; \
	VPBROADCASTD int8nib<>(SB), Y14; \
	VPBROADCASTD int8sgn<>(SB), Y13

// DONE adds the accumulators and returns their sum.
#define DONE \
	VADDPS Y1, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS X1, X0, X0; \
	VMOVHLPS X0, X0, X1; \
	VADDPS X1, X0, X0; \
	VMOVSHDUP X0, X1; \
	VADDSS X1, X0, X0; \
	VZEROUPPER; \
	MOVSS X0, ret+40(FP); \
	RET

// func dotQ8_0Q8AVX2(w *byte, q *int8, d *float32, m *int32, nb int) float32
TEXT ·dotQ8_0Q8AVX2(SB), NOSPLIT, $0-44
	LOAD
	CMPQ CX, $2
	JLT  q8a_one
q8a_two:
	Q8AVX2(0, 0, 0, Y0)
	Q8AVX2(34, 32, 4, Y1)
	ADDQ $68, SI
	ADDQ $64, DI
	ADDQ $8, DX
	SUBQ $2, CX
	CMPQ CX, $2
	JGE  q8a_two
q8a_one:
	TESTQ CX, CX
	JZ   q8a_done
	Q8AVX2(0, 0, 0, Y0)
q8a_done:
	DONE

// func dotQ4_0Q8AVX2(w *byte, q *int8, d *float32, m *int32, nb int) float32
TEXT ·dotQ4_0Q8AVX2(SB), NOSPLIT, $0-44
	LOAD
	CMPQ CX, $2
	JLT  q4a_one
q4a_two:
	Q4AVX2(0, 0, 0, 0, Y0)
	Q4AVX2(18, 32, 4, 4, Y1)
	ADDQ $36, SI
	ADDQ $64, DI
	ADDQ $8, DX
	ADDQ $8, R8
	SUBQ $2, CX
	CMPQ CX, $2
	JGE  q4a_two
q4a_one:
	TESTQ CX, CX
	JZ   q4a_done
	Q4AVX2(0, 0, 0, 0, Y0)
q4a_done:
	DONE

// func dotQ8_0Q8VNNI(w *byte, q *int8, d *float32, m *int32, nb int) float32
TEXT ·dotQ8_0Q8VNNI(SB), NOSPLIT, $0-44
	LOAD
	CMPQ CX, $2
	JLT  q8v_one
q8v_two:
	Q8VNNI(0, 0, 0, 0, Y0)
	Q8VNNI(34, 32, 4, 4, Y1)
	ADDQ $68, SI
	ADDQ $64, DI
	ADDQ $8, DX
	ADDQ $8, R8
	SUBQ $2, CX
	CMPQ CX, $2
	JGE  q8v_two
q8v_one:
	TESTQ CX, CX
	JZ   q8v_done
	Q8VNNI(0, 0, 0, 0, Y0)
q8v_done:
	DONE

// func dotQ4_0Q8VNNI(w *byte, q *int8, d *float32, m *int32, nb int) float32
TEXT ·dotQ4_0Q8VNNI(SB), NOSPLIT, $0-44
	LOAD
	CMPQ CX, $2
	JLT  q4v_one
q4v_two:
	Q4VNNI(0, 0, 0, 0, Y0)
	Q4VNNI(18, 32, 4, 4, Y1)
	ADDQ $36, SI
	ADDQ $64, DI
	ADDQ $8, DX
	ADDQ $8, R8
	SUBQ $2, CX
	CMPQ CX, $2
	JGE  q4v_two
q4v_one:
	TESTQ CX, CX
	JZ   q4v_done
	Q4VNNI(0, 0, 0, 0, Y0)
q4v_done:
	DONE

DATA int8abs<>+0(SB)/4, $0x7fffffff
GLOBL int8abs<>(SB), RODATA|NOPTR, $4
DATA int8c127<>+0(SB)/4, $0x42fe0000 // 127.0
GLOBL int8c127<>(SB), RODATA|NOPTR, $4
DATA int8one<>+0(SB)/4, $0x3f800000 // 1.0
GLOBL int8one<>(SB), RODATA|NOPTR, $4
// Dword order that undoes the lane interleaving of VPACKSSDW+VPACKSSWB.
DATA int8perm<>+0(SB)/4, $0
DATA int8perm<>+4(SB)/4, $4
DATA int8perm<>+8(SB)/4, $1
DATA int8perm<>+12(SB)/4, $5
DATA int8perm<>+16(SB)/4, $2
DATA int8perm<>+20(SB)/4, $6
DATA int8perm<>+24(SB)/4, $3
DATA int8perm<>+28(SB)/4, $7
GLOBL int8perm<>(SB), RODATA|NOPTR, $32

// func quantActAVX2(x *float32, q *int8, d *float32, m128 *int32, m8 *int32, nb int)
//
// quant.QuantizeAct over nb blocks, the same bytes: per block amax =
// max|x|, d = amax/127, id = 1/d (0 when d = 0), q = x·id rounded to
// nearest even (VCVTPS2DQ), M128 = −128·Σq, M8 = −8·Σq.
TEXT ·quantActAVX2(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ d+16(FP), DX
	MOVQ m128+24(FP), R8
	MOVQ m8+32(FP), R9
	MOVQ nb+40(FP), CX
	VBROADCASTSS int8abs<>(SB), Y15
	VMOVSS int8c127<>(SB), X14
	VMOVSS int8one<>(SB), X13
	VMOVDQU int8perm<>(SB), Y12
	VXORPS X11, X11, X11
	TESTQ CX, CX
	JZ   qa_done
qa_block:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VANDPS Y15, Y0, Y4
	VANDPS Y15, Y1, Y5
	VANDPS Y15, Y2, Y6
	VANDPS Y15, Y3, Y7
	VMAXPS Y5, Y4, Y4
	VMAXPS Y7, Y6, Y6
	VMAXPS Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS X5, X4, X4
	VMOVHLPS X4, X4, X5
	VMAXPS X5, X4, X4
	VMOVSHDUP X4, X5
	VMAXSS X5, X4, X4      // amax
	VDIVSS X14, X4, X5     // d = amax/127
	VMOVSS X5, (DX)
	VDIVSS X5, X13, X6     // 1/d
	VCMPSS $4, X11, X5, X7 // d ≠ 0
	VANDPS X7, X6, X6      // id
	VBROADCASTSS X6, Y6
	VMULPS Y6, Y0, Y0
	VMULPS Y6, Y1, Y1
	VMULPS Y6, Y2, Y2
	VMULPS Y6, Y3, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPADDD Y1, Y0, Y7
	VPADDD Y3, Y2, Y8
	VPADDD Y8, Y7, Y7
	VEXTRACTI128 $1, Y7, X8
	VPADDD X8, X7, X7
	VPSHUFD $0x4e, X7, X8
	VPADDD X8, X7, X7
	VPSHUFD $0xb1, X7, X8
	VPADDD X8, X7, X7
	VMOVD X7, AX           // Σq
	MOVL AX, BX
	SHLL $7, BX
	NEGL BX
	MOVL BX, (R8)
	SHLL $3, AX
	NEGL AX
	MOVL AX, (R9)
	VPACKSSDW Y1, Y0, Y0
	VPACKSSDW Y3, Y2, Y2
	VPACKSSWB Y2, Y0, Y0
	VPERMD Y0, Y12, Y0
	VMOVDQU Y0, (DI)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, DX
	ADDQ $4, R8
	ADDQ $4, R9
	DECQ CX
	JNZ  qa_block
qa_done:
	VZEROUPPER
	RET

DATA int8eighth<>+0(SB)/4, $0x3e000000 // 0.125
GLOBL int8eighth<>(SB), RODATA|NOPTR, $4

// Q4_K super-blocks (256 values, 144 bytes: f16 d, f16 dmin, 12 bytes of
// 6-bit scales and mins, 128 bytes of nibbles) against 8 activation blocks.
// Value i of sub-block s is d·sc_s·u − dmin·mn_s, so
// Σ w·x = Σ_s d_x,s·(d·sc_s·Σ u·q − dmin·mn_s·Σq). Per super-block the
// scales are unpacked as llama.cpp does (three 32-bit words), the eight
// d·sc_s·d_x,s go to the stack for broadcasting and the min terms are
// one vector FMA with Q8Act.M8 (= −8·Σq, hence the 1/8). Per 32 bytes
// of nibbles: low nibbles are sub-block 2j, high 2j+1, each one
// multiply (VPMADDUBSW+VPMADDWD or VPDPBUSD), one conversion and one FMA.

// Q4KHEAD unpacks the super-block at SI: Y0 += nothing; sets 0(SP)..31(SP)
// to d·sc·d_x and adds dmin·mn·d_x·M8/8 into Y1. Clobbers AX, BX, R9–R12,
// Y2–Y7.
#define Q4KHEAD \
	MOVL 4(SI), AX; \
	MOVL 8(SI), BX; \
	MOVL 12(SI), R9; \
	MOVL R9, R10; \
	SHRL $4, R10; \
	ANDL $0x0f0f0f0f, R10; \
	MOVL BX, R11; \
	SHRL $6, R11; \
	ANDL $0x03030303, R11; \
	SHLL $4, R11; \
	ORL  R11, R10; \
	MOVL BX, R11; \
	ANDL $0x3f3f3f3f, R11; \
	ANDL $0x0f0f0f0f, R9; \
	MOVL AX, R12; \
	SHRL $6, R12; \
	ANDL $0x03030303, R12; \
	SHLL $4, R12; \
	ORL  R12, R9; \
	ANDL $0x3f3f3f3f, AX; \
	VMOVD AX, X2; \
	VPINSRD $1, R9, X2, X2; \
	VPMOVZXBD X2, Y2; \
	VCVTDQ2PS Y2, Y2; \
	VMOVD R11, X3; \
	VPINSRD $1, R10, X3, X3; \
	VPMOVZXBD X3, Y3; \
	VCVTDQ2PS Y3, Y3; \
	VPBROADCASTW (SI), X4; \
	VCVTPH2PS X4, Y4; \
	VPBROADCASTW 2(SI), X5; \
	VCVTPH2PS X5, Y5; \
	VMOVUPS (DX), Y6; \
	VMULPS Y4, Y2, Y2; \
	VMULPS Y6, Y2, Y2; \
	VMOVUPS Y2, 0(SP); \
	VMULPS Y5, Y3, Y3; \
	VMULPS Y6, Y3, Y3; \
	VMULPS Y13, Y3, Y3; \
	VCVTDQ2PS (R8), Y7; \
	VFMADD231PS Y7, Y3, Y1

// Q4KPAIRAVX2 is nibble bytes j (sub-blocks 2j, 2j+1) with VPMADDUBSW.
#define Q4KPAIRAVX2(j) \
	VMOVDQU 16+32*j(SI), Y8; \
	VPAND Y14, Y8, Y9; \
	VPSRLW $4, Y8, Y8; \
	VPAND Y14, Y8, Y8; \
	VPMADDUBSW 64*j(DI), Y9, Y9; \
	VPMADDWD Y15, Y9, Y9; \
	VCVTDQ2PS Y9, Y9; \
	VBROADCASTSS 8*j(SP), Y10; \
	VFMADD231PS Y10, Y9, Y0; \
	VPMADDUBSW 64*j+32(DI), Y8, Y8; \
	VPMADDWD Y15, Y8, Y8; \
	VCVTDQ2PS Y8, Y8; \
	VBROADCASTSS 8*j+4(SP), Y11; \
	VFMADD231PS Y11, Y8, Y12

// Q4KPAIRVNNI is Q4KPAIRAVX2 with VPDPBUSD.
#define Q4KPAIRVNNI(j) \
	VMOVDQU 16+32*j(SI), Y8; \
	VPAND Y14, Y8, Y9; \
	VPSRLW $4, Y8, Y8; \
	VPAND Y14, Y8, Y8; \
	VPXOR Y10, Y10, Y10; \
	VPDPBUSD 64*j(DI), Y9, Y10; \
	VCVTDQ2PS Y10, Y10; \
	VBROADCASTSS 8*j(SP), Y9; \
	VFMADD231PS Y9, Y10, Y0; \
	VPXOR Y11, Y11, Y11; \
	VPDPBUSD 64*j+32(DI), Y8, Y11; \
	VCVTDQ2PS Y11, Y11; \
	VBROADCASTSS 8*j+4(SP), Y8; \
	VFMADD231PS Y8, Y11, Y12

#define Q4KLOAD \
	MOVQ w+0(FP), SI; \
	MOVQ q+8(FP), DI; \
	MOVQ d+16(FP), DX; \
	MOVQ m+24(FP), R8; \
	MOVQ nb+32(FP), CX; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y12, Y12, Y12; \
	VPBROADCASTD int8ones<>(SB), Y15; \
	VPBROADCASTD int8nib<>(SB), Y14; \
	VBROADCASTSS int8eighth<>(SB), Y13

#define Q4KNEXT \
	ADDQ $144, SI; \
	ADDQ $256, DI; \
	ADDQ $32, DX; \
	ADDQ $32, R8; \
	DECQ CX

// func dotQ4_KQ8AVX2(w *byte, q *int8, d *float32, m *int32, nb int) float32
TEXT ·dotQ4_KQ8AVX2(SB), NOSPLIT, $32-44
	Q4KLOAD
	TESTQ CX, CX
	JZ   q4ka_done
q4ka_loop:
	Q4KHEAD
	Q4KPAIRAVX2(0)
	Q4KPAIRAVX2(1)
	Q4KPAIRAVX2(2)
	Q4KPAIRAVX2(3)
	Q4KNEXT
	JNZ  q4ka_loop
q4ka_done:
	VADDPS Y12, Y0, Y0
	DONE

// func dotQ4_KQ8VNNI(w *byte, q *int8, d *float32, m *int32, nb int) float32
TEXT ·dotQ4_KQ8VNNI(SB), NOSPLIT, $32-44
	Q4KLOAD
	TESTQ CX, CX
	JZ   q4kv_done
q4kv_loop:
	Q4KHEAD
	Q4KPAIRVNNI(0)
	Q4KPAIRVNNI(1)
	Q4KPAIRVNNI(2)
	Q4KPAIRVNNI(3)
	Q4KNEXT
	JNZ  q4kv_loop
q4kv_done:
	VADDPS Y12, Y0, Y0
	DONE

// Q6_K super-blocks (256 values, 210 bytes: ql[128], qh[64], 16 int8
// scales, f16 d) against 8 activation blocks. Half n (128 values) takes
// 64 bytes of ql and 32 of qh; its quarter g (values 32g…32g+31 of the
// half, activation block k = 4n+g) has 6-bit levels u from the low (g = 0,
// 1) or high (g = 2, 3) nibbles of ql[0:32] (g even) or ql[32:64] (g odd)
// and bits 2g, 2g+1 of qh, and scales sc[2k] (first 16 values), sc[2k+1].
// w = u−32 is signed, so the sign trick as for Q8_0 (|w| ≤ 32), then per
// block the 8 int32 lanes (4 per 16 values) convert and are multiplied by
// [d·sc[2k]·d_x ×4, d·sc[2k+1]·d_x ×4] (VPERMPS from the 8 scales of the
// half). VPMADDUBSW on every set: VPDPBUSD would save one instruction of
// fourteen.

DATA int8b03<>+0(SB)/4, $0x03030303
GLOBL int8b03<>(SB), RODATA|NOPTR, $4
DATA int8b0c<>+0(SB)/4, $0x0c0c0c0c
GLOBL int8b0c<>(SB), RODATA|NOPTR, $4
DATA int8b30<>+0(SB)/4, $0x30303030
GLOBL int8b30<>(SB), RODATA|NOPTR, $4
DATA int8bc0<>+0(SB)/4, $0xc0c0c0c0
GLOBL int8bc0<>(SB), RODATA|NOPTR, $4
DATA int8b20<>+0(SB)/4, $0x20202020
GLOBL int8b20<>(SB), RODATA|NOPTR, $4
// VPERMPS indices: quarter g takes scales 2g (lanes 0–3) and 2g+1 (4–7).
DATA int8q6idx<>+0(SB)/8, $0x0000000000000000
DATA int8q6idx<>+8(SB)/8, $0x0000000000000000
DATA int8q6idx<>+16(SB)/8, $0x0000000100000001
DATA int8q6idx<>+24(SB)/8, $0x0000000100000001
DATA int8q6idx<>+32(SB)/8, $0x0000000200000002
DATA int8q6idx<>+40(SB)/8, $0x0000000200000002
DATA int8q6idx<>+48(SB)/8, $0x0000000300000003
DATA int8q6idx<>+56(SB)/8, $0x0000000300000003
DATA int8q6idx<>+64(SB)/8, $0x0000000400000004
DATA int8q6idx<>+72(SB)/8, $0x0000000400000004
DATA int8q6idx<>+80(SB)/8, $0x0000000500000005
DATA int8q6idx<>+88(SB)/8, $0x0000000500000005
DATA int8q6idx<>+96(SB)/8, $0x0000000600000006
DATA int8q6idx<>+104(SB)/8, $0x0000000600000006
DATA int8q6idx<>+112(SB)/8, $0x0000000700000007
DATA int8q6idx<>+120(SB)/8, $0x0000000700000007
GLOBL int8q6idx<>(SB), RODATA|NOPTR, $128

// Q6KDOT adds block k (levels u in Y8; scales of the half in sc) into acc.
// Clobbers Y8–Y11.
#define Q6KDOT(k, g, sc, acc) \
	VPSUBB Y13, Y8, Y8; \
	VMOVDQU 32*(k)(DI), Y9; \
	VPSIGNB Y8, Y9, Y9; \
	VPABSB Y8, Y8; \
	VPMADDUBSW Y9, Y8, Y8; \
	VPMADDWD Y15, Y8, Y8; \
	VCVTDQ2PS Y8, Y8; \
	VMOVDQU int8q6idx<>+32*(g)(SB), Y11; \
	VPERMPS sc, Y11, Y10; \
	VBROADCASTSS 4*(k)(DX), Y11; \
	VMULPS Y11, Y10, Y10; \
	VFMADD231PS Y10, Y8, acc

// Q6KHALF runs half n: ql at 64n(SI), qh at 128+32n(SI).
#define Q6KHALF(n, sc) \
	VMOVDQU 64*n(SI), Y5; \
	VMOVDQU 64*n+32(SI), Y6; \
	VMOVDQU 128+32*n(SI), Y7; \
	VPAND Y14, Y5, Y8; \
	VPAND Y12, Y7, Y9; \
	VPSLLW $4, Y9, Y9; \
	VPOR Y9, Y8, Y8; \
	Q6KDOT(4*n, 0, sc, Y0); \
	VPAND Y14, Y6, Y8; \
	VPBROADCASTD int8b0c<>(SB), Y9; \
	VPAND Y9, Y7, Y9; \
	VPSLLW $2, Y9, Y9; \
	VPOR Y9, Y8, Y8; \
	Q6KDOT(4*n+1, 1, sc, Y1); \
	VPSRLW $4, Y5, Y8; \
	VPAND Y14, Y8, Y8; \
	VPBROADCASTD int8b30<>(SB), Y9; \
	VPAND Y9, Y7, Y9; \
	VPOR Y9, Y8, Y8; \
	Q6KDOT(4*n+2, 2, sc, Y0); \
	VPSRLW $4, Y6, Y8; \
	VPAND Y14, Y8, Y8; \
	VPBROADCASTD int8bc0<>(SB), Y9; \
	VPAND Y9, Y7, Y9; \
	VPSRLW $2, Y9, Y9; \
	VPOR Y9, Y8, Y8; \
	Q6KDOT(4*n+3, 3, sc, Y1)

// func dotQ6_KQ8AVX2(w *byte, q *int8, d *float32, m *int32, nb int) float32
TEXT ·dotQ6_KQ8AVX2(SB), NOSPLIT, $0-44
	MOVQ w+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ d+16(FP), DX
	MOVQ nb+32(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VPBROADCASTD int8ones<>(SB), Y15
	VPBROADCASTD int8nib<>(SB), Y14
	VPBROADCASTD int8b20<>(SB), Y13
	VPBROADCASTD int8b03<>(SB), Y12
	TESTQ CX, CX
	JZ   q6k_done
q6k_loop:
	VPBROADCASTW 208(SI), X4
	VCVTPH2PS X4, Y4
	VPMOVSXBD 192(SI), Y2
	VCVTDQ2PS Y2, Y2
	VMULPS Y4, Y2, Y2
	VPMOVSXBD 200(SI), Y3
	VCVTDQ2PS Y3, Y3
	VMULPS Y4, Y3, Y3
	Q6KHALF(0, Y2)
	Q6KHALF(1, Y3)
	ADDQ $210, SI
	ADDQ $256, DI
	ADDQ $32, DX
	DECQ CX
	JNZ  q6k_loop
q6k_done:
	DONE
