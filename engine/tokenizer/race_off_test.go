//go:build !race

package tokenizer

// raceEnabled: timing tests skip under the race detector.
const raceEnabled = false
