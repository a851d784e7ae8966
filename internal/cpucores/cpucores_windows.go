package cpucores

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// count calls GetLogicalProcessorInformationEx for the processor cores.
func count() (Counts, error) {
	proc := windows.NewLazySystemDLL("kernel32.dll").NewProc("GetLogicalProcessorInformationEx")
	if err := proc.Find(); err != nil {
		return Counts{}, fmt.Errorf("cpucores: %w", err)
	}
	const relationProcessorCore = 0
	n := uint32(0)
	r, _, err := proc.Call(relationProcessorCore, 0, uintptr(unsafe.Pointer(&n)))
	if r != 0 || !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || n == 0 {
		return Counts{}, fmt.Errorf("cpucores: GetLogicalProcessorInformationEx: %w", err)
	}
	buf := make([]byte, n)
	if r, _, err := proc.Call(relationProcessorCore, uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n))); r == 0 {
		return Counts{}, fmt.Errorf("cpucores: GetLogicalProcessorInformationEx: %w", err)
	}
	return fromProcessorInfo(buf[:n])
}
