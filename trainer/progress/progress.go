package progress

import (
	"sync"
	"time"
)

// Phase names the stage of a run.
type Phase string

// Phases of a training run.
const (
	PhaseLoad  Phase = "load"
	PhaseData  Phase = "data"
	PhaseTrain Phase = "train"
	PhaseEval  Phase = "eval"
	PhaseSave  Phase = "save"
	PhaseDone  Phase = "done"
	PhaseError Phase = "error"
)

// Event is one progress report. Zero numeric fields mean "not known".
type Event struct {
	Time    time.Time `json:"time"`
	Phase   Phase     `json:"phase"`
	Step    int       `json:"step,omitempty"`
	Total   int       `json:"total,omitempty"`
	Epoch   int       `json:"epoch,omitempty"`
	Percent float64   `json:"percent,omitempty"`
	// Loss is this step's training loss (mean per counted token); at the
	// end, the adapter's loss on the training set, as the summary says.
	Loss float64 `json:"loss,omitempty"`
	// LossAvg is the mean of the last steps' losses, a smoothed line.
	LossAvg  float64       `json:"loss_avg,omitempty"`
	EvalLoss float64       `json:"eval_loss,omitempty"`
	LR       float64       `json:"lr,omitempty"`
	TokensPS float64       `json:"tokens_per_s,omitempty"`
	ETA      time.Duration `json:"eta_ns,omitempty"`
	RSSBytes uint64        `json:"rss_bytes,omitempty"`
	Message  string        `json:"message,omitempty"`
	Final    bool          `json:"final,omitempty"`
}

// Bus fans events out to subscribers. Publish never blocks: a subscriber
// whose buffer is full misses intermediate events, but a final event
// (Final set, or phase done/error) is always delivered, evicting the oldest
// buffered event if needed. The zero value is not usable; call NewBus.
type Bus struct {
	mu     sync.Mutex
	subs   map[int]chan Event
	next   int
	closed bool
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{subs: make(map[int]chan Event)} }

// Subscribe returns a channel receiving events (buffer of size buf, at least
// 1) and a function that unsubscribes and closes the channel. The channel is
// also closed by Close.
func (b *Bus) Subscribe(buf int) (<-chan Event, func()) {
	buf = max(buf, 1)
	ch := make(chan Event, buf)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(ch)
		return ch, func() {}
	}
	id := b.next
	b.next++
	b.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if c, ok := b.subs[id]; ok {
				delete(b.subs, id)
				close(c)
			}
		})
	}
}

// IsFinal reports whether e must never be dropped.
func (e Event) IsFinal() bool { return e.Final || e.Phase == PhaseDone || e.Phase == PhaseError }

// Publish sends e to every subscriber without blocking. It fills Time when
// zero and returns how many subscribers missed the event.
func (b *Bus) Publish(e Event) (dropped int) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	final := e.IsFinal()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return len(b.subs)
	}
	for _, ch := range b.subs {
		select {
		case ch <- e:
			continue
		default:
		}
		if !final {
			dropped++
			continue
		}
		// Only Publish sends, under mu, so after evicting one buffered
		// event the send below cannot block.
		select {
		case <-ch:
		default:
		}
		select {
		case ch <- e:
		default:
			dropped++
		}
	}
	return dropped
}

// Close closes every subscriber channel; later Publish calls deliver nothing.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for id, ch := range b.subs {
		close(ch)
		delete(b.subs, id)
	}
}
