package tensor

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"orchmind/engine/quant"
)

// Integer dot products for generation (see SIMD.md, "Int8 dot products"):
// the activation vector is quantized once per matrix-vector product to
// int8 blocks of 32 values with one float32 scale (quant.Q8Act), and each
// stored Q8_0, Q4_0, Q4_K or Q6_K row is multiplied with it block by block
// in 8-bit integers, as llama.cpp does: Σ w·q per block (per 16 values for
// Q6_K) as an exact int32, then times the scales. Training never runs this path: MatMul and
// MatMulT keep float32 activations.

// int8Dot returns Σ w·x over a row of whole blocks, x given as a Q8Act of
// as many blocks.
type int8Dot func(a *quant.Q8Act, row []byte) float32

// int8Set is one implementation of the integer row dot products, by
// weight type.
type int8Set struct {
	name string // "go", "avx2" (VPMADDUBSW), "vnni" (VPDPBUSD) or "sdot" (arm64)
	insn string // what multiplies the bytes, for the summary
	// quantize is quant.QuantizeAct, the same bytes (SIMD where the set
	// has it).
	quantize func(a *quant.Q8Act, x []float32) error
	dots     map[quant.Type]int8Dot
	// groups holds, by type, kernels over several rows per call
	// (int8rows.go); matMulInt8 runs them on whole groups of rows and
	// dots on the rest.
	groups map[quant.Type]int8Group
}

// int8Go is the pure-Go reference for every integer kernel.
var int8Go = &int8Set{name: "go", insn: "Go int32 products", quantize: quant.QuantizeAct, dots: map[quant.Type]int8Dot{
	quant.Q8_0: dotQ8_0Q8Go,
	quant.Q4_0: dotQ4_0Q8Go,
	quant.Q4_K: dotQ4_KQ8Go,
	quant.Q6_K: dotQ6_KQ8Go,
}}

// blockSum8 is Σ w·q of one Q8_0 block (the 32 int8 after its scale).
func blockSum8(w []byte, q []int8) int32 {
	w, q = w[:quant.QK], q[:quant.QK]
	var s int32
	for i, v := range w {
		s += int32(int8(v)) * int32(q[i])
	}
	return s
}

// blockSum4 is Σ (u−8)·q of one Q4_0 block's 16 bytes of nibbles u (low
// nibbles are values 0–15, high nibbles 16–31).
func blockSum4(w []byte, q []int8) int32 {
	w, q = w[:quant.QK/2], q[:quant.QK]
	var s int32
	for i, v := range w {
		s += (int32(v&15)-8)*int32(q[i]) + (int32(v>>4)-8)*int32(q[i+quant.QK/2])
	}
	return s
}

// dotQ8_0Q8Go is the reference Q8_0 × Q8Act dot product: per block the
// exact integer sum times d_w·d_x, summed in block order.
func dotQ8_0Q8Go(a *quant.Q8Act, row []byte) float32 {
	const bb = 2 + quant.QK
	var s float32
	for b := range len(row) / bb {
		blk := row[b*bb : (b+1)*bb]
		s += f16(blk) * a.D[b] * float32(blockSum8(blk[2:], a.Q[b*quant.QK:]))
	}
	return s
}

// dotQ4_0Q8Go is the reference Q4_0 × Q8Act dot product.
func dotQ4_0Q8Go(a *quant.Q8Act, row []byte) float32 {
	const bb = 2 + quant.QK/2
	var s float32
	for b := range len(row) / bb {
		blk := row[b*bb : (b+1)*bb]
		s += f16(blk) * a.D[b] * float32(blockSum4(blk[2:], a.Q[b*quant.QK:]))
	}
	return s
}

// dotQ4_KQ8Go is the reference Q4_K × Q8Act dot product. A Q4_K value
// of sub-block s (32 values, one activation block) is d·sc_s·u − dmin·mn_s
// with u a nibble, so per sub-block the exact Σ u·q and the activation's
// Σq give d_x·(d·sc_s·Σ u·q − dmin·mn_s·Σq).
func dotQ4_KQ8Go(a *quant.Q8Act, row []byte) float32 {
	var s float32
	for sb := range len(row) / q4KBytes {
		blk := row[sb*q4KBytes : (sb+1)*q4KBytes]
		d, dm := f16(blk), f16(blk[2:])
		sc, mn := kScales((*[12]byte)(blk[4:16]))
		for j := range 4 {
			q := (*[32]byte)(blk[16+32*j : 48+32*j])
			for h := range 2 { // sub-block 2j+h: low nibbles, then high
				sub, b := 2*j+h, 8*sb+2*j+h
				x := (*[quant.QK]int8)(a.Q[b*quant.QK : (b+1)*quant.QK])
				var isum int32
				for l, v := range q {
					isum += int32(v>>(4*h)&15) * int32(x[l])
				}
				ysum := -a.M8[b] / 8
				s += a.D[b] * (d*float32(sc[sub])*float32(isum) - dm*float32(mn[sub])*float32(ysum))
			}
		}
	}
	return s
}

// dotQ6_KQ8Go is the reference Q6_K × Q8Act dot product. Activation
// block k of a super-block is its values 32k…32k+31, whose 6-bit levels
// u come from one quarter of a half's ql/qh bytes (q6Levels) and whose
// scales are sc[2k] (first 16 values) and sc[2k+1]: per block
// d_x·d·(sc[2k]·Σ(u−32)·q + sc[2k+1]·Σ(u−32)·q) over the two halves.
func dotQ6_KQ8Go(a *quant.Q8Act, row []byte) float32 {
	var s float32
	for sb := range len(row) / q6KBytes {
		blk := row[sb*q6KBytes : (sb+1)*q6KBytes]
		d := f16(blk[208:])
		sc := (*[16]byte)(blk[192:208])
		for n := range 2 {
			ql := (*[64]byte)(blk[64*n : 64*n+64])
			qh := (*[32]byte)(blk[128+32*n : 160+32*n])
			var sums [4][2]int32 // per quarter g, per 16 values
			for l := range 32 {
				q1, q2, q3, q4 := q6Levels(ql[l], ql[l+32], qh[l])
				for g, u := range [4]byte{q1, q2, q3, q4} {
					b := 8*sb + 4*n + g
					sums[g][l/16] += (int32(u&63) - 32) * int32(a.Q[b*quant.QK+l])
				}
			}
			for g, ss := range sums {
				k := 4*n + g
				s += a.D[8*sb+k] * d * (float32(int8(sc[2*k]))*float32(ss[0]) + float32(int8(sc[2*k+1]))*float32(ss[1]))
			}
		}
	}
	return s
}

// int8Choice is the integer path generation uses: the kernels of the
// chosen set for the types where they beat the float32 fused dot (wins),
// or none.
type int8Choice struct {
	set  *int8Set
	wins []quant.Type
	off  bool // ORCHMIND_INT8=off
}

// int8Chosen is read once at start: the set that matches the chosen
// kernel set, limited to the types where it was measured faster (see
// int8Wins), unless ORCHMIND_INT8=off.
var int8Chosen = sync.OnceValue(func() int8Choice {
	return chooseInt8(os.Getenv, chosen.level)
})

func chooseInt8(getenv func(string) string, level string) int8Choice {
	if v := strings.ToLower(strings.TrimSpace(getenv("ORCHMIND_INT8"))); v == "off" || v == "0" {
		return int8Choice{off: true}
	}
	s := int8For(level)
	if s == nil {
		return int8Choice{}
	}
	var wins []quant.Type
	for _, t := range int8Wins[s.name] {
		if s.dots[t] != nil {
			wins = append(wins, t)
		}
	}
	if len(wins) == 0 {
		return int8Choice{}
	}
	return int8Choice{set: s, wins: wins}
}

// Int8Rows reports whether generation takes integer dot products with
// rows of type t ([MatMulInt8] then differs from [MatMul]).
func Int8Rows(t quant.Type) bool {
	return slices.Contains(int8Chosen().wins, t)
}

// Int8Summary says in one line which path matrix-vector products of
// generation run, e.g. "int8 dot products (VPDPBUSD) for Q8_0, Q4_0,
// Q4_K, Q6_K rows, float32 for the rest (ORCHMIND_INT8=off: float32
// only)".
func Int8Summary() string {
	c := int8Chosen()
	switch {
	case c.off:
		return "float32 dot products (ORCHMIND_INT8=off)"
	case c.set == nil && int8For(chosen.level) == nil:
		return "float32 dot products (the " + chosen.level + " set has no integer kernels)"
	case c.set == nil:
		return "float32 dot products (no integer kernels faster on " + chosen.level + ")"
	}
	names := make([]string, len(c.wins))
	for i, t := range c.wins {
		names[i] = t.String()
	}
	return fmt.Sprintf("int8 dot products (%s) for %s rows, float32 for the rest (ORCHMIND_INT8=off: float32 only)",
		c.set.insn, strings.Join(names, ", "))
}

// MatMulInt8 is [MatMul] for inference: with fewer than 4 input vectors
// and rows of a type where the chosen kernel set's integer dot products
// win ([Int8Rows]), each input is quantized once to int8 blocks
// (quant.QuantizeAct) and every output is an integer dot product with the
// stored row; otherwise it is MatMul. Its results differ from MatMul's by
// the activation's quantization (relative error about 0.4% per block at
// worst, far less on average) and do not depend on the number of workers.
func MatMulInt8(out, x []float32, n int, w *Matrix) {
	c := int8Chosen()
	if n >= 4 || !slices.Contains(c.wins, w.Type) {
		MatMul(out, x, n, w)
		return
	}
	matMulInt8(c.set, out, x, n, w)
}

// actPool holds quantized activations between calls.
var actPool = sync.Pool{New: func() any { return new(quant.Q8Act) }}

// matMulInt8 computes out[n×Rows] = x·Wᵀ with the integer kernels of s.
func matMulInt8(s *int8Set, out, x []float32, n int, w *Matrix) {
	dot := s.dots[w.Type]
	rb := checkShapes("MatMulInt8", out, x, w.Rows, w.Cols, n, w)
	rows, cols := w.Rows, w.Cols
	if n == 0 || rows == 0 {
		return
	}
	a := actPool.Get().(*quant.Q8Act)
	defer actPool.Put(a)
	for i := range n {
		if err := s.quantize(a, x[i*cols:(i+1)*cols]); err != nil {
			panic(fmt.Sprintf("tensor.MatMulInt8: %v", err)) // block types have whole blocks per row
		}
		o := out[i*rows : (i+1)*rows]
		if gk, ok := s.groups[w.Type]; ok && rows >= gk.group {
			g := gk.group
			sc := w.groupScales(g)
			full := rows / g * g
			parallelRows(rows/g, rows*cols, func(lo, hi int) {
				for k := lo; k < hi; k++ {
					gk.dot(a, w, sc, k*g, o[k*g:(k+1)*g])
				}
			})
			for r := full; r < rows; r++ {
				o[r] = dot(a, w.Data[r*rb:(r+1)*rb])
			}
			continue
		}
		parallelRows(rows, rows*cols, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				o[r] = dot(a, w.Data[r*rb:(r+1)*rb])
			}
		})
	}
}

// int8Wins lists, per integer kernel set, the row types where it beats
// the float32 fused dot product of the same kernel set (measured with
// BenchmarkInt8VsF32, alternating both; see SIMD.md): only these run in
// generation. Measured here (AMD EPYC, AVX512-VNNI, one thread) the
// integer path was 1.3–2.4× faster for every shape from 288×288 to
// 2048×8192, Q8_0, Q4_0, Q4_K and Q6_K alike, on avx2 and avx512.
// The pure-Go kernels are the reference only: Go does not vectorise the
// int8 loops, and they were slower than the pure-Go float32 dot (Q8_0
// 2048×8192: 23 vs 16 ms; 288×288: 74 vs 56 µs).
// The arm64 SDOT kernels (dotprod) are NOT measured: no ARM machine was at
// hand, only qemu, where timings mean nothing. They are on for every type
// because per 32 values they run 2.4–4.7 times fewer instructions than
// the NEON float32 dot (SIMD.md), and llama.cpp's ARM path does the same;
// ORCHMIND_ISA=neon or ORCHMIND_INT8=off turns them off.
var int8Wins = map[string][]quant.Type{
	"go":   nil,
	"avx2": {quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K},
	"vnni": {quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K},
	"sdot": {quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K},
}
