// Hand-written: AMX (Advanced Matrix Extensions) tile kernels and the
// AVX-512 packing helpers of the bfloat16 matrix products (amx.go).
//
// Go's assembler has no AMX mnemonics, so the tile instructions are emitted
// as bytes; each is preceded by a comment with the instruction it encodes
// (Intel syntax). All of them use only AX, BX, CX, DX, SI and DI as base
// and index registers, which keeps their VEX prefixes fixed (no REX-like
// extension bits). Every kernel loads the tile configuration on entry and
// releases the tiles before it returns, so no tile state outlives a call.

#include "textflag.h"

// Tile configuration: palette 1; tiles 0-7 of 16 rows × 64 bytes.
DATA amxcfg<>+0(SB)/8, $0x0000000000000001
DATA amxcfg<>+8(SB)/8, $0
DATA amxcfg<>+16(SB)/8, $0x0040004000400040
DATA amxcfg<>+24(SB)/8, $0x0040004000400040
DATA amxcfg<>+32(SB)/8, $0
DATA amxcfg<>+40(SB)/8, $0
DATA amxcfg<>+48(SB)/8, $0x1010101010101010
DATA amxcfg<>+56(SB)/8, $0
GLOBL amxcfg<>(SB), RODATA|NOPTR, $64

// Dword lane numbers 0..15, for gather indices.
DATA lanes16<>+0(SB)/8, $0x0000000100000000
DATA lanes16<>+8(SB)/8, $0x0000000300000002
DATA lanes16<>+16(SB)/8, $0x0000000500000004
DATA lanes16<>+24(SB)/8, $0x0000000700000006
DATA lanes16<>+32(SB)/8, $0x0000000900000008
DATA lanes16<>+40(SB)/8, $0x0000000b0000000a
DATA lanes16<>+48(SB)/8, $0x0000000d0000000c
DATA lanes16<>+56(SB)/8, $0x0000000f0000000e
GLOBL lanes16<>(SB), RODATA|NOPTR, $64

// func amxGemm32(a *uint16, lda int, b *uint32, ldb int, c *float32, ldc int, ksteps int, groups int, acc int)
//
// For g in [0, groups): C_g (+)= A_g·B, with A_g 32 rows × 32·ksteps
// bfloat16 values at a + 32·g·lda (rows lda bytes apart), B 16·ksteps rows
// of 32 pairs (VNNI layout: row p holds (B[2p][j], B[2p+1][j]) for j < 32,
// rows ldb bytes apart) and C_g 32 × 32 float32 at c + 32·g·ldc (rows ldc
// bytes apart). acc ≠ 0 adds to C_g, else C_g is overwritten.
TEXT ·amxGemm32(SB), NOSPLIT, $0-72
	MOVQ a+0(FP), R8
	MOVQ lda+8(FP), R9
	MOVQ b+16(FP), R10
	MOVQ ldb+24(FP), R11
	MOVQ c+32(FP), R12
	MOVQ ksteps+48(FP), R14
	MOVQ groups+56(FP), R15
	TESTQ R14, R14
	JZ   done
	TESTQ R15, R15
	JZ   done
	LEAQ amxcfg<>(SB), AX
	// ldtilecfg [rax]
	BYTE $0xC4; BYTE $0xE2; BYTE $0x78; BYTE $0x49; BYTE $0x00

group:
	MOVQ R12, AX
	MOVQ ldc+40(FP), BX
	MOVQ BX, DI
	SHLQ $4, DI
	ADDQ R12, DI
	MOVQ acc+64(FP), CX
	TESTQ CX, CX
	JZ   zero
	// tileloadd tmm0, [rax+rbx]
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x4B; BYTE $0x04; BYTE $0x18
	// tileloadd tmm1, [rax+rbx+64]
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x4B; BYTE $0x4C; BYTE $0x18; BYTE $0x40
	// tileloadd tmm2, [rdi+rbx]
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x4B; BYTE $0x14; BYTE $0x1F
	// tileloadd tmm3, [rdi+rbx+64]
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x4B; BYTE $0x5C; BYTE $0x1F; BYTE $0x40
	JMP  kinit

zero:
	// tilezero tmm0 … tmm3
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x49; BYTE $0xC0
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x49; BYTE $0xC8
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x49; BYTE $0xD0
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x49; BYTE $0xD8

kinit:
	MOVQ R8, AX  // A rows 0-15
	MOVQ R9, BX  // lda
	MOVQ R9, SI
	SHLQ $4, SI
	ADDQ R8, SI  // A rows 16-31
	MOVQ R10, CX // B
	MOVQ R11, DX // ldb
	MOVQ R11, DI
	SHLQ $4, DI  // 16 pair rows of B per step
	MOVQ R14, R13

kloop:
	// tileloadd tmm4, [rax+rbx]
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x4B; BYTE $0x24; BYTE $0x18
	// tileloadd tmm5, [rsi+rbx]
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x4B; BYTE $0x2C; BYTE $0x1E
	// tileloadd tmm6, [rcx+rdx]
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x4B; BYTE $0x34; BYTE $0x11
	// tileloadd tmm7, [rcx+rdx+64]
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x4B; BYTE $0x7C; BYTE $0x11; BYTE $0x40
	// tdpbf16ps tmm0, tmm4, tmm6
	BYTE $0xC4; BYTE $0xE2; BYTE $0x4A; BYTE $0x5C; BYTE $0xC4
	// tdpbf16ps tmm1, tmm4, tmm7
	BYTE $0xC4; BYTE $0xE2; BYTE $0x42; BYTE $0x5C; BYTE $0xCC
	// tdpbf16ps tmm2, tmm5, tmm6
	BYTE $0xC4; BYTE $0xE2; BYTE $0x4A; BYTE $0x5C; BYTE $0xD5
	// tdpbf16ps tmm3, tmm5, tmm7
	BYTE $0xC4; BYTE $0xE2; BYTE $0x42; BYTE $0x5C; BYTE $0xDD
	ADDQ $64, AX
	ADDQ $64, SI
	ADDQ DI, CX
	DECQ R13
	JNZ  kloop

	MOVQ R12, AX
	MOVQ ldc+40(FP), BX
	MOVQ BX, DI
	SHLQ $4, DI
	ADDQ R12, DI
	// tilestored [rax+rbx], tmm0
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7A; BYTE $0x4B; BYTE $0x04; BYTE $0x18
	// tilestored [rax+rbx+64], tmm1
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7A; BYTE $0x4B; BYTE $0x4C; BYTE $0x18; BYTE $0x40
	// tilestored [rdi+rbx], tmm2
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7A; BYTE $0x4B; BYTE $0x14; BYTE $0x1F
	// tilestored [rdi+rbx+64], tmm3
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7A; BYTE $0x4B; BYTE $0x5C; BYTE $0x1F; BYTE $0x40

	MOVQ R9, AX
	SHLQ $5, AX
	ADDQ AX, R8 // next 32 rows of A
	SHLQ $5, BX
	ADDQ BX, R12 // next 32 rows of C
	DECQ R15
	JNZ  group
	// tilerelease
	BYTE $0xC4; BYTE $0xE2; BYTE $0x78; BYTE $0x49; BYTE $0xC0

done:
	RET

// Rounds the 16 float32 in Z0 to bfloat16, nearest even, leaving each in
// the high half of its dword (low half zero). Z2 = 0x7FFF, Z3 = 1,
// Z5 = 0xFFFF0000 in every dword; clobbers Z1.
#define ROUNDBF16 \
	VPSRLD $16, Z0, Z1 \
	VPANDD Z3, Z1, Z1  \
	VPADDD Z2, Z0, Z0  \
	VPADDD Z1, Z0, Z0  \
	VPANDD Z5, Z0, Z0

#define BF16CONSTS \
	MOVL $0x7FFF, AX        \
	VPBROADCASTD AX, Z2     \
	MOVL $1, AX             \
	VPBROADCASTD AX, Z3     \
	MOVL $0xFFFF0000, AX    \
	VPBROADCASTD AX, Z5

// func bf16RowAVX512(dst *uint16, src *float32, n int)
//
// dst[i] = bfloat16(src[i]) (round to nearest even) for i < n, n a multiple
// of 16.
TEXT ·bf16RowAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX
	JZ   rowdone
	BF16CONSTS

rowloop:
	VMOVDQU32 (SI), Z0
	ROUNDBF16
	VPSRLD  $16, Z0, Z0
	VPMOVDW Z0, (DI)
	ADDQ    $64, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     rowloop
	VZEROUPPER

rowdone:
	RET

// func bf16PairsAVX512(dst *uint32, ldd int, src *float32, lds int, pairs int)
//
// For p < pairs and j < 32: dst[p·ldd/4 + j] holds bfloat16(src row 2p,
// column j) in its low half and bfloat16(src row 2p+1, column j) in its high
// half, source rows lds bytes apart: the VNNI layout of two rows of B.
TEXT ·bf16PairsAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), R9
	MOVQ pairs+32(FP), CX
	TESTQ CX, CX
	JZ   pairdone
	BF16CONSTS
	LEAQ (SI)(R9*1), DX // row 2p+1
	SHLQ $1, R9         // two rows per pair

pairloop:
	VMOVDQU32 (SI), Z0
	ROUNDBF16
	VPSRLD    $16, Z0, Z6
	VMOVDQU32 (DX), Z0
	ROUNDBF16
	VPORD     Z0, Z6, Z6
	VMOVDQU32 Z6, (DI)
	VMOVDQU32 64(SI), Z0
	ROUNDBF16
	VPSRLD    $16, Z0, Z6
	VMOVDQU32 64(DX), Z0
	ROUNDBF16
	VPORD     Z0, Z6, Z6
	VMOVDQU32 Z6, 64(DI)
	ADDQ      R9, SI
	ADDQ      R9, DX
	ADDQ      R8, DI
	DECQ      CX
	JNZ       pairloop
	VZEROUPPER

pairdone:
	RET

// func gatherPairsAVX512(dst *uint32, ldd int, src *uint32, lds int, pairs int)
//
// For p < pairs and j < 16: dst[p·ldd/4 + j] = src[j·lds/4 + p]: the dword
// (bfloat16 pair) p of 16 source rows lds bytes apart becomes row p of dst,
// the VNNI layout of Bᵀ from the rows of B. lds·15 must fit in an int32.
TEXT ·gatherPairsAVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R8
	MOVQ src+16(FP), SI
	MOVQ lds+24(FP), AX
	MOVQ pairs+32(FP), CX
	TESTQ CX, CX
	JZ   gatherdone
	VPBROADCASTD AX, Z1
	VMOVDQU32 lanes16<>(SB), Z2
	VPMULLD Z2, Z1, Z1

gatherloop:
	KXNORW K1, K1, K1
	VPGATHERDD (SI)(Z1*1), K1, Z0
	VMOVDQU32 Z0, (DI)
	ADDQ $4, SI
	ADDQ R8, DI
	DECQ CX
	JNZ  gatherloop
	VZEROUPPER

gatherdone:
	RET
