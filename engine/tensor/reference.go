package tensor

// MatMulRef is the plain-Go reference of MatMul: out[n×Rows] = x[n×Cols]·Wᵀ.
// It dequantizes each row once and is kept simple so that the fast kernels
// can be tested against it.
func MatMulRef(out, x []float32, n int, w *Matrix) {
	row := make([]float32, w.Cols)
	for r := 0; r < w.Rows; r++ {
		w.DequantizeRow(r, row)
		for i := 0; i < n; i++ {
			xi := x[i*w.Cols : (i+1)*w.Cols]
			var s float32
			for k, v := range row {
				s += v * xi[k]
			}
			out[i*w.Rows+r] = s
		}
	}
}

// MatMulTRef is the plain-Go reference of MatMulT: out[n×Cols] = dy[n×Rows]·W,
// the input gradient of a linear layer.
func MatMulTRef(out, dy []float32, n int, w *Matrix) {
	clear(out[:n*w.Cols])
	row := make([]float32, w.Cols)
	for r := 0; r < w.Rows; r++ {
		w.DequantizeRow(r, row)
		for i := 0; i < n; i++ {
			g := dy[i*w.Rows+r]
			if g == 0 {
				continue
			}
			o := out[i*w.Cols : (i+1)*w.Cols]
			for k, v := range row {
				o[k] += g * v
			}
		}
	}
}
