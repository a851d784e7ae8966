package progress

import (
	"os"
	"strconv"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal of the given size and returns its
// terminal side.
func openPTY(t *testing.T, cols, rows uint16) *os.File {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("skipping: no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	unlock := 0
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, ptm.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Skipf("skipping: unlockpt: %v", errno)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("skipping: ptsname: %v", err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("skipping: open the terminal side: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	if err := unix.IoctlSetWinsize(int(pts.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows}); err != nil {
		t.Fatal(err)
	}
	return pts
}

// TestOptionsForTerminal: a terminal gets the bar, cut to its width.
func TestOptionsForTerminal(t *testing.T) {
	pts := openPTY(t, 72, 24)
	if !IsTerminal(pts) {
		t.Fatal("a pseudo-terminal is not reported as a terminal")
	}
	if o := OptionsFor(pts); o.Mode != Bar || o.Width != 72 {
		t.Errorf("terminal: %+v, want Bar at 72 columns", o)
	}
}
