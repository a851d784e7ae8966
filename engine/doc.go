// Package engine is the root of orchmind's model engine, the layer that both
// training and serving stand on: element types and block formats (quant),
// weight matrices and their kernels (tensor, parallel), model files (gguf,
// safetensors), the transformer itself (model), tokenizers (tokenizer), chat
// templates (chat) and loading a base model with its tokenizer (base).
package engine
