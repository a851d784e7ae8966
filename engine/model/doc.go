// Package model holds a Llama-family base model with its weights kept in
// their stored (possibly quantized) types, and runs its forward pass.
package model
