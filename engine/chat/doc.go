// Package chat formats conversations with a model's chat template (plain,
// ChatML, Llama 2/3, Gemma, Alpaca): the same text for training examples and
// for the prompts that generation and the API build.
package chat
