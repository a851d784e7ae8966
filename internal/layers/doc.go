// Package layers keeps orchmind's import graph layered: its test fails when
// a package imports one from a layer above it (see Rank and the README's
// Layout section). It holds no code that other packages use.
package layers
