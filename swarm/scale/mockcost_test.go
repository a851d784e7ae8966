package scale

import (
	"sync"
	"testing"
)

// parkedInMockCostTest blocks until release is closed: a frame the
// goroutine counter must find by name.
func parkedInMockCostTest(ready *sync.WaitGroup, release chan struct{}) {
	ready.Done()
	<-release
}

// TestCountGoroutines checks that goroutines are counted by a function on
// their stack, as mockCost counts mocknet's stream goroutines.
func TestCountGoroutines(t *testing.T) {
	const n = 7
	release := make(chan struct{})
	var ready, done sync.WaitGroup
	ready.Add(n)
	for range n {
		done.Go(func() { parkedInMockCostTest(&ready, release) })
	}
	ready.Wait()
	got := countGoroutines("scale.parkedInMockCostTest")
	close(release)
	done.Wait()
	if got != n {
		t.Errorf("counted %d goroutines in parkedInMockCostTest, want %d", got, n)
	}
	if c := countGoroutines("no.such.function"); c != 0 {
		t.Errorf("counted %d goroutines in a function that does not exist", c)
	}
	if g, b := mockCost(); g != 0 || b != 0 {
		t.Errorf("mockCost without a mock network = %d goroutines, %d bytes; want 0, 0", g, b)
	}
}
