package cpucores

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// count reads sysfs for the CPUs in this process's affinity mask.
func count() (Counts, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return Counts{}, fmt.Errorf("cpucores: affinity mask: %w", err)
	}
	var cpus []int
	for c := range 1024 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return fromSysfs(os.DirFS("/sys/devices"), cpus)
}
