package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/node"
	"orchmind/node/api"
)

// TestTenNodes: ten real nodes; one publishes an adapter of about 10 MB;
// the nine others find it and hold it complete and verified, fetching
// concurrently (later fetchers can get blocks from earlier ones too).
func TestTenNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("ten nodes take a while")
	}
	b, err := base.Random(model.Config{Dim: 256, HiddenDim: 512, Layers: 10, Heads: 8, KVHeads: 4, SeqLen: 64}, quant.Q8_0, 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	nodes := []*node.Node{startNode(t, b, nil)}
	for i := 1; i < 10; i++ {
		// A sparse mesh: each node knows one or two earlier ones.
		boot := addr(nodes[i-1])
		if i >= 3 {
			boot = append(boot, addr(nodes[i/2])...)
		}
		nodes = append(nodes, startNode(t, b, boot))
	}
	src := adapterFolder(t, b, 64)
	want, _ := os.ReadFile(filepath.Join(src, adapters.SafetensorsFile))
	if len(want) < 8<<20 {
		t.Fatalf("adapter is only %d bytes", len(want))
	}
	start := time.Now()
	c, err := nodes[0].Publish(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	for _, n := range nodes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(30 * time.Second)
			for {
				res, _ := n.Search(ctx, api.SearchQuery{BaseFingerprint: b.Fingerprint})
				if len(res) == 1 && res[0].CID == c {
					break
				}
				if time.Now().After(deadline) {
					errs <- os.ErrDeadlineExceeded
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			dir, err := n.Pull(ctx, c)
			if err != nil {
				errs <- err
				return
			}
			got, err := os.ReadFile(filepath.Join(dir, adapters.SafetensorsFile))
			if err != nil || !bytes.Equal(got, want) {
				errs <- os.ErrInvalid
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d MB adapter announced, found and pulled by 9 nodes in %s", len(want)>>20, time.Since(start).Round(time.Millisecond))
}
