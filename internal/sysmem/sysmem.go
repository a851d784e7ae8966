// Package sysmem tells how much memory the machine has free for a job, so
// the trainer can choose to save memory before it runs out.
package sysmem

// Available returns the bytes of memory a new job can use without
// swapping: MemAvailable on Linux, half of the physical memory where the OS
// gives only the total (macOS). ok is false where it is not known.
func Available() (bytes int64, ok bool) { return available() }
