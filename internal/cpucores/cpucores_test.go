package cpucores

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"testing"
	"testing/fstest"
)

// topology builds a sysfs tree: cores[i] lists the logical CPUs of core i;
// capacity, if not nil, is each core's cpu_capacity; extra files are added
// as they are.
func topology(cores [][]int, capacity []int, extra map[string]string) fstest.MapFS {
	fs := fstest.MapFS{}
	for i, cpus := range cores {
		list := ""
		for j, c := range cpus {
			if j > 0 {
				list += ","
			}
			list += fmt.Sprint(c)
		}
		for _, c := range cpus {
			dir := fmt.Sprintf("system/cpu/cpu%d/", c)
			fs[dir+"topology/core_cpus_list"] = &fstest.MapFile{Data: []byte(list + "\n")}
			if capacity != nil {
				fs[dir+"cpu_capacity"] = &fstest.MapFile{Data: []byte(fmt.Sprintf("%d\n", capacity[i]))}
			}
		}
	}
	for name, data := range extra {
		fs[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fs
}

func seq(lo, hi int) []int {
	var l []int
	for c := lo; c < hi; c++ {
		l = append(l, c)
	}
	return l
}

func TestFromSysfs(t *testing.T) {
	// Ryzen 7 7700X: 8 cores, 2 threads each, Linux numbering the
	// second threads 8–15.
	ryzen := make([][]int, 8)
	for i := range ryzen {
		ryzen[i] = []int{i, i + 8}
	}
	// Core i7-12700: 8 P-cores with 2 threads (CPUs 0–15 in sibling pairs)
	// and 4 E-cores (16–19).
	alder := [][]int{}
	for i := 0; i < 16; i += 2 {
		alder = append(alder, []int{i, i + 1})
	}
	for c := 16; c < 20; c++ {
		alder = append(alder, []int{c})
	}
	alderFiles := map[string]string{"cpu_core/cpus": "0-15\n", "cpu_atom/cpus": "16-19\n"}
	// An ARM phone chip: 3 little, 4 big and 1 prime core.
	arm := [][]int{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}}
	armCap := []int{325, 325, 325, 870, 870, 870, 870, 1024}
	for _, c := range []struct {
		name           string
		fs             fstest.MapFS
		cpus           []int
		physical, fast int
	}{
		{"ryzen 8c/16t", topology(ryzen, nil, nil), seq(0, 16), 8, 8},
		{"ryzen, affinity on two sibling threads", topology(ryzen, nil, nil), []int{3, 11}, 1, 1},
		{"ryzen, affinity on 4 CPUs of 3 cores", topology(ryzen, nil, nil), []int{0, 8, 1, 2}, 3, 3},
		{"alder lake 8P+4E", topology(alder, nil, alderFiles), seq(0, 20), 12, 8},
		{"alder lake, affinity on the E-cores", topology(alder, nil, alderFiles), seq(16, 20), 4, 4},
		{"arm 3 little, 4 big, 1 prime", topology(arm, armCap, nil), seq(0, 8), 8, 5},
		{"all alike with capacities", topology(arm, []int{1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024}, nil), seq(0, 8), 8, 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := fromSysfs(c.fs, c.cpus)
			if err != nil {
				t.Fatal(err)
			}
			if n.Physical != c.physical || n.Fast != c.fast {
				t.Fatalf("%+v, want %d physical, %d fast", n, c.physical, c.fast)
			}
		})
	}
	// Kernels before 5.7 name a core's CPUs thread_siblings_list.
	old := fstest.MapFS{}
	for name, f := range topology(ryzen, nil, nil) {
		old[name[:len(name)-len("core_cpus_list")]+"thread_siblings_list"] = f
	}
	if n, err := fromSysfs(old, seq(0, 16)); err != nil || n.Physical != 8 {
		t.Fatalf("thread_siblings_list: %+v, %v; want 8 cores", n, err)
	}
	if _, err := fromSysfs(fstest.MapFS{}, seq(0, 4)); err == nil {
		t.Fatal("no topology files: no error")
	}
	if _, err := fromSysfs(topology(alder, nil, map[string]string{"cpu_core/cpus": "0-x"}), seq(0, 20)); err == nil {
		t.Fatal("a bad cpu_core/cpus: no error")
	}
}

func TestParseList(t *testing.T) {
	l, err := parseList("0-3,8,10-11")
	if err != nil || fmt.Sprint(l) != "[0 1 2 3 8 10 11]" {
		t.Fatalf("%v, %v", l, err)
	}
	for _, bad := range []string{"a", "3-1", "-1", "1-", "0-99999999"} {
		if _, err := parseList(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// record is one SYSTEM_LOGICAL_PROCESSOR_INFORMATION_EX of
// RelationProcessorCore with one group mask (48 bytes, as Windows writes it).
func record(flags, class byte) []byte {
	b := make([]byte, 48)
	binary.LittleEndian.PutUint32(b[0:], 0)
	binary.LittleEndian.PutUint32(b[4:], 48)
	b[8], b[9] = flags, class
	binary.LittleEndian.PutUint16(b[30:], 1)
	return b
}

func TestFromProcessorInfo(t *testing.T) {
	var buf []byte
	for range 8 { // P-cores with SMT, efficiency class 1
		buf = append(buf, record(1, 1)...)
	}
	for range 4 { // E-cores, class 0
		buf = append(buf, record(0, 0)...)
	}
	n, err := fromProcessorInfo(buf)
	if err != nil || n.Physical != 12 || n.Fast != 8 {
		t.Fatalf("8P+4E: %+v, %v", n, err)
	}
	buf = nil
	for range 6 {
		buf = append(buf, record(1, 0)...)
	}
	if n, err := fromProcessorInfo(buf); err != nil || n.Physical != 6 || n.Fast != 6 {
		t.Fatalf("6 alike: %+v, %v", n, err)
	}
	// What Wine 8.0's GetLogicalProcessorInformationEx(RelationProcessorCore)
	// wrote on this project's 2-core machine (a mingw-built dump program):
	// two 48-byte records, masks 1 and 2.
	wine, _ := hex.DecodeString("000000003000000000000000000000000000000000000000000000000000010001000000000000000000000000000000" +
		"000000003000000000000001000000000000000000000000000000000000010002000000000000000000000000000000")
	if n, err := fromProcessorInfo(wine); err != nil || n.Physical != 2 || n.Fast != 2 {
		t.Fatalf("Wine's records: %+v, %v", n, err)
	}
	if _, err := fromProcessorInfo(buf[:50]); err == nil {
		t.Fatal("cut short: no error")
	}
	bad := record(0, 0)
	binary.LittleEndian.PutUint32(bad[4:], 4)
	if _, err := fromProcessorInfo(bad); err == nil {
		t.Fatal("a record of 4 bytes: no error")
	}
}

func TestCountThisMachine(t *testing.T) {
	n := Count()
	t.Logf("%s: %d threads", n, n.Threads())
	if n.Logical != runtime.NumCPU() || n.Physical < 1 || n.Physical > n.Logical || n.Fast < 1 || n.Fast > n.Physical {
		t.Fatalf("inconsistent counts %+v", n)
	}
	if th := n.Threads(); th < 1 || th > n.Logical || th > runtime.GOMAXPROCS(0) {
		t.Fatalf("Threads() = %d of %d logical CPUs", th, n.Logical)
	}
	// Linux and Windows (also under Wine 8.0) read the topology; macOS
	// asks sysctl.
	want := map[string]string{"linux": "sysfs", "windows": "GetLogicalProcessorInformationEx", "darwin": "sysctl"}[runtime.GOOS]
	if want == "sysfs" && !sysfsTopology() {
		t.Logf("this Linux has no CPU topology in /sys (a sandbox or container): the counts fall back to %s", n.From)
		want = "GOMAXPROCS"
	}
	if want != "" && n.From != want {
		t.Errorf("on %s the counts came from %s, not %s", runtime.GOOS, n.From, want)
	}
}

// sysfsTopology reports whether /sys says which core cpu0 belongs to.
func sysfsTopology() bool {
	for _, f := range []string{"core_cpus_list", "thread_siblings_list"} {
		if _, err := os.Stat("/sys/devices/system/cpu/cpu0/topology/" + f); err == nil {
			return true
		}
	}
	return false
}
