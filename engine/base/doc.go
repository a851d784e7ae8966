// Package base loads a frozen base model with its tokenizer, chat template
// and identity (fingerprint), from any file the engine reads, and builds small
// random bases for tests and benchmarks.
package base
