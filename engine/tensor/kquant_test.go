package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"orchmind/engine/quant"
)

var kTypes = []quant.Type{quant.Q4_K, quant.Q5_K, quant.Q6_K}

// kFlavours are the kinds of raw super-blocks randKBlocks makes.
var kFlavours = []string{"random", "zero", "max scales", "min scales", "huge d", "tiny d", "negative d", "mixed"}

// putF16 stores the half-precision h at b[0:2].
func putF16(b []byte, h uint16) { b[0], b[1] = byte(h), byte(h>>8) }

// randF16 returns a random finite half-precision value of magnitude about
// 2^-8 … 2^2, positive unless neg.
func randF16(r *rand.Rand, neg bool) uint16 {
	h := uint16(7+r.IntN(10))<<10 | uint16(r.IntN(1024))
	if neg {
		h |= 0x8000
	}
	return h
}

// randKBlocks returns nb raw super-blocks of t of the given flavour: random
// bytes with chosen scales, not the output of a quantizer, so that every
// bit pattern of levels, scales and mins occurs.
func randKBlocks(r *rand.Rand, t quant.Type, nb int, flavour string) []byte {
	bb := t.BlockBytes()
	data := make([]byte, nb*bb)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for i := range nb {
		b := data[i*bb : (i+1)*bb]
		// d (and dmin) offsets and the scale bytes.
		var ds []int
		var sc []byte
		switch t {
		case quant.Q6_K:
			ds, sc = []int{208}, b[192:208]
		default:
			ds, sc = []int{0, 2}, b[4:16]
		}
		for _, o := range ds {
			putF16(b[o:], randF16(r, false))
		}
		switch flavour {
		case "zero":
			clear(b)
		case "max scales":
			for j := range sc {
				sc[j] = 0xff
			}
			if t == quant.Q6_K {
				for j := range sc {
					sc[j] = []byte{0x7f, 0x80}[j%2] // +127, −128
				}
			}
		case "min scales":
			clear(sc)
		case "huge d":
			for _, o := range ds {
				putF16(b[o:], 0x7bff) // 65504
			}
		case "tiny d":
			for _, o := range ds {
				putF16(b[o:], uint16(1+r.IntN(3))) // subnormal halves
			}
		case "negative d":
			for _, o := range ds {
				putF16(b[o:], randF16(r, true))
			}
		case "mixed":
			// One sub-block scale at each extreme, the rest random.
			sc[r.IntN(len(sc))] = 0
			sc[r.IntN(len(sc))] = 0xff
			if r.IntN(2) == 0 {
				putF16(b[ds[0]:], 0)
			}
		}
	}
	return data
}

// kMins returns, for each value of the K-quant row, the magnitude of the
// min subtracted from it (zero for Q6_K): a dot kernel may compute
// d1·Σx·q − m1·Σx, so its rounding error is bounded by Σ|x|·(|w| + m1),
// not only Σ|x·w|.
func kMins(t quant.Type, row []byte) []float64 {
	bb := t.BlockBytes()
	out := make([]float64, len(row)/bb*quant.QKK)
	if t == quant.Q6_K {
		return out
	}
	for i := 0; i < len(row)/bb; i++ {
		b := row[i*bb:]
		dm := f16(b[2:])
		_, mn := kScales((*[12]byte)(b[4:16]))
		for v := range quant.QKK {
			out[i*quant.QKK+v] = math.Abs(float64(dm * float32(mn[v/32])))
		}
	}
	return out
}

// TestKQuantRowKernels checks every K-quant row kernel of every kernel set
// against quant.Dequantize (the reference decoder, bit-identical to
// llama.cpp's) on raw random super-blocks of every flavour, for runs of 1,
// 2, 3, 7, 8 and 13 super-blocks that start after the first block of the
// row: dequantization must give the very same values, the dot and axpy
// results agree up to float32 rounding, and nothing is written past the
// run.
func TestKQuantRowKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, typ := range kTypes {
		bb := typ.BlockBytes()
		for _, flavour := range kFlavours {
			for _, nb := range []int{1, 2, 3, 7, 8, 13} {
				data := randKBlocks(r, typ, nb+1, flavour)
				row := data[bb:] // not at the start of the row
				cols := nb * quant.QKK
				vals := make([]float32, cols)
				if err := quant.Dequantize(typ, row, vals); err != nil {
					t.Fatal(err)
				}
				mins := kMins(typ, row)
				x := values(r, cols, "normal")
				var want, scale float64
				for i, v := range vals {
					want += float64(v) * float64(x[i])
					scale += math.Abs(float64(x[i])) * (math.Abs(float64(v)) + mins[i])
				}
				for _, k := range availableKernels() {
					rk := k.rows[typ]
					if rk.dot == nil || rk.dequant == nil || rk.axpy == nil {
						t.Fatalf("%s has no %s row kernels", k.name, typ)
					}
					name := fmt.Sprintf("%s/%s/%s/%d blocks", k.name, typ, flavour, nb)
					if got := rk.dot(x, row); !within(got, want, scale) {
						t.Errorf("%s: dot = %g, want %g (bound %g)", name, got, want, 2e-5*scale)
					}
					requireDequant(t, name, rk.dequant, row, vals)
					y := values(r, cols+1, "normal")
					y0 := append([]float32(nil), y...)
					const alpha = -1.5
					rk.axpy(alpha, row, y)
					for i, v := range vals {
						want := float64(y0[i]) + alpha*float64(v)
						if !within(y[i], want, math.Abs(float64(y0[i]))+math.Abs(alpha*float64(v))) {
							t.Fatalf("%s: axpy[%d] = %g, want %g", name, i, y[i], want)
						}
					}
					if y[cols] != y0[cols] {
						t.Fatalf("%s: axpy wrote past the end", name)
					}
				}
			}
		}
	}
}

// TestKQuantMatMul runs MatMul and MatMulT on K-quant matrices (quantized
// by quant's reference quantizers, and raw random blocks) through every
// kernel set, for n = 1, 2, 4, 5, 64 and 300 inputs (the fused-dot, 1×4 and
// blocked paths), against float64 math on the values the matrix holds and
// against MatMulRef.
func TestKQuantMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	shapes := []struct{ rows, cols int }{{5, 1792}, {33, 512}, {130, 256}}
	ns := []int{1, 2, 4, 5, 64, 300}
	if testing.Short() || raceEnabled {
		ns = []int{1, 2, 4, 5, 64}
	}
	for _, typ := range kTypes {
		for si, sh := range shapes {
			var m *Matrix
			if si == 0 {
				// Raw blocks: every level and scale pattern.
				data := randKBlocks(r, typ, sh.rows*sh.cols/quant.QKK, "random")
				var err error
				if m, err = NewMatrix(typ, sh.rows, sh.cols, data); err != nil {
					t.Fatal(err)
				}
			} else {
				var err error
				if m, err = Quantized(typ, sh.rows, sh.cols, values(r, sh.rows*sh.cols, "spiky")); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range ns {
				x := values(r, n*sh.cols, "normal")
				ref := make([]float32, n*sh.rows)
				MatMulRef(ref, x, n, m)
				_, scale := dense64(m.Float32(), sh.rows, sh.cols, x, n)
				for _, k := range availableKernels() {
					name := fmt.Sprintf("%s/%s/%dx%d/n%d", k.name, typ, sh.rows, sh.cols, n)
					checkMatMul(t, name, k, m, r, n, "normal")
					got := make([]float32, n*sh.rows)
					matMul(k, got, x, n, m)
					for i := range got {
						if !within(got[i], float64(ref[i]), 2*scale[i]) {
							t.Fatalf("%s: MatMul out[%d] = %g, MatMulRef %g", name, i, got[i], ref[i])
						}
					}
				}
			}
		}
	}
}

// TestKQuantKernelsUsed makes sure the SIMD sets run assembly for the
// K-quants (not the pure-Go fallback), and that every set has kernels for
// them.
func TestKQuantKernelsUsed(t *testing.T) {
	for _, k := range availableKernels() {
		for _, typ := range kTypes {
			rk := k.rows[typ]
			if rk.dot == nil || rk.dequant == nil || rk.axpy == nil {
				t.Fatalf("%s: no %s row kernels", k.name, typ)
			}
			goDot := fmt.Sprintf("%p", kquantGo[typ].dot)
			if k != generic {
				if fmt.Sprintf("%p", rk.dot) == goDot {
					t.Errorf("%s runs the pure-Go %s dot", k.name, typ)
				}
			}
		}
	}
}
