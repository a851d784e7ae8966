package tensor

import (
	"math"
	"os"
	"runtime"

	"orchmind/engine/quant"
)

// kernels is one implementation of the inner loops. The package picks one
// at init (see active); tests and benchmarks call the others directly.
type kernels struct {
	name string
	// dot returns Σ a[i]·b[i] over len(a) elements.
	dot func(a, b []float32) float32
	// axpy computes y[i] += alpha·x[i] over len(x) elements.
	axpy func(alpha float32, x, y []float32)
	// dot4 computes o[j] = Σ row[i]·x[j·stride+i] for j < 4 over len(row)
	// elements: one row against four input vectors.
	dot4 func(row, x []float32, stride int, o *[4]float32)
	// max returns the largest of x (len(x) > 0).
	max func(x []float32) float32
	// expSub sets x[i] = exp(x[i]−m) for x[i] ≤ m and returns Σ x[i].
	expSub func(x []float32, m float32) float32
	// sigmoid sets dst[i] = 1/(1+e^−x[i]) over len(x) elements.
	sigmoid func(dst, x []float32)
	// gemm is the register-blocked micro-kernel of MatMul and MatMulT for
	// several inputs, or nil (then they use dot4 and axpy).
	gemm *gemmKernel
	// rows holds the kernels that work on stored rows, by type.
	rows map[quant.Type]rowKernels
}

// rowKernels work directly on the stored bytes of a row (or of a run of
// whole blocks of it). A nil field means "dequantize, then use the float32
// kernels".
type rowKernels struct {
	// dot returns Σ x[i]·w[i] over the values of row (x as long as row).
	dot func(x []float32, row []byte) float32
	// dequant writes the values of row into dst.
	dequant func(dst []float32, row []byte)
	// axpy computes y[i] += alpha·w[i] over the values of row.
	axpy func(alpha float32, row []byte, y []float32)
}

// generic is the pure-Go implementation, used where no SIMD kernels exist
// (architectures other than amd64 and arm64, amd64 CPUs without
// AVX2+FMA+F16C) or when ORCHMIND_NOSIMD=1.
var generic = &kernels{
	name:    "generic",
	dot:     dotGo,
	axpy:    axpyGo,
	max:     maxGo,
	expSub:  expSubGo,
	sigmoid: sigmoidGo,
	dot4: func(row, x []float32, stride int, o *[4]float32) {
		for j := range o {
			o[j] = dotGo(row, x[j*stride:])
		}
	},
	rows: map[quant.Type]rowKernels{
		quant.Q8_0: {dot: dotQ8_0Go},
		quant.Q4_0: {dot: dotQ4_0Go},
		quant.Q4_K: kquantGo[quant.Q4_K],
		quant.Q5_K: kquantGo[quant.Q5_K],
		quant.Q6_K: kquantGo[quant.Q6_K],
	},
}

// kquantGo are the pure-Go K-quant row kernels (kquant.go); a SIMD set
// without assembly for a K-quant type would use them too.
var kquantGo = map[quant.Type]rowKernels{
	quant.Q4_K: {dot: dotQ4KGo, dequant: dequantQ4KGo, axpy: axpyQ4KGo},
	quant.Q5_K: {dot: dotQ5KGo, dequant: dequantQ5KGo, axpy: axpyQ5KGo},
	quant.Q6_K: {dot: dotQ6KGo, dequant: dequantQ6KGo, axpy: axpyQ6KGo},
}

// active is the float32 kernel set of the set chosen once at start (see
// ISA): ORCHMIND_ISA, ORCHMIND_NOSIMD=1 in the environment choose.
var active = kernelsFor(chosen.level)

// chooseKernels reads the environment again (for tests).
func chooseKernels() *kernels {
	return kernelsFor(chooseISA(os.Getenv, runtime.GOARCH, cpuISAs()).level)
}

// SIMD names the float32 kernel set in use: "avx512", "avx2" (amd64),
// "neon" (arm64) or "generic". ISA names the whole set, bfloat16 products
// included.
func SIMD() string { return active.name }

// dotGo returns Σ a[i]·b[i] over len(a) elements, accumulated in four
// independent lanes.
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyGo computes y[i] += alpha·x[i] over len(x) elements.
func axpyGo(alpha float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// f16 reads the little-endian half-precision scale at the start of b.
func f16(b []byte) float32 { return quant.F16ToF32(uint16(b[0]) | uint16(b[1])<<8) }

// dotQ8_0Go is the fused pure-Go Q8_0 dot product: per block, Σ x·q in four
// lanes, then scaled by the block's d.
func dotQ8_0Go(x []float32, row []byte) float32 {
	const bb = 2 + quant.QK
	var s float32
	for len(row) >= bb {
		q := row[2:bb]
		xb := x[:quant.QK]
		var s0, s1, s2, s3 float32
		for i := 0; i < quant.QK; i += 4 {
			s0 += xb[i] * float32(int8(q[i]))
			s1 += xb[i+1] * float32(int8(q[i+1]))
			s2 += xb[i+2] * float32(int8(q[i+2]))
			s3 += xb[i+3] * float32(int8(q[i+3]))
		}
		s += f16(row) * ((s0 + s1) + (s2 + s3))
		row, x = row[bb:], x[quant.QK:]
	}
	return s
}

// dotQ4_0Go is the fused pure-Go Q4_0 dot product (values d·(q−8), low
// nibbles first).
func dotQ4_0Go(x []float32, row []byte) float32 {
	const bb = 2 + quant.QK/2
	var s float32
	for len(row) >= bb {
		q := row[2:bb]
		lo, hi := x[:quant.QK/2], x[quant.QK/2:quant.QK]
		var s0, s1, s2, s3 float32
		for i := 0; i < quant.QK/2; i += 2 {
			s0 += lo[i] * float32(int(q[i]&15)-8)
			s1 += hi[i] * float32(int(q[i]>>4)-8)
			s2 += lo[i+1] * float32(int(q[i+1]&15)-8)
			s3 += hi[i+1] * float32(int(q[i+1]>>4)-8)
		}
		s += f16(row) * ((s0 + s1) + (s2 + s3))
		row, x = row[bb:], x[quant.QK:]
	}
	return s
}

func maxGo(x []float32) float32 {
	m := x[0]
	for _, v := range x[1:] {
		if v > m {
			m = v
		}
	}
	return m
}

func expSubGo(x []float32, m float32) float32 {
	var z float32
	for i, v := range x {
		e := Exp32(v - m)
		x[i] = e
		z += e
	}
	return z
}

// Exp32 is e^x for x ≤ 0 in float32, to about 2 ulp, by the algorithm the
// SIMD ExpSub kernels use (clamp at −87, k = round(x·log2 e), r = x − k·ln 2
// in two parts, a degree-6 Taylor polynomial of e^r, times 2^k).
func Exp32(x float32) float32 {
	if x < -87 {
		x = -87
	}
	const log2e, ln2hi, ln2lo = 1.442695040888963, 0.693359375, -2.12194440e-4
	// x·log2e ≤ 0: truncating y−0.5 toward zero rounds to nearest (halves
	// go down; the SIMD kernels round them to even, an equally exact
	// reduction).
	k := float32(int32(x*log2e - 0.5))
	r := x - k*ln2hi
	r -= k * ln2lo
	p := float32(1.0 / 720)
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	return p * math.Float32frombits(uint32(int32(k)+127)<<23)
}

// Sigmoid32 is 1/(1+e^−x) in float32 by Exp32 of −|x| (no overflow for any
// x), to a few ulp; about 4× faster than going through math.Exp.
func Sigmoid32(x float32) float32 {
	if x >= 0 {
		return 1 / (1 + Exp32(-x))
	}
	e := Exp32(x)
	return e / (1 + e)
}

func sigmoidGo(dst, x []float32) {
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = Sigmoid32(v)
	}
}
