// Package lora trains and applies LoRA adapters on a frozen, possibly
// quantized Llama-family base model: the forward pass with low-rank updates,
// the backward pass that yields gradients for the LoRA factors only, and the
// AdamW optimiser.
//
// A LoRA pair on a projection W [out, in] adds scale·B·A, A [r, in], B
// [out, r], scale = alpha/r, so y = W·x + scale·B·(A·x). The base weights are
// never copied, dequantized as a whole, or given gradients.
package lora
