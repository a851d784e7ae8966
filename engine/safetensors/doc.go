// Package safetensors reads and writes the Hugging Face safetensors format:
// an 8-byte little-endian header length, a JSON header mapping each tensor
// name to {dtype, shape, data_offsets} (plus an optional "__metadata__" map
// of strings), then the raw little-endian tensor bytes.
//
// Reading accepts only what the format allows and checks every offset, so a
// truncated or hostile file gives an error naming the problem, never a panic.
// Writing is atomic: a temporary file in the target folder, fsync, rename.
package safetensors
