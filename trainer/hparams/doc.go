// Package hparams chooses LoRA fine-tuning hyperparameters from the size of
// the dataset and of the base model, with a one-line human explanation for
// every choice and an override for every value.
//
// The rules target two regimes. A tiny dataset (a dozen short facts) is in
// the memorisation regime: it gets many epochs, a learning rate high enough
// for a small-rank LoRA to actually learn (1e-3..3e-3), no dropout and no eval
// split (there is nothing to hold out), so training stops on train loss. A
// large dataset gets fewer epochs, a lower learning rate, dropout, an eval
// split and early stopping so it does not overfit. This contrasts with a
// fixed r=8/α=16 and a learning rate so low that tiny datasets barely move.
package hparams
