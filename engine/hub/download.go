package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"orchmind/internal/atomicfile"
)

// Progress is told how many bytes of a pull are here (done) out of total;
// it may be called from several goroutines, though never at once.
type Progress func(done, total int64)

// file is one file to download.
type file struct {
	url  string
	dst  string
	size int64
	// sha256 (hex) or gitSHA1 (the git blob id, for small files Hugging
	// Face keeps outside LFS) is what the file must hash to.
	sha256, gitSHA1 string
	header          http.Header
}

// ErrCorrupt is wrapped by the error of a download whose bytes do not hash
// to the expected digest.
var ErrCorrupt = errors.New("downloaded file is corrupt")

// AccessError is a download refused with 401 or 403.
type AccessError struct {
	Status int
	URL    string
	// Hint says what to do (accept a licence, set HF_TOKEN).
	Hint string
}

func (e *AccessError) Error() string {
	return fmt.Sprintf("access refused (HTTP %d) to %s: %s", e.Status, e.URL, e.Hint)
}

// partialState is the sidecar of a .partial file: which bytes of each range
// are already on disk. It never claims more than what was synced.
type partialState struct {
	URL    string   `json:"url"`
	Size   int64    `json:"size"`
	Digest string   `json:"digest"`
	Ranges []prange `json:"ranges"`
}

type prange struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"` // exclusive
	Done  int64 `json:"done"`
}

const (
	parallelMin   = 32 << 20 // files this big are split into parallel ranges
	stateInterval = 500 * time.Millisecond
	stallTimeout  = 60 * time.Second
	maxAttempts   = 6
)

func (h *Hub) client() *http.Client {
	if h.Client != nil {
		return h.Client
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 60 * time.Second
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	h.Client = &http.Client{Transport: t}
	return h.Client
}

func (h *Hub) logf(format string, args ...any) {
	if h.Log != nil {
		h.Log.Info(fmt.Sprintf(format, args...))
	}
}

// download fetches f.url into f.dst through f.dst+".partial", resuming what
// an earlier run left there, with several ranges at once for big files,
// and renames it into place only once its digest matches. add is told
// every byte that arrives (and, first, those already there).
func (h *Hub) download(ctx context.Context, f file, add func(int64)) error {
	if f.size < 0 {
		return fmt.Errorf("download %s: unknown size", f.url)
	}
	if st, err := os.Stat(f.dst); err == nil && st.Size() == f.size {
		add(f.size)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(f.dst), 0o755); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	partial, statePath := f.dst+".partial", f.dst+".partial.json"
	digest := f.sha256
	if digest == "" {
		digest = "git-sha1:" + f.gitSHA1
	}
	out, err := os.OpenFile(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer out.Close()
	if err := lockFile(out); errors.Is(err, errLocked) {
		return fmt.Errorf("%s is being downloaded by another orchmind process: wait for it to finish (or stop it) and pull again", partial)
	} else if err != nil {
		return fmt.Errorf("download: lock %s: %w", partial, err)
	}
	st := loadState(statePath, partial, f.size, digest)
	if st == nil {
		st = &partialState{URL: f.url, Size: f.size, Digest: digest}
		n := int64(1)
		minPar := int64(parallelMin)
		if h.minParallel > 0 {
			minPar = h.minParallel
		}
		if par := int64(max(h.Parallel, 0)); f.size >= minPar {
			if par == 0 {
				par = 4
			}
			n = par
		}
		step := max((f.size+n-1)/n, 1)
		for s := int64(0); s < f.size; s += step {
			st.Ranges = append(st.Ranges, prange{Start: s, End: min(s+step, f.size)})
		}
		if err := out.Truncate(0); err != nil {
			return fmt.Errorf("download: %w", err)
		}
		if err := checkSpace(filepath.Dir(f.dst), f.size); err != nil {
			return err
		}
	}
	if fi, err := out.Stat(); err == nil && fi.Size() != f.size {
		if err := out.Truncate(f.size); err != nil {
			return fmt.Errorf("download: %w", err)
		}
	}
	done := make([]atomic.Int64, len(st.Ranges))
	var already int64
	for i, r := range st.Ranges {
		done[i].Store(r.Done)
		already += r.Done
	}
	if already > 0 {
		h.logf("resuming %s at %d of %d bytes", filepath.Base(f.dst), already, f.size)
	}
	add(already)

	var saveMu sync.Mutex
	save := func() error {
		saveMu.Lock()
		defer saveMu.Unlock()
		snap := *st
		snap.Ranges = append([]prange(nil), st.Ranges...)
		for i := range snap.Ranges {
			snap.Ranges[i].Done = done[i].Load()
		}
		// Everything counted in snap was written before the snapshot; sync
		// it before the state says so.
		if err := out.Sync(); err != nil {
			return err
		}
		b, _ := json.Marshal(snap)
		return atomicfile.WriteFile(statePath, b, 0o644)
	}
	if err := save(); err != nil {
		return fmt.Errorf("download: %w", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(st.Ranges))
	for i := range st.Ranges {
		r := st.Ranges[i]
		if r.Start+done[i].Load() >= r.End {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.fetchRange(cctx, f, out, r, &done[i], add); err != nil {
				errs[i] = err
				cancel()
			}
		}()
	}
	stop := make(chan struct{})
	saverDone := make(chan struct{})
	go func() {
		defer close(saverDone)
		t := time.NewTicker(stateInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = save()
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-saverDone
	serr := save()
	if err := errors.Join(errs...); err != nil {
		var got int64
		for i := range done {
			got += done[i].Load()
		}
		if got == 0 {
			// Nothing to resume: leave nothing behind.
			out.Close()
			_ = os.Remove(partial)
			_ = os.Remove(statePath)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ae *AccessError
		if errors.As(err, &ae) {
			return ae
		}
		return fmt.Errorf("download %s: %w (run the pull again to resume)", filepath.Base(f.dst), firstErr(errs))
	}
	if serr != nil {
		return fmt.Errorf("download: %w", serr)
	}
	if err := verify(out, f); err != nil {
		out.Close()
		_ = os.Remove(partial)
		_ = os.Remove(statePath)
		return fmt.Errorf("%s: %w", f.url, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if err := os.Rename(partial, f.dst); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	_ = os.Remove(statePath)
	_ = atomicfile.SyncDir(filepath.Dir(f.dst))
	return nil
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// loadState reads the sidecar of an earlier run, or nil when there is none
// usable for this file.
func loadState(statePath, partial string, size int64, digest string) *partialState {
	b, err := os.ReadFile(statePath)
	if err != nil {
		return nil
	}
	var st partialState
	if json.Unmarshal(b, &st) != nil || st.Size != size || st.Digest != digest || len(st.Ranges) == 0 {
		return nil
	}
	if fi, err := os.Stat(partial); err != nil || fi.Size() != size {
		return nil
	}
	for _, r := range st.Ranges {
		if r.Start < 0 || r.End > size || r.Done < 0 || r.Start+r.Done > r.End {
			return nil
		}
	}
	return &st
}

// fetchRange downloads bytes [r.Start+done, r.End) into out, retrying after
// dropped connections from where it stopped.
func (h *Hub) fetchRange(ctx context.Context, f file, out *os.File, r prange, done *atomic.Int64, add func(int64)) error {
	attempts := 0
	for {
		before := done.Load()
		if r.Start+before >= r.End {
			return nil
		}
		err := h.fetchOnce(ctx, f, out, r, done, add)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		var ae *AccessError
		if errors.As(err, &ae) {
			return ae
		}
		if done.Load() > before {
			attempts = 0
		}
		attempts++
		if attempts >= maxAttempts {
			return err
		}
		wait := time.Duration(1<<min(attempts-1, 4)) * 250 * time.Millisecond
		h.logf("download %s: %v; retrying from byte %d in %v", filepath.Base(f.dst), err, r.Start+done.Load(), wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }

func (h *Hub) fetchOnce(ctx context.Context, f file, out *os.File, r prange, done *atomic.Int64, add func(int64)) error {
	from := r.Start + done.Load()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, f.url, nil)
	if err != nil {
		return &permanentError{err}
	}
	for k, v := range f.header {
		req.Header[k] = v
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, r.End-1))
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := h.client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	skip := int64(0)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if cr := resp.Header.Get("Content-Range"); cr != "" {
			var a, b int64
			if _, err := fmt.Sscanf(cr, "bytes %d-%d/", &a, &b); err != nil || a != from {
				return fmt.Errorf("server sent range %q for bytes %d-", cr, from)
			}
		}
	case http.StatusOK:
		// No range support: read from the start, keep our range.
		skip = from
	case http.StatusUnauthorized, http.StatusForbidden:
		return &AccessError{Status: resp.StatusCode, URL: f.url, Hint: "the server refused the download"}
	case http.StatusNotFound, http.StatusRequestedRangeNotSatisfiable, http.StatusGone:
		return &permanentError{fmt.Errorf("%s: server answered %s", f.url, resp.Status)}
	default:
		return fmt.Errorf("%s: server answered %s", f.url, resp.Status)
	}
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, resp.Body, skip); err != nil {
			return err
		}
	}
	// A stalled body (no byte for stallTimeout) is cut and retried.
	stall := time.AfterFunc(stallTimeout, cancel)
	defer stall.Stop()
	buf := make([]byte, 256<<10)
	off := from
	for off < r.End {
		n, rerr := resp.Body.Read(buf[:min(int64(len(buf)), r.End-off)])
		if n > 0 {
			stall.Reset(stallTimeout)
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				return &permanentError{fmt.Errorf("write %s: %w", out.Name(), err)}
			}
			off += int64(n)
			done.Add(int64(n))
			add(int64(n))
		}
		if rerr == io.EOF {
			if off < r.End {
				return fmt.Errorf("connection closed at byte %d of %d: %w", off, r.End, io.ErrUnexpectedEOF)
			}
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	return nil
}

// verify hashes the downloaded bytes and compares them with f's digest.
func verify(out *os.File, f file) error {
	var hh hash.Hash
	want := f.sha256
	switch {
	case f.sha256 != "":
		hh = sha256.New()
	case f.gitSHA1 != "":
		hh = sha1.New()
		fmt.Fprintf(hh, "blob %d\x00", f.size)
		want = f.gitSHA1
	default:
		return nil
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(hh, out); err != nil {
		return err
	}
	got := hex.EncodeToString(hh.Sum(nil))
	if !strings.EqualFold(got, want) {
		kind := "sha256"
		if f.sha256 == "" {
			kind = "git blob id"
		}
		return fmt.Errorf("%w: its %s is %s, expected %s; nothing was kept, run the pull again", ErrCorrupt, kind, got, want)
	}
	return nil
}

// aggregate sums the progress of several files.
type aggregate struct {
	mu          sync.Mutex
	done, total int64
	p           Progress
}

func newAggregate(p Progress, total int64) *aggregate { return &aggregate{p: p, total: total} }

func (a *aggregate) sub() func(int64) {
	return func(n int64) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.done += n
		if a.p != nil {
			a.p(a.done, a.total)
		}
	}
}
