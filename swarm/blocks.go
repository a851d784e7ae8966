package swarm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Progress reports a Fetch as it goes.
type Progress struct {
	// Blocks and Bytes count the blocks fetched from peers so far.
	Blocks, Bytes int64
	// Local counts blocks that were already in the blockstore (not fetched).
	Local int64
}

// fetchBatch bounds how many blocks of one DAG level are asked for at once.
const fetchBatch = 256

// Fetch makes sure the whole DAG under root is in the blockstore, fetching
// what is missing with bitswap from any peers that have it (found among
// connected peers and through the DHT), several at once. Every received
// block is hash-checked against its CID before it is stored, so a peer
// cannot make us store wrong data. Blocks already present are not fetched
// again, so a Fetch interrupted by a restart resumes where it stopped.
// progress, if not nil, is called after each block, from Fetch's goroutine.
// Only dag-pb and raw blocks are understood.
func (s *Swarm) Fetch(ctx context.Context, root cid.Cid, progress func(Progress)) error {
	if !root.Defined() {
		return errors.New("swarm: fetch: empty CID")
	}
	switch root.Type() {
	case cid.DagProtobuf, cid.Raw:
	default:
		return fmt.Errorf("swarm: fetch %s: unsupported codec %#x (only dag-pb and raw)", root, root.Type())
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	bs := s.cfg.Blockstore
	// The blockservice writes fetched blocks itself and only logs a failed
	// write (the fetch then just misses blocks); watch the store so a full
	// disk stops the fetch at once and is reported as what it is.
	pf, watch := bs.(putFailureCounter)
	var n0 uint64
	if watch {
		n0, _ = pf.PutFailures()
	}
	fail := func(err error) error {
		if watch {
			if n, perr := pf.PutFailures(); n > n0 {
				cancel(fmt.Errorf("storing fetched blocks failed: %w", perr))
			}
		}
		return fetchErr(ctx, root, err)
	}
	if watch {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				case <-t.C:
					if n, err := pf.PutFailures(); n > n0 {
						cancel(fmt.Errorf("storing fetched blocks failed: %w", err))
						return
					}
				}
			}
		}()
	}
	sess := merkledag.WrapSession(blockservice.NewSession(ctx, s.bserv))

	var pr Progress
	visited := cid.NewSet()
	visited.Add(root)
	level := []cid.Cid{root}
	for len(level) > 0 {
		var next []cid.Cid
		for start := 0; start < len(level); start += fetchBatch {
			batch := level[start:min(start+fetchBatch, len(level))]
			local := make(map[cid.Cid]bool, len(batch))
			for _, c := range batch {
				has, err := bs.Has(ctx, c)
				if err != nil {
					return fmt.Errorf("swarm: fetch %s: checking the blockstore: %w", root, err)
				}
				local[c] = has
			}
			got := 0
			s.audit.want(batch)
			for opt := range sess.GetMany(ctx, batch) {
				if opt.Err != nil {
					return fail(opt.Err)
				}
				nd := opt.Node
				got++
				if local[nd.Cid()] {
					pr.Local++
				} else {
					pr.Blocks++
					pr.Bytes += int64(len(nd.RawData()))
				}
				var size uint64
				for _, l := range nd.Links() {
					if visited.Visit(l.Cid) {
						next = append(next, l.Cid)
					}
					size += l.Size
				}
				if nd.Cid() == root && size > 0 {
					// A dag-pb root's links carry the sizes of their
					// subtrees: check the space before fetching them.
					if sc, ok := bs.(spaceChecker); ok && !local[root] {
						if err := sc.CheckSpace(int64(size)); err != nil {
							return fmt.Errorf("swarm: fetch %s (%s): %w", root, humanize.IBytes(size), err)
						}
					}
				}
				if progress != nil {
					progress(pr)
				}
			}
			if got != len(batch) {
				return fail(fmt.Errorf("%d of %d blocks not received", len(batch)-got, len(batch)))
			}
		}
		level = next
	}
	return nil
}

// spaceChecker is implemented by blockstores that can tell ahead whether
// a number of bytes fits (store.Store).
type spaceChecker interface{ CheckSpace(need int64) error }

// putFailureCounter is implemented by blockstores that count failed writes
// (store.Store).
type putFailureCounter interface{ PutFailures() (uint64, error) }

func fetchErr(ctx context.Context, root cid.Cid, err error) error {
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		return fmt.Errorf("swarm: fetch %s stopped: %w; what arrived is kept and a new pull resumes from there", root, cause)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("swarm: fetch %s stopped before all blocks arrived (%v); what arrived is kept and a new Fetch resumes from there: %w", root, err, ctx.Err())
	}
	if ipld.IsNotFound(err) {
		return fmt.Errorf("swarm: fetch %s: no peer had a block (%v); is any provider online?", root, err)
	}
	return fmt.Errorf("swarm: fetch %s: %w", root, err)
}
