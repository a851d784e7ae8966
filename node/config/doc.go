// Package config is the node's settings file (config.json in the data
// folder): the base model, ports, peers, rooms and API address a node
// starts with when no flags are given, written by the first run and by
// `orchmind config set`.
package config
