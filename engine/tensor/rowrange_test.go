package tensor

import (
	"math/rand/v2"
	"testing"

	"orchmind/engine/quant"
)

// TestRowRange: a row range of a quantized matrix is a view of the same
// bytes whose products (MatMul, MatMulT, in float32 and bfloat16) are the
// matching columns of the whole matrix's, and a range outside the matrix
// panics with the range in the message.
func TestRowRange(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const rows, cols, n = 200, 64, 40
	for _, typ := range []quant.Type{quant.F32, quant.Q8_0, quant.Q4_0} {
		w, err := Quantized(typ, rows, cols, randVals(r, rows*cols))
		if err != nil {
			t.Fatal(err)
		}
		x := randVals(r, n*cols)
		full := make([]float32, n*rows)
		MatMul(full, x, n, w)
		for _, rg := range [][2]int{{0, rows}, {32, 96}, {150, 200}, {7, 8}} {
			v := w.RowRange(rg[0], rg[1])
			k := rg[1] - rg[0]
			if v.Rows != k || v.Cols != cols || &v.Data[0] != &w.Data[rg[0]*w.RowBytes()] {
				t.Fatalf("%s rows %v: view %d×%d not on the matrix's bytes", typ, rg, v.Rows, v.Cols)
			}
			part := make([]float32, n*k)
			MatMul(part, x, n, v)
			for i := range n {
				for j := range k {
					if part[i*k+j] != full[i*rows+rg[0]+j] {
						t.Fatalf("%s rows %v: MatMul (%d,%d) = %g, whole matrix %g", typ, rg, i, j, part[i*k+j], full[i*rows+rg[0]+j])
					}
				}
			}
			// dy·W over the range equals dy padded with zeros outside it
			// times the whole matrix.
			dy := randVals(r, n*k)
			pad := make([]float32, n*rows)
			for i := range n {
				copy(pad[i*rows+rg[0]:], dy[i*k:(i+1)*k])
			}
			got, want := make([]float32, n*cols), make([]float32, n*cols)
			MatMulT(got, dy, n, v)
			MatMulT(want, pad, n, w)
			for i := range got {
				if d := got[i] - want[i]; d > 1e-4 || d < -1e-4 {
					t.Fatalf("%s rows %v: MatMulT[%d] = %g, whole matrix %g", typ, rg, i, got[i], want[i])
				}
			}
			if BF16Tiles() {
				MatMulTBF16(got, dy, n, v)
				MatMulTBF16(want, pad, n, w)
				for i := range got {
					if d := got[i] - want[i]; d > 1e-3 || d < -1e-3 {
						t.Fatalf("%s rows %v: MatMulTBF16[%d] = %g, whole matrix %g", typ, rg, i, got[i], want[i])
					}
				}
			}
		}
	}
	for _, rg := range [][2]int{{-1, 3}, {5, 4}, {0, 201}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RowRange(%d, %d) of 200 rows did not panic", rg[0], rg[1])
				}
			}()
			m, _ := Quantized(quant.Q8_0, 200, 32, make([]float32, 200*32))
			m.RowRange(rg[0], rg[1])
		}()
	}
}
