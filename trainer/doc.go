// Package trainer is the root of orchmind's LoRA trainer: its sub-packages
// read the user's training data (data), choose the hyperparameters (hparams),
// run the forward and backward passes of the adapters over the frozen base
// (lora), drive a whole job (train) and report its progress (progress). The
// model engine they train on lives in engine/.
package trainer
