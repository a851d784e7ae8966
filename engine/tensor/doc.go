// Package tensor holds a weight matrix in its stored (possibly quantized)
// form and the kernels that multiply float32 activations by it,
// dequantizing on the fly.
package tensor
