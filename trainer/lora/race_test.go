//go:build race

package lora

// raceEnabled is true under the race detector, whose sync.Pool drops a
// share of what is put back at random, so allocation counts mean nothing.
const raceEnabled = true
