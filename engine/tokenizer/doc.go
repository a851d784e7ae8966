// Package tokenizer turns text into token ids and back for the models
// orchmind runs.
//
// Llama2C is the SentencePiece-style BPE of llama2.c checkpoints
// (tokenizer.bin), of SentencePiece tokenizer.model files and of GGUF
// "llama" vocabularies (Llama 2, Mistral, Gemma): text gets a dummy-prefix
// space (unless the vocabulary says not to, as Gemma's does), is split
// into UTF-8 characters (unknown ones fall back to byte tokens <0xNN>),
// and adjacent pieces are merged greedily by the highest vocabulary score.
//
// BPE is the rank-ordered BPE of Hugging Face tokenizer.json files and
// GGUF "gpt2" vocabularies: byte-level (GPT-2, SmolLM, Llama 3, Qwen2/3),
// or SentencePiece-style with byte_fallback (Llama 2, Mistral, Gemma 3).
// Added and special tokens are matched in the text as whole strings.
//
// Both merge with a priority queue of adjacent pairs over a linked list of
// symbols, so encoding is O(n log n) in the length of a word; SentencePiece
// texts are further cut before every space that no token joins to its
// left neighbour, which gives the same ids in bounded memory and lets
// repeated words come from a cache. A 1 MB paragraph encodes in well
// under a second.
package tokenizer
