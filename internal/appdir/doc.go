// Package appdir says where orchmind keeps its data on this platform: the
// node key, content store, adapters, pulled models and the config file.
package appdir
