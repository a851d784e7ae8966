package cpucores

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// count asks sysctl: hw.physicalcpu, and hw.perflevel0.physicalcpu (the
// performance cores of Apple silicon; absent on Intel Macs).
func count() (Counts, error) {
	phys, err := unix.SysctlUint32("hw.physicalcpu")
	if err != nil {
		return Counts{}, fmt.Errorf("cpucores: sysctl hw.physicalcpu: %w", err)
	}
	fast := phys
	if p, err := unix.SysctlUint32("hw.perflevel0.physicalcpu"); err == nil && p > 0 {
		fast = p
	}
	return Counts{Physical: int(phys), Fast: int(fast), From: "sysctl"}, nil
}
