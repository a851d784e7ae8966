package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

const (
	crashDirEnv  = "ORCHMIND_STORE_CRASH_DIR"
	crashSeedEnv = "ORCHMIND_STORE_CRASH_SEED"
)

// TestCrashChild is the writer process of TestCrashSafety: it puts blocks
// into the store named by ORCHMIND_STORE_CRASH_DIR forever and prints
// "ACK <cid>" after each Put (or PutMany) returns, and after each Commit
// of a BlockWriter for the blocks it committed (one in three rounds adds
// blocks to it, and commits only every other time, so a kill also comes
// between an Add and its Commit; one in five adds a 1.2 MiB UnixFS file,
// whose leaves go to a file pack). It does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 1))
	w := s.NewBlockWriter()
	for i := uint64(0); ; i++ {
		n := 1 + rng.IntN(3)
		var bs []blocks.Block
		for j := range n {
			size := 1 + rng.IntN(256<<10)
			bs = append(bs, rawBlock(t, genBytes(size, seed<<32+i<<4+uint64(j))))
		}
		if i%5 == 1 {
			// A file of raw leaves, file node first, as a fetch adds
			// them: its leaves go to a file pack.
			bs = fileBlocks(t, 3, 400<<10, seed<<32+i<<4)
		}
		if i%3 == 2 || i%5 == 1 {
			for _, b := range bs {
				if err := w.Add(ctx, b); err != nil {
					fmt.Println("ERR", err)
					os.Exit(3)
				}
			}
			if rng.IntN(2) == 0 {
				continue // committed with a later round's blocks
			}
			if bs, err = w.Commit(ctx); err != nil {
				fmt.Println("ERR", err)
				os.Exit(3)
			}
		} else if n == 1 {
			err = s.Put(ctx, bs[0])
		} else {
			err = s.PutMany(ctx, bs)
		}
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		var sb strings.Builder
		for _, b := range bs {
			fmt.Fprintf(&sb, "ACK %s\n", b.Cid())
		}
		os.Stdout.WriteString(sb.String()) // unbuffered: one write syscall
	}
}

// fileBlocks returns a UnixFS file node over n raw leaves of size bytes
// each (seeded), then the leaves.
func fileBlocks(t testing.TB, n, size int, seed uint64) []blocks.Block {
	fsn := ft.NewFSNode(ft.TFile)
	nd := merkledag.NodeWithData(nil)
	nd.SetCidBuilder(cidBuilder)
	var leaves []blocks.Block
	for j := range n {
		leaf := merkledag.NewRawNode(genBytes(size, seed+uint64(j)))
		fsn.AddBlockSize(uint64(size))
		if err := nd.AddNodeLink("", leaf); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leaf)
	}
	data, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	nd.SetData(data)
	return append([]blocks.Block{nd}, leaves...)
}

// TestCrashSafety starts a writer process, kills it with SIGKILL at a random
// moment, reopens the store and checks that every block the writer was told
// had been stored is there and intact. It repeats this on the same store.
func TestCrashSafety(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("running as the child")
	}
	rounds := 3
	if testing.Short() {
		rounds = 1
	}
	dir := t.TempDir()
	ctx := context.Background()
	var acked []cid.Cid
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.Itoa(round+1))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var got []cid.Cid
		var bad []string
		first := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			r := bufio.NewReader(out)
			once := sync.Once{}
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return // a line cut by the kill (no newline) is not an acknowledgement
				}
				line = strings.TrimSpace(line)
				mu.Lock()
				if c, ok := strings.CutPrefix(line, "ACK "); ok {
					if k, err := cid.Decode(c); err == nil {
						got = append(got, k)
						once.Do(func() { close(first) })
					} else {
						bad = append(bad, line)
					}
				} else if line != "" && !strings.HasPrefix(line, "PASS") && !strings.HasPrefix(line, "ok") {
					bad = append(bad, line)
				}
				mu.Unlock()
			}
		}()
		select {
		case <-first:
		case <-done:
			_ = cmd.Wait()
			t.Fatalf("round %d: the writer exited before storing anything: %v", round, bad)
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("the writer stored nothing in 30 s")
		}
		time.Sleep(time.Duration(50+rand.IntN(700)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = cmd.Wait()
		<-done
		mu.Lock()
		if len(bad) > 0 {
			t.Fatalf("round %d: the writer said: %v", round, bad)
		}
		acked = append(acked, got...)
		mu.Unlock()

		s, err := Open(dir, Options{Logger: quiet()})
		if err != nil {
			t.Fatalf("round %d: reopening after kill -9: %v", round, err)
		}
		var used int64
		for _, c := range acked {
			b, err := s.Get(ctx, c) // Get rehashes: intact or an error
			if err != nil {
				_ = s.Close()
				t.Fatalf("round %d: acknowledged block %s lost or damaged after kill -9: %v", round, c, err)
			}
			used += int64(len(b.RawData()))
		}
		if s.Used() < used {
			t.Fatalf("round %d: usage %d below the %d bytes acknowledged", round, s.Used(), used)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d blocks acknowledged before kill -9, all %d so far intact", round, len(got), len(acked))
	}
	if len(filePacks(t, dir)) == 0 {
		t.Fatal("the writer made no file pack: the test did not cover them")
	}
}
