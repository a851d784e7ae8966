// Hand-written: the AVX512-BF16 bfloat16 matrix kernel (amx.go's
// bf16Kernels.gemm32 without tiles, for CPUs with AVX512-BF16 and no AMX:
// AMD Zen 4 and later, Intel Cooper Lake).
//
// Go's assembler has no VDPBF16PS, so it is emitted as bytes by the macro
// below (register form only). Its encoding was checked against GNU as
// (objdump -d of a test binary shows the intended registers).

#include "textflag.h"

// VDPBF16PS zmm(s2), zmm(s1), zmm(d) in Go operand order; Intel:
// VDPBF16PS zmm_d, zmm_s1, zmm_s2 = EVEX.512.F3.0F38.W0 52 /r:
// d.fp32[i] += s1.bf16[2i+1]·s2.bf16[2i+1] + s1.bf16[2i]·s2.bf16[2i].
// P0 = R X B R' 0 0 1 0 (inverted extension bits of d and s2), P1 = W=0,
// ~vvvv (s1), 1, pp=10 (F3), P2 = z=0 L'L=10 b=0 ~V' aaa=0.
#define VDPBF16PS_Z(d, s1, s2) BYTE $0x62; BYTE $(((1-(((d)>>3)&1))<<7)|((1-(((s2)>>4)&1))<<6)|((1-(((s2)>>3)&1))<<5)|((1-(((d)>>4)&1))<<4)|2); BYTE $(((15-((s1)&15))<<3)|6); BYTE $(0x40|((1-(((s1)>>4)&1))<<3)); BYTE $0x52; BYTE $(0xC0|(((d)&7)<<3)|((s2)&7))

// func dpbf16Gemm32(a *uint16, lda int, b *uint32, ldb int, c *float32, ldc int, ksteps int, groups int, acc int)
//
// The contract of amxGemm32 (strides in bytes): for g < groups, C_g (+)=
// A_g·B with A_g 32 rows of 32·ksteps bfloat16 at a + 32·g·lda, B 16·ksteps
// pair rows of 32 dwords (ldb apart) and C_g 32×32 float32 at c + 32·g·ldc.
// Four 8×32 blocks per group: 16 zmm accumulators (Z0–Z15, row i in Z2i
// and Z2i+1), B's pair row in Z16/Z17, each row's pair broadcast into
// Z18–Z25; per pair row 2 loads, 8 broadcasts and 16 VDPBF16PS.
TEXT ·dpbf16Gemm32(SB), NOSPLIT, $0-72
	MOVQ a+0(FP), R8
	MOVQ lda+8(FP), R9
	MOVQ ldb+24(FP), R11
	MOVQ c+32(FP), R12
	MOVQ ldc+40(FP), R10
	MOVQ ksteps+48(FP), R14
	MOVQ groups+56(FP), R15
	TESTQ R14, R14
	JZ   done
	TESTQ R15, R15
	JZ   done
	SHLQ $4, R14          // pair rows = 16·ksteps
	LEAQ (R9)(R9*2), R13  // 3·lda
	LEAQ (R10)(R10*2), DX // 3·ldc
	SHLQ $2, R15          // 8-row blocks = 4·groups

block:
	MOVQ acc+64(FP), AX
	TESTQ AX, AX
	JZ   zero
	LEAQ (R12)(R10*4), BX // rows 4–7 of C
	VMOVUPS (R12), Z0
	VMOVUPS 64(R12), Z1
	VMOVUPS (R12)(R10*1), Z2
	VMOVUPS 64(R12)(R10*1), Z3
	VMOVUPS (R12)(R10*2), Z4
	VMOVUPS 64(R12)(R10*2), Z5
	VMOVUPS (R12)(DX*1), Z6
	VMOVUPS 64(R12)(DX*1), Z7
	VMOVUPS (BX), Z8
	VMOVUPS 64(BX), Z9
	VMOVUPS (BX)(R10*1), Z10
	VMOVUPS 64(BX)(R10*1), Z11
	VMOVUPS (BX)(R10*2), Z12
	VMOVUPS 64(BX)(R10*2), Z13
	VMOVUPS (BX)(DX*1), Z14
	VMOVUPS 64(BX)(DX*1), Z15
	JMP  kinit

zero:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

kinit:
	MOVQ b+16(FP), CX     // B's pair rows, from the first
	MOVQ R8, SI           // A's rows 0–3
	LEAQ (R8)(R9*4), DI   // A's rows 4–7
	MOVQ R14, AX

kloop:
	VMOVUPS (CX), Z16
	VMOVUPS 64(CX), Z17
	VPBROADCASTD (SI), Z18
	VPBROADCASTD (SI)(R9*1), Z19
	VPBROADCASTD (SI)(R9*2), Z20
	VPBROADCASTD (SI)(R13*1), Z21
	VPBROADCASTD (DI), Z22
	VPBROADCASTD (DI)(R9*1), Z23
	VPBROADCASTD (DI)(R9*2), Z24
	VPBROADCASTD (DI)(R13*1), Z25
	VDPBF16PS_Z(0, 18, 16)
	VDPBF16PS_Z(1, 18, 17)
	VDPBF16PS_Z(2, 19, 16)
	VDPBF16PS_Z(3, 19, 17)
	VDPBF16PS_Z(4, 20, 16)
	VDPBF16PS_Z(5, 20, 17)
	VDPBF16PS_Z(6, 21, 16)
	VDPBF16PS_Z(7, 21, 17)
	VDPBF16PS_Z(8, 22, 16)
	VDPBF16PS_Z(9, 22, 17)
	VDPBF16PS_Z(10, 23, 16)
	VDPBF16PS_Z(11, 23, 17)
	VDPBF16PS_Z(12, 24, 16)
	VDPBF16PS_Z(13, 24, 17)
	VDPBF16PS_Z(14, 25, 16)
	VDPBF16PS_Z(15, 25, 17)
	ADDQ R11, CX
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ AX
	JNZ  kloop

	LEAQ (R12)(R10*4), BX
	VMOVUPS Z0, (R12)
	VMOVUPS Z1, 64(R12)
	VMOVUPS Z2, (R12)(R10*1)
	VMOVUPS Z3, 64(R12)(R10*1)
	VMOVUPS Z4, (R12)(R10*2)
	VMOVUPS Z5, 64(R12)(R10*2)
	VMOVUPS Z6, (R12)(DX*1)
	VMOVUPS Z7, 64(R12)(DX*1)
	VMOVUPS Z8, (BX)
	VMOVUPS Z9, 64(BX)
	VMOVUPS Z10, (BX)(R10*1)
	VMOVUPS Z11, 64(BX)(R10*1)
	VMOVUPS Z12, (BX)(R10*2)
	VMOVUPS Z13, 64(BX)(R10*2)
	VMOVUPS Z14, (BX)(DX*1)
	VMOVUPS Z15, 64(BX)(DX*1)
	LEAQ (R8)(R9*8), R8   // next 8 rows of A
	LEAQ (R12)(R10*8), R12 // and of C
	DECQ R15
	JNZ  block

done:
	VZEROUPPER
	RET

// func peakFMA(n int)
//
// n iterations of 16 independent VFMADD231PS zmm (32 flops each): the
// float32 peak of one core, for BenchmarkBF16Peak.
TEXT ·peakFMA(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	TESTQ CX, CX
	JZ   fdone
floop:
	VFMADD231PS Z0, Z1, Z2
	VFMADD231PS Z0, Z1, Z3
	VFMADD231PS Z0, Z1, Z4
	VFMADD231PS Z0, Z1, Z5
	VFMADD231PS Z0, Z1, Z6
	VFMADD231PS Z0, Z1, Z7
	VFMADD231PS Z0, Z1, Z8
	VFMADD231PS Z0, Z1, Z9
	VFMADD231PS Z0, Z1, Z10
	VFMADD231PS Z0, Z1, Z11
	VFMADD231PS Z0, Z1, Z12
	VFMADD231PS Z0, Z1, Z13
	VFMADD231PS Z0, Z1, Z14
	VFMADD231PS Z0, Z1, Z15
	VFMADD231PS Z0, Z1, Z16
	VFMADD231PS Z0, Z1, Z17
	DECQ CX
	JNZ  floop
fdone:
	VZEROUPPER
	RET

// func peakDPBF16(n int)
//
// n iterations of 16 independent VDPBF16PS zmm (64 flops each).
TEXT ·peakDPBF16(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	TESTQ CX, CX
	JZ   ddone
dloop:
	VDPBF16PS_Z(2, 1, 0)
	VDPBF16PS_Z(3, 1, 0)
	VDPBF16PS_Z(4, 1, 0)
	VDPBF16PS_Z(5, 1, 0)
	VDPBF16PS_Z(6, 1, 0)
	VDPBF16PS_Z(7, 1, 0)
	VDPBF16PS_Z(8, 1, 0)
	VDPBF16PS_Z(9, 1, 0)
	VDPBF16PS_Z(10, 1, 0)
	VDPBF16PS_Z(11, 1, 0)
	VDPBF16PS_Z(12, 1, 0)
	VDPBF16PS_Z(13, 1, 0)
	VDPBF16PS_Z(14, 1, 0)
	VDPBF16PS_Z(15, 1, 0)
	VDPBF16PS_Z(16, 1, 0)
	VDPBF16PS_Z(17, 1, 0)
	DECQ CX
	JNZ  dloop
ddone:
	VZEROUPPER
	RET
