// Package integration tests orchmind end to end across several nodes on
// loopback: real libp2p hosts, DHT, gossipsub, stores and the orchmind binary
// as separate processes. It holds tests and benchmarks only.
package integration
