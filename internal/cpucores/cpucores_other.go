//go:build !linux && !darwin && !windows

package cpucores

import "errors"

// count does not know this system's topology: Count falls back to the
// logical CPUs.
func count() (Counts, error) {
	return Counts{}, errors.New("cpucores: CPU topology not read on this system")
}
