package adapters

// Hyperparameters are the settings an adapter is trained with. One struct
// serves every place they appear: trainer/hparams chooses them (its Plan
// embeds this), the CLI's flags and the API's overrides force them under the
// same JSON names (hparams.Overrides), and orchmind.json records them.
type Hyperparameters struct {
	Epochs       int     `json:"epochs"`
	LearningRate float64 `json:"learning_rate"`
	Rank         int     `json:"rank"`
	Alpha        float64 `json:"alpha"`
	BatchSize    int     `json:"batch_size"`
	GradAccum    int     `json:"grad_accum"`
	MaxSeqLen    int     `json:"max_seq_len"`
	WarmupSteps  int     `json:"warmup_steps"`
	// EvalFraction is the share of examples held out for evaluation; 0 means
	// no eval split (training stops on train loss instead).
	EvalFraction float64 `json:"eval_fraction"`
	// Patience is the number of evaluations without eval-loss improvement
	// before early stopping (only meaningful when EvalFraction > 0).
	Patience int `json:"patience"`
	// StopTrainLoss stops training once the mean train loss of an epoch is
	// below it (0 = disabled).
	StopTrainLoss float64  `json:"stop_train_loss"`
	Dropout       float64  `json:"dropout"`
	TargetModules []string `json:"target_modules,omitempty"`
	// GradCheckpoint recomputes each layer in the backward pass instead of
	// keeping its activations: far less memory, about 30% more time.
	GradCheckpoint bool `json:"grad_checkpoint"`
	// Precision is the compute type of the base's products, "f32" or "bf16".
	Precision string `json:"precision,omitempty"`
	// TotalSteps counts the optimizer updates planned.
	TotalSteps int `json:"total_steps"`
	// Seed, Optimizer, Schedule and GradClip are fixed by the trainer and
	// recorded with the rest.
	Seed      uint64  `json:"seed,omitempty"`
	Optimizer string  `json:"optimizer,omitempty"`
	Schedule  string  `json:"schedule,omitempty"`
	GradClip  float64 `json:"grad_clip,omitempty"`
}

// Merge records how a merged adapter was made from its Parents.
type Merge struct {
	// Method is "cat" or "svd".
	Method  string    `json:"method"`
	Weights []float64 `json:"weights"`
	// KeptEnergyMin is, for svd, the smallest share of a product's energy
	// kept by the truncation (1 = exact).
	KeptEnergyMin float64 `json:"kept_energy_min,omitempty"`
}
