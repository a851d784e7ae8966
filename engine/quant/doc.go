// Package quant defines the tensor element types orchmind understands (the
// ggml/GGUF type numbers and block layouts used by llama.cpp) and converts
// between them and float32.
//
// Block layouts are byte-for-byte those of ggml, little-endian:
//
//	Q8_0: 32 values: d f16, qs [32]int8                       x = d·q
//	Q4_0: 32 values: d f16, qs [16]uint8 (low nibbles first) x = d·(q−8)
//	Q4_1: 32 values: d f16, m f16, qs [16]uint8              x = d·q + m
//
// K-quants (Q4_K, Q5_K, Q6_K) use 256-value super-blocks; see kquant.go.
//
// Q8Act (act.go) is an activation vector quantized to int8 blocks of 32
// values for generation's integer dot products (engine/tensor's
// MatMulInt8): a float32 scale per block and its −8·Σq, −128·Σq.
package quant
