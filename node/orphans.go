package node

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// orphanAge is how long an adapter-folder temporary must have been left
// alone before a starting node takes it for an orphan.
const orphanAge = time.Hour

var (
	// pullTemp is a pull's working folder in the data folder.
	pullTemp = regexp.MustCompile(`^\.pull-[0-9]+$`)
	// adapterTemp is a temporary of store.ExportFolder (.orchmind-export-N),
	// adapters.WriteFolder (.NAME.tmp-N, .NAME.tmp-N.old) or atomicfile
	// (.NAME.tmp-N) in the adapters folder.
	adapterTemp = regexp.MustCompile(`^\.(orchmind-export-[0-9]+|.+\.tmp-[0-9]+(\.old)?)$`)
)

// cleanOrphans removes what a node or a training run killed mid-write left
// behind: every pull working folder in the data folder (only the node that
// holds the store's lock, this one, uses them) and, in the adapters folder,
// export and write temporaries untouched for orphanAge (another process,
// a training run, may be writing a fresh one). It removes nothing else and
// reports what it removed.
func cleanOrphans(dataDir, adapterDir string, now time.Time, log *slog.Logger) []string {
	var removed []string
	sweep := func(dir string, match *regexp.Regexp, minAge time.Duration) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			if !match.MatchString(e.Name()) {
				continue
			}
			if minAge > 0 {
				fi, err := e.Info()
				if err != nil || now.Sub(fi.ModTime()) < minAge {
					continue
				}
			}
			p := filepath.Join(dir, e.Name())
			if err := os.RemoveAll(p); err != nil {
				log.Warn("could not remove a leftover temporary folder", "path", p, "err", err)
				continue
			}
			removed = append(removed, p)
		}
	}
	sweep(dataDir, pullTemp, 0)
	sweep(adapterDir, adapterTemp, orphanAge)
	if len(removed) > 0 {
		log.Info("removed temporaries left by an interrupted pull or write", "paths", strings.Join(removed, " "))
	}
	return removed
}
