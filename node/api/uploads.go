package api

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Defaults of the uploads folder's limits (Config.UploadsMaxBytes,
// UploadsMaxCount, UploadTTL).
const (
	DefaultUploadsMaxBytes = 2 << 30
	DefaultUploadsMaxCount = 100
	DefaultUploadTTL       = 24 * time.Hour
	// maxUploadFiles bounds the files of one upload.
	maxUploadFiles = 1000
	// partPrefix names an upload still being received; it becomes the
	// upload's id folder when complete.
	partPrefix = ".part-"
)

var (
	// errNoSpace: the uploads folder (or the disk) is full (507).
	errNoSpace = errors.New("insufficient storage")
	// errTooLarge: one request is over a limit of its own (413).
	errTooLarge = errors.New("too large")
)

// uploads keeps the uploads folder within its limits: at most maxCount
// uploads and maxBytes bytes, each deleted when unused for ttl (checked at
// start and every sweep interval). An upload is "used" when it is stored,
// planned or trained on; uploads a training job reads are never deleted
// under it.
type uploads struct {
	dir      string
	maxBytes int64
	maxCount int
	ttl      time.Duration
	maxFiles int // files in one upload
	log      *slog.Logger

	mu       sync.Mutex
	reserved int64          // bytes promised to uploads being received
	pending  int            // uploads being received
	held     map[string]int // uploads in use by a handler or a job

	stop chan struct{}
	wg   sync.WaitGroup
}

func newUploads(dir string, maxBytes int64, maxCount int, ttl time.Duration, log *slog.Logger) *uploads {
	u := &uploads{dir: dir, maxBytes: maxBytes, maxCount: maxCount, ttl: ttl, maxFiles: maxUploadFiles, log: log, held: map[string]int{}, stop: make(chan struct{})}
	u.sweep(true)
	every := min(max(ttl/4, time.Minute), time.Hour)
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-u.stop:
				return
			case <-t.C:
				u.sweep(false)
			}
		}
	}()
	return u
}

// close stops the periodic sweep.
func (u *uploads) close() {
	select {
	case <-u.stop:
	default:
		close(u.stop)
	}
	u.wg.Wait()
}

// sweep deletes the uploads unused for ttl, and unfinished ones: all of
// them at start (left by a crash), those older than ttl later.
func (u *uploads) sweep(start bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sweepLocked(start, time.Now())
}

func (u *uploads) sweepLocked(start bool, now time.Time) {
	ents, err := os.ReadDir(u.dir)
	if err != nil {
		return
	}
	removed := 0
	for _, e := range ents {
		name := e.Name()
		part := strings.HasPrefix(name, partPrefix)
		if !part && (!validUploadID(name) || u.held[name] > 0) {
			continue
		}
		if !(part && start) {
			fi, err := e.Info()
			if err != nil || now.Sub(fi.ModTime()) < u.ttl {
				continue
			}
		}
		if err := os.RemoveAll(filepath.Join(u.dir, name)); err != nil {
			u.log.Warn("cannot delete an old upload", "dir", filepath.Join(u.dir, name), "err", err)
			continue
		}
		removed++
	}
	if removed > 0 {
		u.log.Info("deleted old uploads", "count", removed, "dir", u.dir, "unused_for", u.ttl)
	}
}

// usage returns the bytes and the number of uploads in the folder
// (unfinished ones included).
func (u *uploads) usage() (bytes int64, count int) {
	ents, err := os.ReadDir(u.dir)
	if err != nil {
		return 0, 0
	}
	for _, e := range ents {
		if !e.IsDir() || (!validUploadID(e.Name()) && !strings.HasPrefix(e.Name(), partPrefix)) {
			continue
		}
		count++
		_ = filepath.WalkDir(filepath.Join(u.dir, e.Name()), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					bytes += fi.Size()
				}
			}
			return nil
		})
	}
	return bytes, count
}

// reserve makes room for one new upload of at most perUpload bytes: it
// returns how many bytes it may take (less when the folder is nearly
// full) and the function that gives the reservation back once the upload
// is stored or dropped. A full folder is errNoSpace.
func (u *uploads) reserve(perUpload int64) (int64, func(), error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sweepLocked(false, time.Now())
	used, count := u.usage()
	if count+u.pending >= u.maxCount {
		return 0, nil, fmt.Errorf("%w: the uploads folder %s already holds %d uploads, the most it keeps: train on one of them, or wait until old ones are deleted (after %s unused)",
			errNoSpace, u.dir, count+u.pending, u.ttl)
	}
	free := u.maxBytes - used - u.reserved
	if free <= 0 {
		return 0, nil, fmt.Errorf("%w: the uploads folder %s is full (%s of %s): wait until old uploads are deleted (after %s unused), or send less data",
			errNoSpace, u.dir, mib(used+u.reserved), mib(u.maxBytes), u.ttl)
	}
	n := min(perUpload, free)
	u.reserved += n
	u.pending++
	var once sync.Once
	return n, func() {
		once.Do(func() {
			u.mu.Lock()
			u.reserved -= n
			u.pending--
			u.mu.Unlock()
		})
	}, nil
}

// hold marks upload id as in use until the returned function is called,
// and counts as a use (its clock of ttl restarts, now and at release).
func (u *uploads) hold(id string) func() {
	u.mu.Lock()
	u.held[id]++
	u.mu.Unlock()
	u.touch(id)
	var once sync.Once
	return func() {
		once.Do(func() {
			u.touch(id)
			u.mu.Lock()
			if u.held[id]--; u.held[id] <= 0 {
				delete(u.held, id)
			}
			u.mu.Unlock()
		})
	}
}

func (u *uploads) touch(id string) {
	t := time.Now()
	_ = os.Chtimes(filepath.Join(u.dir, id), t, t)
}

// validUploadID reports whether s is an upload id (16 hex digits).
func validUploadID(s string) bool {
	return len(s) == 16 && strings.Trim(s, "0123456789abcdef") == ""
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
