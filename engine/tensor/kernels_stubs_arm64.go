package tensor

// Declarations of the hand-written NEON kernels in kernels_arm64.s. Every
// count must be a multiple of what its comment says; the wrappers in simd.go
// check slice bounds and finish tails in Go. None of them keeps a pointer,
// hence go:noescape.

// dotF32NEON returns Σ a[i]·b[i] over n elements; n must be a multiple of 4.
//
//go:noescape
func dotF32NEON(a, b *float32, n int) float32

// axpyF32NEON computes y[i] += alpha·x[i] over n elements; n must be a multiple of 4.
//
//go:noescape
func axpyF32NEON(alpha float32, x, y *float32, n int)

// dot4F32NEON computes out[j] = Σ row[i]·x[j·stride+i] for j < 4 over n elements; n must be a multiple of 4.
//
//go:noescape
func dot4F32NEON(row, x *float32, stride, n int, out *[4]float32)

// dotF16NEON returns Σ x[i]·w[i] for n half-precision values at w; n must be a multiple of 4.
//
//go:noescape
func dotF16NEON(x *float32, w *byte, n int) float32

// dequantF16NEON converts n half-precision values at w to float32 at dst; n must be a multiple of 4.
//
//go:noescape
func dequantF16NEON(dst *float32, w *byte, n int)

// dotQ8_0NEON returns Σ x[i]·w[i] for nb Q8_0 blocks at w (32·nb values).
//
//go:noescape
func dotQ8_0NEON(x *float32, w *byte, nb int) float32

// dequantQ8_0NEON writes the 32·nb values of nb Q8_0 blocks at w as float32 to dst.
//
//go:noescape
func dequantQ8_0NEON(dst *float32, w *byte, nb int)

// axpyQ8_0NEON computes y[i] += alpha·w[i] for the 32·nb values of nb Q8_0 blocks at w.
//
//go:noescape
func axpyQ8_0NEON(alpha float32, w *byte, y *float32, nb int)

// dotQ4_0NEON returns Σ x[i]·w[i] for nb Q4_0 blocks at w (32·nb values).
//
//go:noescape
func dotQ4_0NEON(x *float32, w *byte, nb int) float32

// dequantQ4_0NEON writes the 32·nb values of nb Q4_0 blocks at w as float32 to dst.
//
//go:noescape
func dequantQ4_0NEON(dst *float32, w *byte, nb int)

// axpyQ4_0NEON computes y[i] += alpha·w[i] for the 32·nb values of nb Q4_0 blocks at w.
//
//go:noescape
func axpyQ4_0NEON(alpha float32, w *byte, y *float32, nb int)

// gemmNEON computes the 8×8 tile C = A·B (mode 0), C += A·B (mode 1), or
// C = A·B stored transposed, element (i, j) at c[j·ldc + i] (mode 2): A has
// k columns and rows lda floats apart, B has k rows ldb floats apart, C rows
// ldc floats apart; k must be at least 1.
//
//go:noescape
func gemmNEON(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k int, mode int)

// transpose8F32NEON writes x[i·ldx + c] to dst[c·ldd + i] for i < 8 and c < n; n must be a multiple of 8.
//
//go:noescape
func transpose8F32NEON(dst *float32, ldd int, x *float32, ldx int, n int)

// maxF32NEON returns the largest of x[0:n]; n must be a positive multiple of 4.
//
//go:noescape
func maxF32NEON(x *float32, n int) float32

// expSubF32NEON sets x[i] = exp(x[i]-m) over n elements and returns their sum; n must be a multiple of 4.
//
//go:noescape
func expSubF32NEON(x *float32, n int, m float32) float32

// sigmoidF32NEON sets dst[i] = 1/(1+exp(-x[i])) over n elements; n must be a multiple of 4.
//
//go:noescape
func sigmoidF32NEON(dst, x *float32, n int)

// dotQ4_KNEON returns Σ x[i]·w[i] for nb Q4_K super-blocks at w (256·nb values).
//
//go:noescape
func dotQ4_KNEON(x *float32, w *byte, nb int) float32

// dequantQ4_KNEON writes the 256·nb values of nb Q4_K super-blocks at w as float32 to dst.
//
//go:noescape
func dequantQ4_KNEON(dst *float32, w *byte, nb int)

// axpyQ4_KNEON computes y[i] += alpha·w[i] for the 256·nb values of nb Q4_K super-blocks at w.
//
//go:noescape
func axpyQ4_KNEON(alpha float32, w *byte, y *float32, nb int)

// dotQ5_KNEON returns Σ x[i]·w[i] for nb Q5_K super-blocks at w (256·nb values).
//
//go:noescape
func dotQ5_KNEON(x *float32, w *byte, nb int) float32

// dequantQ5_KNEON writes the 256·nb values of nb Q5_K super-blocks at w as float32 to dst.
//
//go:noescape
func dequantQ5_KNEON(dst *float32, w *byte, nb int)

// axpyQ5_KNEON computes y[i] += alpha·w[i] for the 256·nb values of nb Q5_K super-blocks at w.
//
//go:noescape
func axpyQ5_KNEON(alpha float32, w *byte, y *float32, nb int)

// dotQ6_KNEON returns Σ x[i]·w[i] for nb Q6_K super-blocks at w (256·nb values).
//
//go:noescape
func dotQ6_KNEON(x *float32, w *byte, nb int) float32

// dequantQ6_KNEON writes the 256·nb values of nb Q6_K super-blocks at w as float32 to dst.
//
//go:noescape
func dequantQ6_KNEON(dst *float32, w *byte, nb int)

// axpyQ6_KNEON computes y[i] += alpha·w[i] for the 256·nb values of nb Q6_K super-blocks at w.
//
//go:noescape
func axpyQ6_KNEON(alpha float32, w *byte, y *float32, nb int)
