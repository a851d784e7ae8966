package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"orchmind/engine/quant"
)

// randAct returns an activation of nb blocks with random int8 values in
// [−127, 127] (the quantizer's range) and scales d (all 1 when unit).
func randAct(r *rand.Rand, nb int, unit bool) *quant.Q8Act {
	a := &quant.Q8Act{Q: make([]int8, nb*quant.QK), D: make([]float32, nb), M128: make([]int32, nb), M8: make([]int32, nb)}
	for b := range nb {
		var s int32
		for i := range quant.QK {
			q := int8(r.IntN(255) - 127)
			a.Q[b*quant.QK+i] = q
			s += int32(q)
		}
		a.D[b] = 1
		if !unit {
			a.D[b] = float32(r.Float64()*0.02 + 1e-4)
		}
		a.M128[b], a.M8[b] = -128*s, -8*s
	}
	return a
}

// randIntRow returns nb random blocks of typ (Q8_0 values over the whole
// int8 range, −128 included; Q4_0 all nibbles; Q4_K all nibbles and 6-bit
// scales and mins) with scale 1 when unit (Q4_K: d = dmin = 1 and scales,
// mins ≤ 3, so sums stay exact in float32).
func randIntRow(r *rand.Rand, typ quant.Type, nb int, unit bool) []byte {
	bb := typ.BlockBytes()
	if typ == quant.Q6_K {
		row := make([]byte, nb*bb)
		for b := range nb {
			blk := row[b*bb : (b+1)*bb]
			for i := range 192 {
				blk[i] = byte(r.IntN(256))
			}
			for i := 192; i < 208; i++ {
				if unit {
					blk[i] = byte(int8(r.IntN(7) - 3)) // scales −3…3: sums stay exact
				} else {
					blk[i] = byte(int8(r.IntN(255) - 127))
				}
			}
			h := quant.F32ToF16(1)
			if !unit {
				h = quant.F32ToF16(float32(r.Float64()*0.001 + 1e-5))
			}
			blk[208], blk[209] = byte(h), byte(h>>8)
		}
		return row
	}
	if typ == quant.Q4_K {
		row := make([]byte, nb*bb)
		for b := range nb {
			blk := row[b*bb : (b+1)*bb]
			for i := 4; i < bb; i++ {
				blk[i] = byte(r.IntN(256))
			}
			d, dm := quant.F32ToF16(1), quant.F32ToF16(1)
			if unit {
				for i := 4; i < 16; i++ {
					blk[i] &= 0x03 // every 6-bit scale and min ≤ 3
					if i >= 12 {
						blk[i] |= byte(r.IntN(4)) << 4
					}
				}
			} else {
				d, dm = quant.F32ToF16(float32(r.Float64()*0.01+1e-4)), quant.F32ToF16(float32(r.Float64()*0.01))
			}
			blk[0], blk[1], blk[2], blk[3] = byte(d), byte(d>>8), byte(dm), byte(dm>>8)
		}
		return row
	}
	row := make([]byte, nb*bb)
	for b := range nb {
		blk := row[b*bb : (b+1)*bb]
		for i := 2; i < bb; i++ {
			blk[i] = byte(r.IntN(256))
		}
		h := quant.F32ToF16(1)
		if !unit {
			h = quant.F32ToF16(float32(r.Float64()*0.05 + 1e-3))
		}
		blk[0], blk[1] = byte(h), byte(h>>8)
	}
	return row
}

// intDot is Σ w·q over the row in int64, straight from the block layout
// (Q4_K with d = dmin = 1: w = sc·u − mn; Q6_K with d = 1: w = sc·(u−32);
// both from quant's decoder).
func intDot(typ quant.Type, row []byte, a *quant.Q8Act) int64 {
	bb := typ.BlockBytes()
	if typ == quant.Q4_K || typ == quant.Q6_K {
		var s int64
		w := make([]float32, quant.QKK)
		for b := range len(row) / bb {
			if err := quant.Dequantize(typ, row[b*bb:(b+1)*bb], w); err != nil {
				panic(err)
			}
			for i, v := range w {
				s += int64(v) * int64(a.Q[b*quant.QKK+i])
			}
		}
		return s
	}
	var s int64
	for b := range len(row) / bb {
		blk, q := row[b*bb+2:(b+1)*bb], a.Q[b*quant.QK:]
		for i := range quant.QK {
			var w int64
			if typ == quant.Q8_0 {
				w = int64(int8(blk[i]))
			} else if i < 16 {
				w = int64(blk[i]&15) - 8
			} else {
				w = int64(blk[i-16]>>4) - 8
			}
			s += w * int64(q[i])
		}
	}
	return s
}

// With every scale 1 the kernels' result is the integer sum itself
// (exactly representable in float32 at these sizes): every set must
// return it exactly, whatever the block count and its parity.
func TestInt8KernelsExactIntegerSums(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for _, s := range availableInt8() {
		for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K} {
			if s.dots[typ] == nil {
				continue
			}
			for _, nb := range []int{0, 1, 2, 3, 8, 17} {
				for range 20 {
					row, a := randIntRow(r, typ, nb, true), randAct(r, nb*typ.BlockSize()/quant.QK, true)
					want := intDot(typ, row, a)
					if got := s.dots[typ](a, row); float64(got) != float64(want) {
						t.Fatalf("%s %s nb=%d: got %v, want the integer sum %d", s.name, typ, nb, got, want)
					}
				}
			}
		}
	}
}

// Extreme blocks: all weights −128 (Q8_0's |w| = 128 with the sign trick)
// or 127 against activations all ±127 stay exact (no int16 saturation).
func TestInt8KernelsExtremes(t *testing.T) {
	for _, s := range availableInt8() {
		for _, wv := range []int8{-128, 127, -1} {
			for _, qv := range []int8{127, -127} {
				row := make([]byte, 4*34)
				a := &quant.Q8Act{Q: make([]int8, 4*32), D: []float32{1, 1, 1, 1}, M128: make([]int32, 4), M8: make([]int32, 4)}
				for b := range 4 {
					row[b*34], row[b*34+1] = 0x00, 0x3C // f16 1.0
					for i := range 32 {
						row[b*34+2+i] = byte(wv)
						a.Q[b*32+i] = qv
					}
					a.M128[b], a.M8[b] = -128*32*int32(qv), -8*32*int32(qv)
				}
				want := 4 * 32 * int64(wv) * int64(qv)
				if got := s.dots[quant.Q8_0](a, row); float64(got) != float64(want) {
					t.Errorf("%s Q8_0 w=%d q=%d: got %v, want %d", s.name, wv, qv, got, want)
				}
			}
		}
	}
}

// With random scales every set matches the pure-Go reference up to the
// float32 rounding of the scaled block sums.
func TestInt8KernelsMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, s := range availableInt8()[1:] {
		for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K} {
			if s.dots[typ] == nil {
				continue
			}
			for _, nb := range []int{1, 2, 5, 18, 64} {
				row, a := randIntRow(r, typ, nb, false), randAct(r, nb*typ.BlockSize()/quant.QK, false)
				want := float64(int8Go.dots[typ](a, row))
				// Σ|terms| bound: Σ|w|·|x| in float64 from the dequantized row.
				w := make([]float32, nb*typ.BlockSize())
				if err := quant.Dequantize(typ, row, w); err != nil {
					t.Fatal(err)
				}
				var scale float64
				for i, v := range w {
					scale += math.Abs(float64(v) * float64(a.D[i/quant.QK]) * float64(a.Q[i]))
				}
				if got := s.dots[typ](a, row); !within(got, want, scale) {
					t.Errorf("%s %s nb=%d: got %v, want %v", s.name, typ, nb, got, want)
				}
			}
		}
	}
}

// QuantizeAct keeps each value within half a step of its block's scale,
// with the block sums the kernels rely on, and refuses partial blocks.
func TestQuantizeAct(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 10))
	var a quant.Q8Act
	for _, flavour := range []string{"normal", "large", "spiky"} {
		x := values(r, 5*quant.QK, flavour)
		x[3] = 0
		if err := quant.QuantizeAct(&a, x); err != nil {
			t.Fatal(err)
		}
		for b := range a.Blocks() {
			var s int32
			for i := range quant.QK {
				v, q := x[b*quant.QK+i], a.Q[b*quant.QK+i]
				if d := math.Abs(float64(v) - float64(a.D[b])*float64(q)); d > 0.5001*float64(a.D[b]) {
					t.Fatalf("%s block %d value %d: %v quantized to %d·%v", flavour, b, i, v, q, a.D[b])
				}
				s += int32(q)
			}
			if a.M128[b] != -128*s || a.M8[b] != -8*s {
				t.Fatalf("block %d: corrections %d, %d for Σq = %d", b, a.M128[b], a.M8[b], s)
			}
		}
	}
	zero := make([]float32, quant.QK)
	if err := quant.QuantizeAct(&a, zero); err != nil || a.D[0] != 0 || a.Q[0] != 0 {
		t.Fatalf("zeros: %v, d=%v", err, a.D[0])
	}
	if err := quant.QuantizeAct(&a, make([]float32, 33)); err == nil {
		t.Fatal("33 values quantized without error")
	}
}

// Every set's quantizer gives quant.QuantizeAct's bytes, scales and sums,
// halves and zero blocks included.
func TestQuantizersMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 13))
	for _, s := range availableInt8()[1:] {
		for _, flavour := range []string{"normal", "large", "spiky"} {
			for _, nb := range []int{0, 1, 3, 18} {
				x := values(r, nb*quant.QK, flavour)
				if nb > 1 {
					clear(x[quant.QK : 2*quant.QK]) // a zero block
					// exact halves after scaling: 127·(k+0.5)/127.5 style values
					x[0], x[1], x[2] = 127, 0.5, 1.5
				}
				var want, got quant.Q8Act
				if err := quant.QuantizeAct(&want, x); err != nil {
					t.Fatal(err)
				}
				if err := s.quantize(&got, x); err != nil {
					t.Fatal(err)
				}
				for i := range want.Q {
					if got.Q[i] != want.Q[i] {
						t.Fatalf("%s %s nb=%d value %d (%v): q %d, want %d", s.name, flavour, nb, i, x[i], got.Q[i], want.Q[i])
					}
				}
				for b := range want.D {
					if got.D[b] != want.D[b] || got.M128[b] != want.M128[b] || got.M8[b] != want.M8[b] {
						t.Fatalf("%s %s block %d: d %v m %d %d, want %v %d %d", s.name, flavour, b, got.D[b], got.M128[b], got.M8[b], want.D[b], want.M128[b], want.M8[b])
					}
				}
			}
		}
	}
}

// matMulInt8 with every set stays within the activation's quantization
// error of the exact product: per output, |error| ≤ Σ_b |d_x,b|/2·Σ|w|.
// It also equals the reference set's result up to float32 rounding.
func TestMatMulInt8VsDense(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K} {
		for _, sh := range []struct{ rows, cols, n int }{{7, 256, 1}, {65, 512, 2}, {300, 768, 3}} {
			m, err := Quantized(typ, sh.rows, sh.cols, randVals(r, sh.rows*sh.cols))
			if err != nil {
				t.Fatal(err)
			}
			wf := m.Float32()
			x := values(r, sh.n*sh.cols, "normal")
			want, _ := dense64(wf, sh.rows, sh.cols, x, sh.n)
			var a quant.Q8Act
			bound := make([]float64, sh.n*sh.rows)
			for i := range sh.n {
				_ = quant.QuantizeAct(&a, x[i*sh.cols:(i+1)*sh.cols])
				for row := range sh.rows {
					for k := range sh.cols {
						bound[i*sh.rows+row] += float64(a.D[k/quant.QK]) / 2 * math.Abs(float64(wf[row*sh.cols+k]))
					}
				}
			}
			ref := make([]float32, sh.n*sh.rows)
			matMulInt8(int8Go, ref, x, sh.n, m)
			for _, s := range availableInt8() {
				if s.dots[typ] == nil {
					continue
				}
				got := make([]float32, sh.n*sh.rows)
				matMulInt8(s, got, x, sh.n, m)
				for i, g := range got {
					if e := math.Abs(float64(g) - want[i]); e > bound[i]*1.001+1e-6 {
						t.Fatalf("%s %s %dx%d n=%d out %d: %v vs exact %v (error %.3g > bound %.3g)", s.name, typ, sh.rows, sh.cols, sh.n, i, g, want[i], e, bound[i])
					}
					if math.Abs(float64(g-ref[i])) > 1e-5*bound[i]*127+1e-6 {
						t.Fatalf("%s %s out %d: %v vs reference %v", s.name, typ, i, g, ref[i])
					}
				}
			}
		}
	}
}

// ORCHMIND_INT8=off turns the integer path off; otherwise a set's wins
// apply, and neon has none.
func TestChooseInt8(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "ORCHMIND_INT8" {
				return v
			}
			return ""
		}
	}
	if c := chooseInt8(env("off"), ISAGeneric); !c.off || c.set != nil {
		t.Errorf("ORCHMIND_INT8=off: %+v", c)
	}
	if c := chooseInt8(env(""), ISAGeneric); c.set != nil {
		t.Errorf("generic: the pure-Go integer kernels are slower, got set %s", c.set.name)
	}
	if c := chooseInt8(env(""), ISAAVX2); int8For(ISAAVX2) != nil && (c.set == nil || len(c.wins) == 0) {
		t.Errorf("avx2: no integer path (%+v)", c)
	}
	if c := chooseInt8(env(""), ISANEON); c.set != nil {
		t.Errorf("neon has no integer kernels, got %s", c.set.name)
	}
	if s := Int8Summary(); s == "" {
		t.Error("empty summary")
	}
}

// BenchmarkMatVecInt8 compares, per row type, shape and kernel set, one
// matrix-vector product of generation on the float32 path (fused dot on
// the stored row: float/) with the integer path (activation quantized,
// then int8 dot products: int8-<set>/), in one run. ns/op and GB/s of
// weights read.
//
//	go test -run '^$' -bench 'MatVecInt8' -benchtime 200x ./engine/tensor/
func BenchmarkMatVecInt8(b *testing.B) {
	r := rand.New(rand.NewPCG(12, 12))
	shapes := []struct{ rows, cols int }{{288, 288}, {1536, 576}, {2048, 2048}, {8192, 2048}, {2048, 8192}}
	for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K} {
		for _, sh := range shapes {
			if sh.cols%typ.BlockSize() != 0 {
				continue
			}
			m := benchMatrix(b, benchCase{typ: typ, rows: sh.rows, cols: sh.cols})
			x, out := randVals(r, sh.cols), make([]float32, sh.rows)
			report := func(b *testing.B) {
				b.ReportMetric(float64(len(m.Data))*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			}
			for _, k := range availableKernels() {
				b.Run(fmt.Sprintf("%s_%dx%d/float-%s", typ, sh.rows, sh.cols, k.name), func(b *testing.B) {
					for b.Loop() {
						matMul(k, out, x, 1, m)
					}
					report(b)
				})
			}
			for _, s := range availableInt8() {
				if s.dots[typ] == nil {
					continue
				}
				b.Run(fmt.Sprintf("%s_%dx%d/int8-%s", typ, sh.rows, sh.cols, s.name), func(b *testing.B) {
					for b.Loop() {
						matMulInt8(s, out, x, 1, m)
					}
					report(b)
				})
			}
		}
	}
}

// BenchmarkInt8VsF32 times, per row type, shape and kernel set, one
// generation matrix-vector product on the integer path (activation
// quantized, int8 dot products) against the float32 fused dot of the same
// kernel set (avx2 float vs int8 VPMADDUBSW; avx512 float vs int8
// VPDPBUSD; arm64 neon float vs dotprod's SDOT; generic vs the pure-Go
// reference), alternating the two 30 times per iteration; it reports the
// median speed-up float-time/int8-time with its spread and both median
// times. On a shared machine the ratio is the figure to trust.
//
//	go test -run '^$' -bench Int8VsF32 -benchtime 3x ./engine/tensor/
func BenchmarkInt8VsF32(b *testing.B) {
	r := rand.New(rand.NewPCG(14, 14))
	shapes := []struct{ rows, cols int }{{288, 288}, {768, 288}, {1536, 576}, {2048, 2048}, {8192, 2048}, {2048, 8192}}
	for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K} {
		for _, sh := range shapes {
			if sh.cols%typ.BlockSize() != 0 {
				continue
			}
			seen := map[[2]string]bool{}
			for _, level := range ISAs() {
				// the float32 kernels and the integer kernels of this set
				// (arm64: neon's float32 kernels with dotprod's SDOT)
				k, s := kernelsFor(level), int8For(level)
				if s == nil || s.dots[typ] == nil || seen[[2]string{k.name, s.name}] {
					continue
				}
				seen[[2]string{k.name, s.name}] = true
				b.Run(fmt.Sprintf("%s_%dx%d/%s-vs-int8-%s", typ, sh.rows, sh.cols, k.name, s.name), func(b *testing.B) {
					m := benchMatrix(b, benchCase{typ: typ, rows: sh.rows, cols: sh.cols})
					x, out := randVals(r, sh.cols), make([]float32, sh.rows)
					var rs, ta, tb []float64
					for b.Loop() {
						ratio, _, _, a, c := abMedian(30,
							func() { matMul(k, out, x, 1, m) },
							func() { matMulInt8(s, out, x, 1, m) })
						rs, ta, tb = append(rs, ratio), append(ta, float64(a.Nanoseconds())), append(tb, float64(c.Nanoseconds()))
					}
					b.ReportMetric(median(rs), "speedup")
					b.ReportMetric(minOf(rs), "speedup-min")
					b.ReportMetric(maxOf(rs), "speedup-max")
					b.ReportMetric(median(ta)/1e3, "float-µs")
					b.ReportMetric(median(tb)/1e3, "int8-µs")
				})
			}
		}
	}
}

// Short slices panic with checkShapes' message on the integer path too,
// before any assembly sees them, for every set.
func TestInt8ShortSlicesPanicClearly(t *testing.T) {
	m, _ := Quantized(quant.Q8_0, 4, 64, make([]float32, 256))
	for _, s := range availableInt8() {
		for _, tc := range []struct {
			name string
			f    func()
			msg  string
		}{
			{"short x", func() { matMulInt8(s, make([]float32, 8), make([]float32, 100), 2, m) }, "input has 100 values"},
			{"short out", func() { matMulInt8(s, make([]float32, 7), make([]float32, 128), 2, m) }, "output has 7 values"},
			{"short data", func() {
				matMulInt8(s, make([]float32, 4), make([]float32, 64), 1, &Matrix{Type: quant.Q8_0, Rows: 4, Cols: 64})
			}, "has 0 bytes"},
		} {
			func() {
				defer func() {
					p := recover()
					if msg, _ := p.(string); !strings.Contains(msg, "MatMulInt8") || !strings.Contains(msg, tc.msg) {
						t.Errorf("%s %s: panic %v, want one from MatMulInt8 mentioning %q", s.name, tc.name, p, tc.msg)
					}
				}()
				tc.f()
			}()
		}
	}
}
