package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"orchmind/node/registry"
	"orchmind/trainer/data"
	"orchmind/trainer/hparams"
	"orchmind/trainer/progress"
	"orchmind/trainer/train"
)

// Errors wrapped by the Manager's errors.
var (
	// ErrNotFound: no job of that id on this node.
	ErrNotFound = errors.New("no such training job")
	// ErrBusy: another job is still running.
	ErrBusy = errors.New("a training job is running")
)

// States of a job.
const (
	Running = "running"
	Done    = "done"
	Failed  = "failed"
	Stopped = "stopped"
)

// Job is the state of a training job, as the API shows it.
type Job struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	State    string          `json:"state"` // Running, Done, Failed or Stopped
	Started  time.Time       `json:"started"`
	Finished *time.Time      `json:"finished,omitempty"`
	Last     *progress.Event `json:"last,omitempty"`
	Plan     *hparams.Plan   `json:"plan,omitempty"`
	Summary  *data.Summary   `json:"summary,omitempty"`
	Result   *Result         `json:"result,omitempty"`
	Adapter  *registry.Info  `json:"adapter,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// Result summarises a finished run.
type Result struct {
	Dir             string  `json:"dir"`
	Steps           int     `json:"steps"`
	Tokens          int64   `json:"tokens"`
	Seconds         float64 `json:"seconds"`
	TrainLossBefore float64 `json:"train_loss_before"`
	TrainLossAfter  float64 `json:"train_loss_after"`
	EvalLossBefore  float64 `json:"eval_loss_before"`
	EvalLossAfter   float64 `json:"eval_loss_after"`
	StopReason      string  `json:"stop_reason"`
}

// maxEvents bounds the training-step events kept per job (phase changes are
// always kept).
const maxEvents = 20000

type job struct {
	mu      sync.Mutex
	j       Job
	events  []progress.Event
	changed chan struct{} // closed and replaced on every change
	done    bool
	cancel  context.CancelFunc
}

func (j *job) snapshot() Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.j
}

// update changes the job under its lock and wakes its followers.
func (j *job) update(f func()) {
	j.mu.Lock()
	f()
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
}

// Manager runs training jobs one at a time and remembers every job started
// since the node started.
type Manager struct {
	log  *slog.Logger
	mu   sync.Mutex
	m    map[string]*job
	live string // id of the running job
	wg   sync.WaitGroup
}

// New returns a Manager that logs to log.
func New(log *slog.Logger) *Manager {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{log: log, m: map[string]*job{}}
}

// Spec is what Start needs besides the training configuration.
type Spec struct {
	// Name is the adapter's name.
	Name string
	// Release is called once the job no longer reads its data (nil: none).
	Release func()
	// Plug, when set, is called with the saved adapter folder after a
	// successful run and returns how the adapter was plugged in; its error
	// fails the job (the adapter stays saved).
	Plug func(dir string) (*registry.Info, error)
}

// Start runs cfg in the background and returns the job as it starts. It
// fails with ErrBusy while another job runs (Release is then called).
func (m *Manager) Start(cfg train.Config, spec Spec) (Job, error) {
	release := spec.Release
	if release == nil {
		release = func() {}
	}
	m.mu.Lock()
	if m.live != "" {
		id := m.live
		m.mu.Unlock()
		release()
		return Job{}, fmt.Errorf("%w: training job %s is still running: wait for it or stop it (POST /api/train/%s/stop)", ErrBusy, id, id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{j: Job{ID: newID(), Name: spec.Name, State: Running, Started: time.Now().UTC()}, changed: make(chan struct{}), cancel: cancel}
	m.m[j.j.ID] = j
	m.live = j.j.ID
	m.wg.Add(1)
	m.mu.Unlock()

	bus := progress.NewBus()
	ch, unsub := bus.Subscribe(256)
	cfg.Bus = bus
	onPlan := cfg.OnPlan
	cfg.OnPlan = func(p hparams.Plan, sm data.Summary) {
		j.update(func() { j.j.Plan, j.j.Summary = &p, &sm })
		if onPlan != nil {
			onPlan(p, sm)
		}
	}
	var pump sync.WaitGroup
	pump.Add(1)
	go func() {
		defer pump.Done()
		for ev := range ch {
			ev.Loss, ev.EvalLoss, ev.LR, ev.TokensPS, ev.Percent = finite(ev.Loss), finite(ev.EvalLoss), finite(ev.LR), finite(ev.TokensPS), finite(ev.Percent)
			j.update(func() {
				j.j.Last = &ev
				if len(j.events) < maxEvents || ev.Phase != progress.PhaseTrain {
					j.events = append(j.events, ev)
				}
			})
		}
	}()
	go func() {
		defer m.wg.Done()
		defer cancel()
		defer release()
		res, err := train.Run(ctx, cfg)
		bus.Close()
		pump.Wait()
		unsub()
		var info *registry.Info
		if err == nil && spec.Plug != nil {
			i, perr := spec.Plug(res.Dir)
			if perr != nil {
				err = fmt.Errorf("the adapter was saved in %s but could not be plugged in: %w", res.Dir, perr)
			} else {
				info = i
			}
		}
		j.update(func() {
			t := time.Now().UTC()
			j.j.Finished = &t
			j.j.Adapter = info
			if res != nil {
				j.j.Result = &Result{Dir: res.Dir, Steps: res.Steps, Tokens: res.Tokens, Seconds: res.Duration.Seconds(),
					TrainLossBefore: finite(res.TrainLossBefore), TrainLossAfter: finite(res.TrainLossAfter), EvalLossBefore: finite(res.EvalLossBefore),
					EvalLossAfter: finite(res.EvalLossAfter), StopReason: res.StopReason}
			}
			switch {
			case err == nil:
				j.j.State = Done
			case errors.Is(err, train.ErrStopped) || errors.Is(err, context.Canceled):
				j.j.State, j.j.Error = Stopped, "stopped before the end; a checkpoint was saved"
			default:
				j.j.State, j.j.Error = Failed, err.Error()
			}
			j.done = true
		})
		m.mu.Lock()
		if m.live == j.j.ID {
			m.live = ""
		}
		m.mu.Unlock()
		m.log.Info("training job ended", "job", j.j.ID, "name", spec.Name, "state", j.snapshot().State)
	}()
	return j.snapshot(), nil
}

// Running returns the id of the running job, or "".
func (m *Manager) Running() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live
}

// Count returns how many jobs the manager remembers.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

func (m *Manager) get(id string) (*job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.m[id]
	if !ok {
		return nil, fmt.Errorf("%w: no training job %q on this node (it may have been started before a restart)", ErrNotFound, id)
	}
	return j, nil
}

// Get returns the state of job id.
func (m *Manager) Get(id string) (Job, error) {
	j, err := m.get(id)
	if err != nil {
		return Job{}, err
	}
	return j.snapshot(), nil
}

// Stop asks job id to stop (it saves a checkpoint) and returns its state.
func (m *Manager) Stop(id string) (Job, error) {
	j, err := m.get(id)
	if err != nil {
		return Job{}, err
	}
	j.cancel()
	return j.snapshot(), nil
}

// StopAll stops every job and waits for them to end.
func (m *Manager) StopAll() {
	m.mu.Lock()
	for _, j := range m.m {
		j.cancel()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// Follow calls emit with every progress event of job id so far and then with
// each new one, and idle every interval while nothing happens, until the job
// ends (it returns the final state), ctx is done, or a callback fails.
func (m *Manager) Follow(ctx context.Context, id string, interval time.Duration, emit func(progress.Event) error, idle func() error) (Job, error) {
	j, err := m.get(id)
	if err != nil {
		return Job{}, err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	next := 0
	for {
		j.mu.Lock()
		evs := j.events[next:]
		next = len(j.events)
		changed, done, snap := j.changed, j.done, j.j
		j.mu.Unlock()
		for _, ev := range evs {
			if err := emit(ev); err != nil {
				return snap, err
			}
		}
		if done {
			return snap, nil
		}
		select {
		case <-changed:
		case <-tick.C:
			if err := idle(); err != nil {
				return snap, err
			}
		case <-ctx.Done():
			return snap, ctx.Err()
		}
	}
}

// finite maps NaN and infinities (a loss that was not measured) to 0, which
// JSON can carry.
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// newID returns a random 16-hex-digit id.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
