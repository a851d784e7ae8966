// Package gguf reads and writes GGUF files (versions 2 and 3), the format of
// llama.cpp, Ollama and LM Studio models and of llama.cpp LoRA adapters.
//
// Layout (little-endian): magic "GGUF", uint32 version, uint64 tensor count,
// uint64 metadata count, the metadata key/value pairs, the tensor infos
// (name, dims, ggml type, offset relative to the data section), padding to
// general.alignment (default 32), then the tensor data, each tensor aligned.
// Every count, length and offset is checked before use: a corrupt or
// truncated file gives an error naming the file and the problem, never a
// panic or a huge allocation.
package gguf
