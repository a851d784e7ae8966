package progress

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// IsTerminal reports whether f is a character device (a TTY), without cgo.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Render writes events from ch to w until ch is closed, a final event is
// written, or ctx is done. With tty it redraws one progress-bar line in
// place; otherwise it writes one plain line per event.
func Render(ctx context.Context, w io.Writer, tty bool, ch <-chan Event) error {
	for {
		select {
		case <-ctx.Done():
			if tty {
				_, _ = fmt.Fprintln(w)
			}
			return ctx.Err()
		case e, ok := <-ch:
			if !ok {
				return nil
			}
			var err error
			if tty {
				_, err = fmt.Fprintf(w, "\r\033[K%s", Line(e, 30))
				if err == nil && e.IsFinal() {
					_, err = fmt.Fprintln(w)
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
