// Package progress carries training progress events from the trainer to any
// number of consumers (terminal, JSON lines, network) through a non-blocking
// fan-out bus.
package progress
