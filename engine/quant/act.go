package quant

import "fmt"

// Q8Act is an activation vector quantized to int8 blocks of QK values for
// integer dot products with stored Q8_0 and Q4_0 rows (llama.cpp's
// block_q8_0 for activations, with the scale kept as float32 and each
// block's sum precomputed): value i is D[i/QK]·Q[i]. A Q8Act is reused
// across calls; QuantizeAct resizes it.
type Q8Act struct {
	Q []int8    // the values, |q| ≤ 127
	D []float32 // one scale per block
	// M128 and M8 hold −128·Σq and −8·Σq of each block: the terms that
	// turn Σ(w+128)·q (Q8_0 weights made unsigned) and Σ u·q (Q4_0's
	// unsigned nibbles u = w+8) into Σ w·q.
	M128, M8 []int32
}

// Blocks is the number of blocks held.
func (a *Q8Act) Blocks() int { return len(a.D) }

// Resize makes a hold n values (a multiple of QK), reusing its memory
// when it is large enough; the contents are then undefined.
func (a *Q8Act) Resize(n int) error {
	if n%QK != 0 || n < 0 {
		return fmt.Errorf("quant: activation of %d values is not a multiple of %d", n, QK)
	}
	nb := n / QK
	if cap(a.Q) < n {
		a.Q = make([]int8, n)
	}
	if cap(a.D) < nb {
		a.D, a.M128, a.M8 = make([]float32, nb), make([]int32, nb), make([]int32, nb)
	}
	a.Q, a.D, a.M128, a.M8 = a.Q[:n], a.D[:nb], a.M128[:nb], a.M8[:nb]
	return nil
}

// roundMagic is 1.5·2²³: for |f| < 2²², (f + roundMagic) − roundMagic is
// f rounded to the nearest integer, halves to even, in float32
// arithmetic (the rounding of the SIMD conversion VCVTPS2DQ).
const roundMagic = 12582912

// QuantizeAct quantizes x (a multiple of QK values) into a, per block
// d = max|x|/127 and q = x·(1/d) rounded to nearest, halves to even
// (ggml's quantize_row_q8_0 rounds halves away from zero and keeps d in
// f16; here d stays float32). The SIMD quantizers in engine/tensor give
// the same bytes.
func QuantizeAct(a *Q8Act, x []float32) error {
	if err := a.Resize(len(x)); err != nil {
		return err
	}
	nb := len(x) / QK
	for b := range nb {
		xb := (*[QK]float32)(x[b*QK : b*QK+QK])
		qb := (*[QK]int8)(a.Q[b*QK : b*QK+QK])
		var amax float32
		for _, v := range xb {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		var sum int32
		for i, v := range xb {
			// |v·id| ≤ 127 up to rounding, so q stays within ±127.
			// float32() rounds the product: no fused multiply-add.
			q := int32((float32(v*id) + roundMagic) - roundMagic)
			qb[i] = int8(q)
			sum += q
		}
		a.D[b], a.M128[b], a.M8[b] = d, -128*sum, -8*sum
	}
	return nil
}
