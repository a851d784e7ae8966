//go:build race

package scale

// raceOn: the race detector allows 8128 live goroutines, which about ten
// nodes reach.
const raceOn = true
