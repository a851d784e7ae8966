// Package adapters defines the on-disk adapter folder: a LoRA adapter in
// memory, its PEFT adapter_config.json, the orchmind.json manifest (whose
// announced part, Announced, is protocol.Manifest: one type from the folder
// to the announcement to the API's listing), tensor
// naming for PEFT safetensors and llama.cpp GGUF LoRA, atomic folder writes,
// and refusal of pickle checkpoints.
//
// Tensor file encoding (safetensors / GGUF bytes) is delegated to a
// TensorCodec so the project's engine/safetensors and engine/gguf packages
// can be plugged in.
package adapters
