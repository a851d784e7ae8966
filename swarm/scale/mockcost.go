package scale

import (
	"bufio"
	"bytes"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
)

// mockStreamHeapBytes is the heap one end of a mocknet stream holds besides
// its goroutine's stack: the stream, its io.Pipe and its transport's buffer
// and timer (heap profile at N = 100: 43 MB over 37,498 stream ends).
const mockStreamHeapBytes = 1150

// mockCost is what mocknet's streams cost in the process, which a node on
// a real transport does not pay in this form: every mocknet stream end runs
// a goroutine of its own (mock.(*stream).transport) to deliver its writes,
// where a yamux stream runs none. It returns how many such goroutines run
// and an estimate of their memory in bytes (the average goroutine stack
// plus mockStreamHeapBytes each).
func mockCost() (goroutines int, bytes int64) {
	n := countGoroutines("/p2p/net/mock.(*stream).transport")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	total := runtime.NumGoroutine()
	if total == 0 {
		return n, 0
	}
	stack := int64(ms.StackInuse) / int64(total)
	return n, int64(n) * (stack + mockStreamHeapBytes)
}

// countGoroutines counts the goroutines whose stack has a frame whose
// function name contains fn.
func countGoroutines(fn string) int {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		return 0
	}
	return countInProfile(&buf, fn)
}

// countInProfile reads a goroutine profile in its debug=1 text form
// ("N @ pc pc ..." then "#\tpc\tfunc+off\tfile:line" lines per group).
func countInProfile(r *bytes.Buffer, fn string) int {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	total, group, hit := 0, 0, false
	flush := func() {
		if hit {
			total += group
		}
		group, hit = 0, false
	}
	for sc.Scan() {
		line := sc.Text()
		if head, _, ok := strings.Cut(line, " @ "); ok && !strings.HasPrefix(line, "#") {
			flush()
			group, _ = strconv.Atoi(strings.TrimSpace(head))
			continue
		}
		if strings.HasPrefix(line, "#") && strings.Contains(line, fn) {
			hit = true
		}
	}
	flush()
	return total
}
