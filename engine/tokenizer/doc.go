// Package tokenizer turns text into token ids and back for the models
// orchmind runs.
//
// Llama2C is the SentencePiece-style BPE of llama2.c checkpoints
// (tokenizer.bin): text gets a dummy-prefix space, is split into UTF-8
// characters (unknown ones fall back to byte tokens <0xNN>), and adjacent
// pieces are merged greedily by the highest vocabulary score.
package tokenizer
