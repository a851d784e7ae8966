//go:build race

package tensor

// raceEnabled is true under the race detector, which makes the largest
// test cases slow.
const raceEnabled = true
