package progress

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// IsTerminal reports whether f is a terminal (a Unix TTY or a Windows
// console). The null device, a character device too, is not.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// Mode is how progress is shown on a writer.
type Mode int

// Modes of Show.
const (
	// Lines writes plain lines: every event of another phase than train,
	// and training steps at most one per Options.Every (the first and the
	// last always). For files, pipes and logs.
	Lines Mode = iota
	// Bar redraws one line in place with a carriage return: for terminals.
	// It writes no escape sequences (it pads with spaces to wipe the last
	// line), so it looks the same in a Windows console without virtual
	// terminal processing.
	Bar
	// Off shows nothing: for the null device.
	Off
)

// Options say how Show writes.
type Options struct {
	Mode Mode
	// Width is the terminal's width in columns: Bar cuts its line to
	// Width-1 so that it never wraps (0: unknown, not cut).
	Width int
	// Every is, for Lines, the least time between two training-step
	// lines, and for Bar between two redraws (0: every event).
	Every time.Duration
}

// LinesEvery is how often OptionsFor's Lines mode writes a training step.
const LinesEvery = 10 * time.Second

// barEvery is how often OptionsFor's Bar mode redraws at most.
const barEvery = 100 * time.Millisecond

// OptionsFor picks how to show progress on w: a bar on a terminal, nothing
// on the null device, else a plain line every LinesEvery.
func OptionsFor(w io.Writer) Options {
	f, ok := w.(*os.File)
	switch {
	case !ok:
		return Options{Mode: Lines, Every: LinesEvery}
	case IsTerminal(f):
		width, _, err := term.GetSize(int(f.Fd()))
		if err != nil {
			width = 0
		}
		return Options{Mode: Bar, Width: width, Every: barEvery}
	case isNullDevice(f):
		return Options{Mode: Off}
	}
	return Options{Mode: Lines, Every: LinesEvery}
}

// isNullDevice reports whether f is os.DevNull.
func isNullDevice(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err == nil && os.SameFile(fi, null)
}

// Render writes events from ch to w until ch is closed, a final event is
// written, or ctx is done. With tty it redraws one progress-bar line in
// place; otherwise it writes one plain line per event. Show chooses more
// finely.
func Render(ctx context.Context, w io.Writer, tty bool, ch <-chan Event) error {
	if tty {
		return Show(ctx, w, Options{Mode: Bar}, ch)
	}
	return Show(ctx, w, Options{Mode: Lines}, ch)
}

// Show writes events from ch to w as o says until ch is closed, a final
// event is written, or ctx is done.
func Show(ctx context.Context, w io.Writer, o Options, ch <-chan Event) error {
	var (
		last     time.Time // when the last step line or bar was written
		lastLen  int       // runes of the bar line on screen
		phase    Phase
		drawn    bool // a bar line is on screen, not yet ended
		shownAny bool
	)
	for {
		select {
		case <-ctx.Done():
			if drawn {
				_, _ = fmt.Fprintln(w)
			}
			return ctx.Err()
		case e, ok := <-ch:
			if !ok {
				if drawn {
					_, _ = fmt.Fprintln(w)
				}
				return nil
			}
			at := e.Time
			if at.IsZero() {
				at = time.Now()
			}
			changed := !shownAny || e.Phase != phase
			lastStep := e.Total > 0 && e.Step >= e.Total
			due := o.Every == 0 || changed || lastStep || e.IsFinal() || at.Sub(last) >= o.Every ||
				(o.Mode == Lines && e.Phase != PhaseTrain)
			phase = e.Phase
			if !due || o.Mode == Off {
				if e.IsFinal() {
					return nil
				}
				continue
			}
			last, shownAny = at, true
			var err error
			if o.Mode == Bar {
				line := Line(e, 30)
				if o.Width > 1 {
					line = cut(line, o.Width-1)
				}
				n := utf8.RuneCountInString(line)
				_, err = fmt.Fprintf(w, "\r%s%s", line, strings.Repeat(" ", max(lastLen-n, 0)))
				lastLen, drawn = n, true
				if err == nil && e.IsFinal() {
					_, err = fmt.Fprintln(w)
					drawn = false
				}
			} else {
				_, err = fmt.Fprintln(w, Line(e, 0))
			}
			if err != nil {
				return fmt.Errorf("progress: render: %w", err)
			}
			if e.IsFinal() {
				return nil
			}
		}
	}
}

// cut shortens s to n runes, ending it with "…" when it was longer.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// Line formats e on one line; barWidth > 0 adds a progress bar of that width.
func Line(e Event, barWidth int) string {
	var parts []string
	parts = append(parts, string(e.Phase))
	pct := e.Percent
	if pct == 0 && e.Total > 0 {
		pct = 100 * float64(e.Step) / float64(e.Total)
	}
	if barWidth > 0 && (e.Total > 0 || e.Percent > 0) {
		n := int(pct / 100 * float64(barWidth))
		n = min(max(n, 0), barWidth)
		parts = append(parts, "["+strings.Repeat("=", n)+strings.Repeat(" ", barWidth-n)+"]")
	}
	if e.Total > 0 {
		parts = append(parts, fmt.Sprintf("step %d/%d", e.Step, e.Total))
	}
	if e.Total > 0 || e.Percent > 0 {
		parts = append(parts, fmt.Sprintf("%.1f%%", pct))
	}
	if e.Epoch > 0 {
		parts = append(parts, fmt.Sprintf("epoch %d", e.Epoch))
	}
	if e.Loss != 0 {
		parts = append(parts, fmt.Sprintf("loss %.4f", e.Loss))
	}
	if e.LossAvg != 0 {
		parts = append(parts, fmt.Sprintf("avg %.4f", e.LossAvg))
	}
	if e.EvalLoss != 0 {
		parts = append(parts, fmt.Sprintf("eval %.4f", e.EvalLoss))
	}
	if e.LR != 0 {
		parts = append(parts, fmt.Sprintf("lr %.2e", e.LR))
	}
	if e.TokensPS != 0 {
		parts = append(parts, fmt.Sprintf("%.0f tok/s", e.TokensPS))
	}
	if e.ETA > 0 {
		parts = append(parts, "ETA "+e.ETA.Round(time.Second).String())
	}
	if e.RSSBytes > 0 {
		parts = append(parts, fmt.Sprintf("rss %.0fMiB", float64(e.RSSBytes)/(1<<20)))
	}
	if e.Message != "" {
		parts = append(parts, e.Message)
	}
	return strings.Join(parts, "  ")
}

// WriteJSONL writes each event from ch to w as one JSON object per line until
// ch is closed, a final event is written, or ctx is done.
func WriteJSONL(ctx context.Context, w io.Writer, ch <-chan Event) error {
	enc := json.NewEncoder(w)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-ch:
			if !ok {
				return nil
			}
			if err := enc.Encode(e); err != nil {
				return fmt.Errorf("progress: write json line: %w", err)
			}
			if e.IsFinal() {
				return nil
			}
		}
	}
}
