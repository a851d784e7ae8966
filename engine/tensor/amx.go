package tensor

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"orchmind/engine/quant"
)

// bfloat16 matrix products on AMX tiles.
//
// A tile kernel (amxGemm32) computes 32×32 blocks of C = A·B with A in
// bfloat16 rows and B in the VNNI layout AMX wants: pair rows holding
// (B[2p][j], B[2p+1][j]) side by side. MatMulBF16 computes out = x·Wᵀ with
// A = x (rounded once per call) and B = Wᵀ: each worker dequantizes 32 rows
// of W, rounds them and gathers dword p of every row into pair row p.
// MatMulTBF16 computes out = dy·W with A = dy and B = W itself, whose pair
// rows interleave two consecutive rows of W. W stays quantized: only a
// worker's panel is ever dequantized, as in the float32 paths.

// bf16Kernels are the bfloat16 kernels of one instruction set. Strides are
// in elements of the slice they apply to.
type bf16Kernels struct {
	// gemm32: for g < groups, C_g (+)= A_g·B with A_g the 32 rows of
	// 32·ksteps values at a[32·g·lda:] (lda apart), B the 16·ksteps pair rows
	// of 32 at b (ldb apart) and C_g the 32×32 block at c[32·g·ldc:] (ldc
	// apart); acc adds to C_g instead of overwriting it.
	gemm32 func(a []uint16, lda int, b []uint32, ldb int, c []float32, ldc int, ksteps, groups int, acc bool)
	// row rounds src into dst (len(dst) ≥ len(src)).
	row func(dst []uint16, src []float32)
	// pairs writes pair rows p < pairs of dst (ldd apart) from float32 rows
	// 2p and 2p+1 of src (lds apart), 32 columns.
	pairs func(dst []uint32, ldd int, src []float32, lds int, pairs int)
	// gather sets dst[p·ldd + j] = src[j·lds + p] for p < pairs, j < 16.
	gather func(dst []uint32, ldd int, src []uint32, lds int, pairs int)
}

// namedBF16 is a bfloat16 kernel set and the ISA level it belongs to.
type namedBF16 struct {
	name string
	k    *bf16Kernels
}

// bf16MinN is the fewest input vectors for which the bfloat16 paths use the
// tiles: a tile holds 32 of them, and below that padding wastes most of it.
const bf16MinN = 32

// bf16KC is the depth of one pass of MatMulTBF16 over W's rows: a 512×32
// panel of pairs is 64 KiB, in L2 beside the inputs' tile rows.
const bf16KC = 512

// bf16NC is the widest run of W's columns MatMulTBF16 dequantizes at once
// (a 512×256 float32 scratch, 512 KiB).
const bf16NC = 256

// bf16Active is the bfloat16 kernel set of the chosen ISA: AMX tiles for
// amx, VDPBF16PS for avx512bf16 (where it beats the float32 kernels, see
// bf16DotFaster), none below.
var bf16Active = sync.OnceValue(func() *bf16Kernels { return bf16For(chosen.level) })

// bf16For returns the bfloat16 kernels of a kernel set, or nil.
func bf16For(level string) *bf16Kernels {
	switch level {
	case ISAAMX:
		return amxKernels()
	case ISAAVX512BF16:
		if bf16DotFaster {
			return avx512BF16Kernels()
		}
	}
	return nil
}

// BF16Tiles reports whether MatMulBF16 and MatMulTBF16 take their products
// in bfloat16, faster than float32: on AMX tiles (Intel Xeon of the 4th
// generation, Sapphire Rapids, and later, on Linux) or with AVX512-BF16's
// VDPBF16PS (AMD Zen 4 and later, Intel Cooper Lake); when false they are
// MatMul and MatMulT. ORCHMIND_ISA below the set (ORCHMIND_NOAMX=1 for
// AMX, ORCHMIND_NOSIMD=1) turns them off.
func BF16Tiles() bool { return bf16Active() != nil }

// MatMulBF16 is MatMul with the products taken in bfloat16: x and W are
// rounded to bfloat16 (nearest even) and the sums kept in float32, on AMX
// tiles, about ten times the float32 kernels' speed. Each output then
// differs from MatMul's by up to about 2⁻⁸·Σ|x·w|: meant for the frozen
// base's products in training, the compute type of QLoRA, not for paths
// whose float32 results are compared with references. Without tiles (see
// BF16Tiles), or for fewer than 32 inputs, it is MatMul.
func MatMulBF16(out, x []float32, n int, w *Matrix) {
	bk := bf16Active()
	if bk == nil || n < bf16MinN || w.Rows == 0 || w.Cols == 0 {
		MatMul(out, x, n, w)
		return
	}
	matMulBF16(bk, out, x, n, w)
}

// MatMulTBF16 is MatMulT with the products taken in bfloat16, as
// MatMulBF16 is for MatMul.
func MatMulTBF16(out, dy []float32, n int, w *Matrix) {
	bk := bf16Active()
	if bk == nil || n < bf16MinN || w.Rows == 0 || w.Cols == 0 {
		MatMulT(out, dy, n, w)
		return
	}
	matMulTBF16(bk, out, dy, n, w)
}

func roundUp(v, m int) int { return (v + m - 1) / m * m }

// toBF16 rounds f to bfloat16, nearest even (NaN stays NaN).
func toBF16(f float32) uint16 {
	b := math.Float32bits(f)
	b += 0x7FFF + (b>>16)&1
	return uint16(b >> 16)
}

// fromBF16 widens a bfloat16 to float32 (exactly).
func fromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

var (
	u16Pool = sync.Pool{New: func() any { return new([]uint16) }}
	u32Pool = sync.Pool{New: func() any { return new([]uint32) }}
)

func getU16(n int) *[]uint16 {
	p := u16Pool.Get().(*[]uint16)
	if cap(*p) < n {
		*p = make([]uint16, n)
	}
	*p = (*p)[:n]
	return p
}

func getU32(n int) *[]uint32 {
	p := u32Pool.Get().(*[]uint32)
	if cap(*p) < n {
		*p = make([]uint32, n)
	}
	*p = (*p)[:n]
	return p
}

// checkGemm32 panics unless every element a gemm32 call touches lies inside
// its slices, so that the assembly never reads or writes past them.
func checkGemm32(a []uint16, lda int, b []uint32, ldb int, c []float32, ldc int, ksteps, groups int) {
	if ksteps < 1 || groups < 1 || lda < 32*ksteps || ldb < 32 || ldc < 32 ||
		len(a) < (32*groups-1)*lda+32*ksteps || len(b) < (16*ksteps-1)*ldb+32 || len(c) < (32*groups-1)*ldc+32 {
		panic(fmt.Sprintf("tensor: bf16 tile out of bounds (ksteps=%d groups=%d lda=%d ldb=%d ldc=%d, len a=%d b=%d c=%d): a bug in the tiling",
			ksteps, groups, lda, ldb, ldc, len(a), len(b), len(c)))
	}
}

// toBF16Rows writes m rows of src (cols values, cols apart) into dst as
// rows of ld bfloat16 values, zero past cols and for rows m ≤ i < rows.
func toBF16Rows(bk *bf16Kernels, dst []uint16, ld int, src []float32, cols, m, rows int) {
	parallelRows(rows, rows*ld*4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d := dst[i*ld : (i+1)*ld]
			if i >= m {
				clear(d)
				continue
			}
			bk.row(d[:cols], src[i*cols:(i+1)*cols])
			clear(d[cols:])
		}
	})
}

// matMulBF16 computes out[n×rows] = x[n×cols]·Wᵀ on tiles (n ≥ 1).
func matMulBF16(bk *bf16Kernels, out, x []float32, n int, w *Matrix) {
	rb := checkShapes("MatMulBF16", out, x, w.Rows, w.Cols, n, w)
	rows, cols := w.Rows, w.Cols
	kp, np := roundUp(cols, 32), roundUp(n, 32)
	xbBuf := getU16(np * kp)
	defer u16Pool.Put(xbBuf)
	xb := *xbBuf
	toBF16Rows(bk, xb, kp, x, cols, n, np)
	// Whole tiles go straight into out; otherwise into a padded copy.
	o, ldo := out, rows
	if n%32 != 0 || rows%32 != 0 {
		ldo = roundUp(rows, 32)
		ob := getBuf(np * ldo)
		defer putBuf(ob)
		o = *ob
	}
	deq := active.dequantizer(w.Type)
	half := kp / 2
	parallelRows(ldo/32, rows*cols*n, func(lo, hi int) {
		fBuf, rBuf, bBuf := getBuf(cols), getU16(32*kp), getU32(half*32)
		defer putBuf(fBuf)
		defer u16Pool.Put(rBuf)
		defer u32Pool.Put(bBuf)
		f, r16, bp := *fBuf, *rBuf, *bBuf
		// The rounded rows read as pairs: dword p of row i holds values 2p
		// and 2p+1.
		rr := u16AsU32(r16)
		for p := lo; p < hi; p++ {
			r0 := p * 32
			for i := range 32 {
				d := r16[i*kp : (i+1)*kp]
				if r0+i >= rows {
					clear(d)
					continue
				}
				row := w.Data[(r0+i)*rb : (r0+i+1)*rb]
				if v, ok := asFloat32(row); ok && w.Type == quant.F32 {
					bk.row(d[:cols], v) // activations: round them where they are
				} else {
					deq(f, row)
					bk.row(d[:cols], f)
				}
				clear(d[cols:])
			}
			checkGather(bp, 32, rr, half, half)
			bk.gather(bp, 32, rr, half, half)
			checkGather(bp[16:], 32, rr[16*half:], half, half)
			bk.gather(bp[16:], 32, rr[16*half:], half, half)
			checkGemm32(xb, kp, bp, 32, o[r0:], ldo, kp/32, np/32)
			bk.gemm32(xb, kp, bp, 32, o[r0:], ldo, kp/32, np/32, false)
		}
	})
	if ldo != rows || n%32 != 0 {
		for i := range n {
			copy(out[i*rows:(i+1)*rows], o[i*ldo:i*ldo+rows])
		}
	}
}

// checkGather panics unless a gather call stays inside its slices.
func checkGather(dst []uint32, ldd int, src []uint32, lds int, pairs int) {
	if pairs < 1 || len(dst) < (pairs-1)*ldd+16 || len(src) < 15*lds+pairs || 15*lds*4 > math.MaxInt32 {
		panic(fmt.Sprintf("tensor: bf16 gather out of bounds (pairs=%d ldd=%d lds=%d, len dst=%d src=%d): a bug in the tiling", pairs, ldd, lds, len(dst), len(src)))
	}
}

// checkPairs panics unless a pairs call stays inside its slices.
func checkPairs(dst []uint32, ldd int, src []float32, lds int, pairs int) {
	if pairs < 1 || len(dst) < (pairs-1)*ldd+32 || len(src) < (2*pairs-1)*lds+32 {
		panic(fmt.Sprintf("tensor: bf16 pairs out of bounds (pairs=%d ldd=%d lds=%d, len dst=%d src=%d): a bug in the tiling", pairs, ldd, lds, len(dst), len(src)))
	}
}

// matMulTBF16 computes out[n×cols] = dy[n×rows]·W on tiles (n ≥ 1). W's
// columns are taken 32 at a time; a partial last tile (only for
// unquantized W, whose blocks are single values) is zero-padded.
func matMulTBF16(bk *bf16Kernels, out, dy []float32, n int, w *Matrix) {
	rb := checkShapes("MatMulTBF16", out, dy, w.Cols, w.Rows, n, w)
	rows, cols := w.Rows, w.Cols
	kp, np, colsP := roundUp(rows, 32), roundUp(n, 32), roundUp(cols, 32)
	dybBuf := getU16(np * kp)
	defer u16Pool.Put(dybBuf)
	dyb := *dybBuf
	toBF16Rows(bk, dyb, kp, dy, rows, n, np)
	o, ldo := out, cols
	if n%32 != 0 || colsP != cols {
		ldo = colsP
		ob := getBuf(np * colsP)
		defer putBuf(ob)
		o = *ob
	}
	bs, bb := w.Type.BlockSize(), w.Type.BlockBytes()
	unit := 32 // columns per split unit: whole tiles and whole blocks
	for unit%bs != 0 {
		unit += 32
	}
	// A worker takes a run of units and goes through it up to bf16NC
	// columns at a time: fewer, longer dequantization calls, and each pass
	// reads its rows of dy once per chunk, not once per unit.
	chunk := max(unit, bf16NC/unit*unit)
	deq := active.dequantizer(w.Type)
	// An F32 matrix (attention's activations) is read in place: no copy.
	var wf []float32
	if w.Type == quant.F32 {
		wf, _ = asFloat32(w.Data[:rows*rb])
	}
	parallelRows((colsP+unit-1)/unit, rows*cols*n, func(lo, hi int) {
		fBuf, bBuf := getBuf(bf16KC*chunk), getU32(bf16KC/2*32)
		defer putBuf(fBuf)
		defer u32Pool.Put(bBuf)
		f, bp := *fBuf, *bBuf
		for c0 := lo * unit; c0 < min(hi*unit, colsP); c0 += chunk {
			c1 := min(c0+chunk, hi*unit, colsP)
			widthP := c1 - c0
			width := min(c1, cols) - c0 // the columns W has
			seg0, seg1 := c0/bs*bb, (c0+width+bs-1)/bs*bb
			for r0 := 0; r0 < kp; r0 += bf16KC {
				kk := min(bf16KC, kp-r0)
				if wf == nil {
					for r := range kk {
						d := f[r*widthP : (r+1)*widthP]
						if r0+r >= rows {
							clear(d)
							continue
						}
						deq(d[:width], w.Data[(r0+r)*rb+seg0:(r0+r)*rb+seg1])
						clear(d[width:])
					}
				}
				for pc := 0; pc < widthP; pc += 32 {
					if wf != nil {
						pairsF32(bk, bp, wf, rows, cols, r0, kk, c0+pc, f)
					} else {
						checkPairs(bp, 32, f[pc:], widthP, kk/2)
						bk.pairs(bp, 32, f[pc:], widthP, kk/2)
					}
					checkGemm32(dyb[r0:], kp, bp, 32, o[c0+pc:], ldo, kk/32, np/32)
					bk.gemm32(dyb[r0:], kp, bp, 32, o[c0+pc:], ldo, kk/32, np/32, r0 > 0)
				}
			}
		}
	})
	if ldo != cols {
		for i := range n {
			copy(out[i*cols:(i+1)*cols], o[i*ldo:i*ldo+cols])
		}
	} else if n%32 != 0 {
		copy(out[:n*cols], o[:n*cols])
	}
}

// pairsF32 writes the kk/2 pair rows of the 32 columns from c of rows r0 …
// r0+kk of the float32 matrix wf (rows × cols) into bp: straight from wf
// where all 32 columns and both rows exist, through the scratch s (zero
// padded) for the rest.
func pairsF32(bk *bf16Kernels, bp []uint32, wf []float32, rows, cols, r0, kk, c int, s []float32) {
	direct := 0 // pairs read in place
	if c+32 <= cols {
		direct = min(kk, rows-r0) / 2
	}
	if direct > 0 {
		checkPairs(bp, 32, wf[r0*cols+c:], cols, direct)
		bk.pairs(bp, 32, wf[r0*cols+c:], cols, direct)
	}
	rest := kk - 2*direct
	if rest == 0 {
		return
	}
	valid := min(32, cols-c)
	for r := range rest {
		d := s[r*32 : (r+1)*32]
		clear(d)
		if row := r0 + 2*direct + r; row < rows {
			copy(d[:valid], wf[row*cols+c:row*cols+c+valid])
		}
	}
	checkPairs(bp[direct*32:], 32, s, 32, rest/2)
	bk.pairs(bp[direct*32:], 32, s, 32, rest/2)
}

// u16AsU32 views s (of even length, from make, so 4-byte aligned) as dwords.
func u16AsU32(s []uint16) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(&s[0])), len(s)/2)
}
