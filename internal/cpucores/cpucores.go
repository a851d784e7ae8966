package cpucores

import (
	"fmt"
	"runtime"
)

// Counts is what the topology says about the cores this process may run on.
type Counts struct {
	// Logical is how many logical CPUs the process may run on (its
	// affinity mask, runtime.NumCPU).
	Logical int
	// Physical is how many physical cores those CPUs belong to.
	Physical int
	// Fast is how many of those cores are of the fastest kind (Physical on
	// a chip whose cores are all alike).
	Fast int
	// From says where the counts were read, e.g. "sysfs" or "GOMAXPROCS"
	// where the topology could not be read.
	From string
}

// Threads is how many threads a compute-bound job should take: one per
// core of the fastest kind, but no more than GOMAXPROCS (which also
// follows a container's CPU quota, or the GOMAXPROCS variable), at least 1.
func (c Counts) Threads() int {
	return max(1, min(c.Fast, runtime.GOMAXPROCS(0)))
}

// String describes the counts in a few words, for `orchmind model info`.
func (c Counts) String() string {
	s := fmt.Sprintf("%d logical CPUs, %d physical cores", c.Logical, c.Physical)
	if c.Fast != c.Physical {
		s += fmt.Sprintf(", %d of the fastest kind", c.Fast)
	}
	return s + " (" + c.From + ")"
}

// Count reads the topology of the CPUs this process may run on. Where it
// cannot be read every logical CPU counts as a core of its own.
func Count() Counts {
	logical := runtime.NumCPU()
	c, err := count()
	if err != nil || c.Physical <= 0 || c.Fast <= 0 {
		return Counts{Logical: logical, Physical: logical, Fast: logical, From: "GOMAXPROCS"}
	}
	c.Logical = logical
	c.Physical = min(c.Physical, logical)
	c.Fast = min(c.Fast, c.Physical)
	return c
}
