package progress

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// steps returns n training steps one second apart, then an eval, then done.
func steps(n int) []Event {
	t0 := time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)
	var evs []Event
	for i := 1; i <= n; i++ {
		evs = append(evs, Event{Time: t0.Add(time.Duration(i) * time.Second), Phase: PhaseTrain, Step: i, Total: n, Loss: 3 - float64(i)/float64(n)})
		if i == n/2 {
			evs = append(evs, Event{Time: t0.Add(time.Duration(i) * time.Second), Phase: PhaseEval, EvalLoss: 2.5})
		}
	}
	return append(evs, Event{Time: t0.Add(time.Duration(n+1) * time.Second), Phase: PhaseDone, Message: "saved", Final: true})
}

func show(t *testing.T, o Options, evs []Event) string {
	t.Helper()
	ch := make(chan Event, len(evs))
	for _, e := range evs {
		ch <- e
	}
	close(ch)
	var buf bytes.Buffer
	if err := Show(context.Background(), &buf, o, ch); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestShowLinesPeriodic: to a file, training steps come at most one per
// Every (first and last always), other phases every time, no \r.
func TestShowLinesPeriodic(t *testing.T) {
	out := show(t, Options{Mode: Lines, Every: 10 * time.Second}, steps(40))
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		got = append(got, f[0]+" "+f[len(f)-1])
		if f[0] == "train" {
			got[len(got)-1] = f[0] + " " + f[2]
		}
	}
	// step 1; 11 and 21 by time (10 s apart); the eval after step 20,
	// and step 21 again as training resumes; 31; 40 (the last); done.
	want := "train 1/40|train 11/40|eval 2.5000|train 21/40|train 31/40|train 40/40|done saved"
	if strings.Join(got, "|") != want {
		t.Errorf("lines %q\nwant  %q\n%s", strings.Join(got, "|"), want, out)
	}
	if strings.ContainsAny(out, "\r\x1b") {
		t.Errorf("plain lines hold \\r or escape codes: %q", out)
	}
	// Every 0 writes every event, as Render(tty=false) always did.
	if n := strings.Count(show(t, Options{Mode: Lines}, steps(40)), "\n"); n != 42 {
		t.Errorf("Every 0: %d lines, want 42", n)
	}
}

// TestShowBar: on a terminal one line is redrawn with \r only, padded with
// spaces over a longer previous line, cut to the width, and ended by the
// final event; no escape sequences (Windows consoles without virtual
// terminal processing print them as text).
func TestShowBar(t *testing.T) {
	evs := []Event{
		{Phase: PhaseTrain, Step: 1, Total: 10, Loss: 2.5, Message: strings.Repeat("long message ", 3)},
		{Phase: PhaseTrain, Step: 2, Total: 10, Loss: 2.25},
		{Phase: PhaseDone, Message: "saved", Final: true},
	}
	out := show(t, Options{Mode: Bar, Width: 100}, evs)
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape sequence in %q", out)
	}
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 || strings.Count(out, "\r") != 3 {
		t.Errorf("want three \\r redraws and one final newline: %q", out)
	}
	draws := strings.Split(strings.TrimSuffix(out, "\n"), "\r")[1:]
	for i, d := range draws {
		if n := len([]rune(d)); n > 99 {
			t.Errorf("draw %d is %d columns wide on a 100-column terminal: %q", i, n, d)
		}
	}
	if len([]rune(draws[1])) != len([]rune(draws[0])) || !strings.HasSuffix(draws[1], " ") {
		t.Errorf("a shorter line does not wipe the longer one: %q after %q", draws[1], draws[0])
	}
	if !strings.Contains(draws[0], "…") || !strings.Contains(draws[1], "[======") {
		t.Errorf("draws: %q", draws)
	}
}

// TestShowOff writes nothing and still returns at the final event.
func TestShowOff(t *testing.T) {
	if out := show(t, Options{Mode: Off}, steps(5)); out != "" {
		t.Errorf("Off wrote %q", out)
	}
}

// TestOptionsFor: a buffer and a regular file get plain lines, the null
// device nothing.
func TestOptionsFor(t *testing.T) {
	if o := OptionsFor(&bytes.Buffer{}); o.Mode != Lines || o.Every != LinesEvery {
		t.Errorf("buffer: %+v", o)
	}
	f, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if o := OptionsFor(f); o.Mode != Lines {
		t.Errorf("regular file: %+v", o)
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if IsTerminal(null) {
		t.Error("the null device is reported as a terminal")
	}
	if o := OptionsFor(null); o.Mode != Off {
		t.Errorf("%s: %+v, want Off", os.DevNull, o)
	}
}
