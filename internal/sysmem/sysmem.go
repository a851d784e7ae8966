package sysmem

// Available returns the bytes of memory a new job can use without
// swapping: MemAvailable on Linux, half of the physical memory where the OS
// gives only the total (macOS). ok is false where it is not known.
func Available() (bytes int64, ok bool) { return available() }
