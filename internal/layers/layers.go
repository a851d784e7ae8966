package layers

import "strings"

// Rank returns the layer of a package of the module, given its import path
// relative to the module root ("engine/model"), and whether the package is
// placed at all. A package may import packages of its own top-level folder
// and of lower ranks only; internal/ is below everything.
//
//	cmd → node → {trainer, swarm} → {adapters, store} → engine → protocol
func Rank(rel string) (int, bool) {
	top, _, _ := strings.Cut(rel, "/")
	switch top {
	case "internal":
		return 0, true
	case "protocol":
		return 1, true
	case "engine":
		return 2, true
	case "adapters", "store":
		return 3, true
	case "trainer", "swarm":
		return 4, true
	case "node":
		return 5, true
	case "cmd":
		return 6, true
	case "integration":
		return 7, true
	}
	return 0, false
}
