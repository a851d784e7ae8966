package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// spin is how long an idle worker keeps looking for the next job before it
// parks: long enough to cover the gaps between the layers of a forward
// pass, short enough to cost nothing noticeable once work stops.
const spin = 100 * time.Microsecond

// job is one call of For: parts chunks of [0, n), taken in turn.
type job struct {
	f        func(lo, hi int)
	n, parts int64
	next     atomic.Int64 // the next chunk to take
	pending  atomic.Int64 // chunks not yet finished
}

// run takes chunks until none is left.
func (j *job) run() {
	for {
		i := j.next.Add(1) - 1
		if i >= j.parts {
			return
		}
		j.f(int(i*j.n/j.parts), int((i+1)*j.n/j.parts))
		j.pending.Add(-1)
	}
}

// pool is the set of workers; one job runs on it at a time.
type pool struct {
	workers  int
	mu       sync.Mutex // held by the caller whose job runs
	gen      atomic.Uint64
	cur      atomic.Pointer[job]
	sleeping atomic.Int32
	wake     chan struct{}
}

var (
	once   sync.Once
	shared *pool
)

// get returns the pool, starting its workers on first use.
func get() *pool {
	once.Do(func() {
		p := &pool{workers: runtime.GOMAXPROCS(0) - 1}
		p.wake = make(chan struct{}, max(p.workers, 1))
		for range p.workers {
			go p.work()
		}
		shared = p
	})
	return shared
}

// work is a worker's loop: wait for a new job, help with it, repeat.
func (p *pool) work() {
	seen := p.gen.Load()
	for {
		g := p.wait(seen)
		seen = g
		if j := p.cur.Load(); j != nil {
			j.run()
		}
	}
}

// wait returns once the job generation differs from seen: spinning at
// first, then parked until a caller wakes it.
func (p *pool) wait(seen uint64) uint64 {
	deadline := time.Now().Add(spin)
	for i := 0; ; i++ {
		if g := p.gen.Load(); g != seen {
			return g
		}
		pause()
		if i%64 == 63 && time.Now().After(deadline) {
			break
		}
	}
	for {
		p.sleeping.Add(1)
		if g := p.gen.Load(); g != seen { // a job came before we were counted
			p.sleeping.Add(-1)
			return g
		}
		<-p.wake
		p.sleeping.Add(-1)
		if g := p.gen.Load(); g != seen {
			return g
		}
	}
}

// For runs f over [0, n) split into parts contiguous chunks (chunk i is
// [i·n/parts, (i+1)·n/parts)), each chunk in one call of f, on up to
// GOMAXPROCS goroutines including the caller, and returns when all are
// done. The chunk bounds depend only on n and parts, so a loop whose chunks
// write disjoint outputs gives the same result however the chunks are
// spread. parts ≤ 1 (or n ≤ 1) runs f(0, n) on the caller.
func For(n, parts int, f func(lo, hi int)) {
	parts = min(parts, n)
	if parts <= 1 {
		f(0, n)
		return
	}
	p := get()
	if p.workers == 0 || !p.mu.TryLock() {
		spawn(n, parts, f)
		return
	}
	j := &job{f: f, n: int64(n), parts: int64(parts)}
	j.pending.Store(int64(parts))
	p.cur.Store(j)
	p.gen.Add(1)
	for range min(int(p.sleeping.Load()), parts-1) {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	j.run()
	for i := 0; j.pending.Load() > 0; i++ {
		pause()
		if i%256 == 255 {
			runtime.Gosched()
		}
	}
	p.cur.Store(nil)
	p.mu.Unlock()
}

// spawn is For on fresh goroutines, for when the pool is busy.
func spawn(n, parts int, f func(lo, hi int)) {
	var wg sync.WaitGroup
	for i := 1; i < parts; i++ {
		wg.Go(func() { f(i*n/parts, (i+1)*n/parts) })
	}
	f(0, n/parts)
	wg.Wait()
}

// Workers is the number of goroutines For spreads work over: GOMAXPROCS.
func Workers() int { return runtime.GOMAXPROCS(0) }
