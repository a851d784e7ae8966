package tensor

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"orchmind/engine/quant"
)

// groupSets lists the integer kernel sets this CPU runs that have group
// kernels for typ.
func groupSets(typ quant.Type) []*int8Set {
	var out []*int8Set
	for _, s := range availableInt8() {
		if _, ok := s.groups[typ]; ok {
			out = append(out, s)
		}
	}
	return out
}

// intMatrix returns rows random rows of nb blocks of typ (randIntRow) as
// a Matrix.
func intMatrix(r *rand.Rand, typ quant.Type, rows, nb int, unit bool) *Matrix {
	var data []byte
	for range rows {
		data = append(data, randIntRow(r, typ, nb, unit)...)
	}
	return &Matrix{Type: typ, Rows: rows, Cols: nb * typ.BlockSize(), Data: data}
}

// With every scale 1 each group kernel returns every row's integer sum
// exactly, for block counts 0–17 (odd and even) and several groups, and
// matMulInt8 (groups, then the rows left over) gives the same.
func TestInt8GroupKernelsExactIntegerSums(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 21))
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q8_0, quant.Q4_K} {
		for _, s := range groupSets(typ) {
			gk := s.groups[typ]
			for _, nb := range []int{0, 1, 2, 3, 8, 17} {
				rows := 3*gk.group + 5
				w := intMatrix(r, typ, rows, nb, true)
				a := randAct(r, nb*typ.BlockSize()/quant.QK, true)
				sc := w.groupScales(gk.group)
				out := make([]float32, gk.group)
				for g := range rows / gk.group {
					gk.dot(a, w, sc, g*gk.group, out)
					for i, got := range out {
						rb := len(w.Data) / rows
						row := w.Data[(g*gk.group+i)*rb : (g*gk.group+i+1)*rb]
						if want := intDot(typ, row, a); float64(got) != float64(want) {
							t.Fatalf("%s %s nb=%d row %d: got %v, want the integer sum %d", s.name, typ, nb, g*gk.group+i, got, want)
						}
					}
				}
			}
		}
	}
}

// Extreme blocks (every nibble 0 or 15, every weight −128 or 127, against
// activations all ±127) stay exact.
func TestInt8GroupKernelsExtremes(t *testing.T) {
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q8_0} {
		for _, s := range groupSets(typ) {
			gk := s.groups[typ]
			bb := typ.BlockBytes()
			for _, wb := range []byte{0x00, 0xff, 0x80, 0x7f} {
				for _, qv := range []int8{127, -127} {
					const nb = 5
					w := &Matrix{Type: typ, Rows: gk.group, Cols: nb * quant.QK, Data: make([]byte, gk.group*nb*bb)}
					for b := range gk.group * nb {
						w.Data[b*bb], w.Data[b*bb+1] = 0x00, 0x3C // f16 1.0
						for i := 2; i < bb; i++ {
							w.Data[b*bb+i] = wb
						}
					}
					a := randAct(rand.New(rand.NewPCG(1, 1)), nb, true)
					for b := range nb {
						for i := range quant.QK {
							a.Q[b*quant.QK+i] = qv
						}
						a.M128[b], a.M8[b] = -128*32*int32(qv), -8*32*int32(qv)
					}
					out := make([]float32, gk.group)
					gk.dot(a, w, w.groupScales(gk.group), 0, out)
					rb := nb * bb
					for i, got := range out {
						if want := intDot(typ, w.Data[i*rb:(i+1)*rb], a); float64(got) != float64(want) {
							t.Fatalf("%s %s bytes %#x q=%d row %d: got %v, want %d", s.name, typ, wb, qv, i, got, want)
						}
					}
				}
			}
		}
	}
}

// With random scales the group path of matMulInt8 matches the pure-Go
// reference row by row up to float32 rounding, including the rows after
// the last whole group.
func TestInt8GroupKernelsMatchGo(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 22))
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q8_0, quant.Q4_K} {
		for _, s := range groupSets(typ) {
			g := s.groups[typ].group
			for _, nb := range []int{1, 2, 5, 9, 36} {
				rows := 2*g + 3
				w := intMatrix(r, typ, rows, nb, false)
				x := values(r, nb*typ.BlockSize(), "normal")
				want, got := make([]float32, rows), make([]float32, rows)
				matMulInt8(int8Go, want, x, 1, w)
				matMulInt8(s, got, x, 1, w)
				var a quant.Q8Act
				_ = quant.QuantizeAct(&a, x)
				rb := len(w.Data) / rows
				deq := make([]float32, nb*typ.BlockSize())
				for i := range rows {
					if err := quant.Dequantize(typ, w.Data[i*rb:(i+1)*rb], deq); err != nil {
						t.Fatal(err)
					}
					var scale float64
					for k, v := range deq {
						scale += math.Abs(float64(v) * float64(a.D[k/quant.QK]) * float64(a.Q[k]))
					}
					if !within(got[i], float64(want[i]), scale) {
						t.Errorf("%s %s nb=%d row %d: got %v, want %v", s.name, typ, nb, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// The scale table follows the matrix's data: a Matrix whose Data is
// replaced gets a new table, and one made once is reused.
func TestInt8GroupScalesFollowData(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 23))
	w := intMatrix(r, quant.Q4_0, 32, 3, false)
	s1 := w.groupScales(16)
	if s2 := w.groupScales(16); s2 != s1 {
		t.Error("scale table made twice for the same data")
	}
	w2 := intMatrix(r, quant.Q4_0, 32, 3, false)
	w.Data = w2.Data
	s3 := w.groupScales(16)
	if s3 == s1 {
		t.Fatal("scale table kept after Data was replaced")
	}
	for i := range len(s3.tab) / 2 {
		v := uint16(s3.tab[2*i]) | uint16(s3.tab[2*i+1])<<8
		g, rest := i/(3*16), i%(3*16)
		b, row := rest/16, rest%16
		off := (g*16+row)*3*18 + b*18
		if want := uint16(w.Data[off]) | uint16(w.Data[off+1])<<8; v != want {
			t.Fatalf("table entry %d = %#x, want row %d block %d's scale %#x", i, v, g*16+row, b, want)
		}
	}
}

// BenchmarkInt8GroupVsRow times, per row type, shape and integer kernel
// set with group kernels, one generation matrix-vector product with the
// group kernels against the same set's one-row kernels, alternating the
// two 30 times per iteration (one thread: GOMAXPROCS=1 for the kernel
// alone); it reports the median speed-up row-time/group-time with its
// spread, both median times and the group path's GB/s of weights.
//
//	GOMAXPROCS=1 go test -run '^$' -bench Int8GroupVsRow -benchtime 3x ./engine/tensor/
func BenchmarkInt8GroupVsRow(b *testing.B) {
	r := rand.New(rand.NewPCG(24, 24))
	shapes := []struct{ rows, cols int }{{1024, 1152}, {6912, 1152}, {1152, 6912}, {2048, 2048}, {8192, 2048}, {65536, 1152}, {16384, 4096}}
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q8_0, quant.Q4_K} {
		for _, sh := range shapes {
			if sh.cols%typ.BlockSize() != 0 {
				continue
			}
			for _, s := range groupSets(typ) {
				rowOnly := &int8Set{name: s.name, quantize: s.quantize, dots: s.dots}
				b.Run(fmt.Sprintf("%s_%dx%d/%s", typ, sh.rows, sh.cols, s.name), func(b *testing.B) {
					m := benchMatrix(b, benchCase{typ: typ, rows: sh.rows, cols: sh.cols})
					x, out := randVals(r, sh.cols), make([]float32, sh.rows)
					var rs, ta, tb []float64
					for b.Loop() {
						ratio, _, _, a, c := abMedian(30,
							func() { matMulInt8(rowOnly, out, x, 1, m) },
							func() { matMulInt8(s, out, x, 1, m) })
						rs, ta, tb = append(rs, ratio), append(ta, float64(a.Nanoseconds())), append(tb, float64(c.Nanoseconds()))
					}
					b.ReportMetric(median(rs), "speedup")
					b.ReportMetric(minOf(rs), "speedup-min")
					b.ReportMetric(maxOf(rs), "speedup-max")
					b.ReportMetric(median(ta)/1e3, "row-µs")
					b.ReportMetric(median(tb)/1e3, "group-µs")
					b.ReportMetric(float64(len(m.Data))/median(tb), "group-GB/s")
				})
			}
		}
	}
}
