// Package train runs a whole LoRA fine-tuning job: it builds the dataset,
// chooses hyperparameters, trains with AdamW on the frozen quantized base,
// evaluates, stops early, checkpoints (resumable to the same result), reports
// progress, and writes the adapter folder.
package train
