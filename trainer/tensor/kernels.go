package tensor

// MatMul computes out[n×Rows] = x[n×Cols]·Wᵀ (a linear layer applied to n
// input vectors). It is the hot path of inference and training.
func MatMul(out, x []float32, n int, w *Matrix) { MatMulRef(out, x, n, w) }

// MatMulT computes out[n×Cols] = dy[n×Rows]·W (the input gradient of a
// linear layer), overwriting out.
func MatMulT(out, dy []float32, n int, w *Matrix) { MatMulTRef(out, dy, n, w) }
