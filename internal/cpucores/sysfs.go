package cpucores

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// fromSysfs counts the cores of the logical CPUs cpus from a Linux sysfs
// tree rooted at /sys/devices: each CPU's core is the set of CPUs that
// share it (topology/core_cpus_list, or thread_siblings_list on kernels
// before 5.7). The fastest kind is, on a hybrid Intel chip, the cores
// listed in cpu_core/cpus (its P-cores; cpu_atom/cpus are the E-cores);
// elsewhere the cores whose cpu_capacity is at least 3/4 of the largest
// (ARM big.LITTLE: big and prime cores, not the little ones); all cores
// where neither is there.
func fromSysfs(sys fs.FS, cpus []int) (Counts, error) {
	if len(cpus) == 0 {
		return Counts{}, errors.New("cpucores: no CPU in the affinity mask")
	}
	read := func(name string) (string, error) {
		b, err := fs.ReadFile(sys, name)
		return strings.TrimSpace(string(b)), err
	}
	var pcores map[int]bool
	if s, err := read("cpu_core/cpus"); err == nil {
		l, err := parseList(s)
		if err != nil {
			return Counts{}, fmt.Errorf("cpucores: cpu_core/cpus: %w", err)
		}
		pcores = map[int]bool{}
		for _, c := range l {
			pcores[c] = true
		}
	}
	type core struct {
		fast     bool
		capacity int
	}
	cores := map[string]*core{}
	maxCap := 0
	for _, c := range cpus {
		dir := fmt.Sprintf("system/cpu/cpu%d/", c)
		key, err := read(dir + "topology/core_cpus_list")
		if err != nil {
			if key, err = read(dir + "topology/thread_siblings_list"); err != nil {
				return Counts{}, fmt.Errorf("cpucores: cpu%d's core: %w", c, err)
			}
		}
		k := cores[key]
		if k == nil {
			k = &core{}
			cores[key] = k
		}
		k.fast = k.fast || pcores[c]
		if s, err := read(dir + "cpu_capacity"); err == nil {
			if v, err := strconv.Atoi(s); err == nil {
				k.capacity = max(k.capacity, v)
				maxCap = max(maxCap, v)
			}
		}
	}
	n := Counts{Physical: len(cores), From: "sysfs"}
	for _, k := range cores {
		switch {
		case pcores != nil:
			if k.fast {
				n.Fast++
			}
		case maxCap > 0:
			if 4*k.capacity >= 3*maxCap {
				n.Fast++
			}
		default:
			n.Fast++
		}
	}
	if n.Fast == 0 { // the P-core list names none of the allowed CPUs
		n.Fast = n.Physical
	}
	return n, nil
}

// parseList parses a Linux CPU list such as "0-7,16-23" or "3".
func parseList(s string) ([]int, error) {
	var l []int
	for part := range strings.SplitSeq(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 1<<16 {
				return nil, fmt.Errorf("bad CPU list %q", s)
			}
		}
		for c := a; c <= b; c++ {
			l = append(l, c)
		}
	}
	return l, nil
}
