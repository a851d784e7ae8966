// Package trainer is the root of orchmind's model engine and LoRA trainer.
// Its sub-packages each do one job: quant (tensor element types and block
// formats), tensor (weight matrices and the matmul kernels), and the model,
// tokenizer, data, hyperparameter and training packages built on them.
package trainer
