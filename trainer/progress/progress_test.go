package progress

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFanOutAndUnsubscribe(t *testing.T) {
	b := NewBus()
	c1, u1 := b.Subscribe(10)
	c2, u2 := b.Subscribe(10)
	b.Publish(Event{Phase: PhaseTrain, Step: 1, Total: 10})
	for i, c := range []<-chan Event{c1, c2} {
		e := <-c
		if e.Step != 1 || e.Time.IsZero() {
			t.Errorf("sub %d got %+v", i, e)
		}
	}
	u1()
	u1() // idempotent
	if _, ok := <-c1; ok {
		t.Error("unsubscribed channel not closed")
	}
	b.Publish(Event{Phase: PhaseTrain, Step: 2})
	if e := <-c2; e.Step != 2 {
		t.Errorf("got %+v", e)
	}
	u2()
	b.Close()
	b.Close()
	c3, _ := b.Subscribe(1)
	if _, ok := <-c3; ok {
		t.Error("subscribe after close should give a closed channel")
	}
}

func TestSlowSubscriberDropsButGetsFinal(t *testing.T) {
	b := NewBus()
	slow, _ := b.Subscribe(2)
	dropped := 0
	for i := 1; i <= 100; i++ {
		dropped += b.Publish(Event{Phase: PhaseTrain, Step: i, Total: 100})
	}
	if dropped != 98 {
		t.Errorf("dropped %d, want 98", dropped)
	}
	if d := b.Publish(Event{Phase: PhaseDone, Message: "finished"}); d != 0 {
		t.Errorf("final event dropped for %d subscribers", d)
	}
	b.Close()
	var got []Event
	for e := range slow {
		got = append(got, e)
	}
	if len(got) != 2 || got[len(got)-1].Phase != PhaseDone {
		t.Fatalf("got %+v, want 2 events ending with done", got)
	}
	if got[0].Step != 2 {
		t.Errorf("oldest event should have been evicted, kept step %d", got[0].Step)
	}
}

func TestConcurrentPublishSubscribe(t *testing.T) {
	b := NewBus()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, u := b.Subscribe(1)
			defer u()
			for range 50 {
				select {
				case <-c:
				default:
				}
			}
		}()
	}
	for i := range 200 {
		b.Publish(Event{Phase: PhaseTrain, Step: i})
	}
	wg.Wait()
	b.Close()
}

func TestRenderPlainAndTTY(t *testing.T) {
	evs := []Event{
		{Phase: PhaseTrain, Step: 5, Total: 10, Epoch: 1, Loss: 2.5, LR: 1e-3, TokensPS: 1234, ETA: 90 * time.Second, RSSBytes: 64 << 20},
		{Phase: PhaseDone, Message: "saved adapter"},
		{Phase: PhaseTrain, Step: 9, Total: 10}, // after final: not rendered
	}
	for _, tty := range []bool{false, true} {
		ch := make(chan Event, len(evs))
		for _, e := range evs {
			ch <- e
		}
		var buf bytes.Buffer
		if err := Render(context.Background(), &buf, tty, ch); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, want := range []string{"step 5/10", "50.0%", "loss 2.5000", "lr 1.00e-03", "1234 tok/s", "ETA 1m30s", "rss 64MiB", "saved adapter"} {
			if !strings.Contains(out, want) {
				t.Errorf("tty=%v: output lacks %q:\n%s", tty, want, out)
			}
		}
		if strings.Contains(out, "step 9/10") {
			t.Errorf("tty=%v: rendered past final event", tty)
		}
		if tty != strings.Contains(out, "\r") || tty != strings.Contains(out, "[===============") {
			t.Errorf("tty=%v: wrong mode output %q", tty, out)
		}
	}
}

func TestWriteJSONL(t *testing.T) {
	ch := make(chan Event, 3)
	ch <- Event{Phase: PhaseTrain, Step: 1, Total: 3, Loss: 1.5}
	ch <- Event{Phase: PhaseEval, EvalLoss: 1.25}
	ch <- Event{Phase: PhaseError, Message: "out of memory"}
	var buf bytes.Buffer
	if err := WriteJSONL(context.Background(), &buf, ch); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	var got []Event
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if len(got) != 3 || got[0].Loss != 1.5 || got[1].EvalLoss != 1.25 || got[2].Message != "out of memory" {
		t.Errorf("got %+v", got)
	}
}

func TestRenderCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Render(ctx, &bytes.Buffer{}, false, make(chan Event)); err != context.Canceled {
		t.Errorf("err %v", err)
	}
	if err := WriteJSONL(ctx, &bytes.Buffer{}, make(chan Event)); err != context.Canceled {
		t.Errorf("err %v", err)
	}
}

func TestIsTerminalOnRegularFile(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("regular file reported as terminal")
	}
}
