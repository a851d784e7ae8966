package sysmem

import "golang.org/x/sys/unix"

func available() (int64, bool) {
	total, err := unix.SysctlUint64("hw.memsize")
	if err != nil || total == 0 {
		return 0, false
	}
	return int64(total / 2), true
}
