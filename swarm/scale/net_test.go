package scale

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// TestSimStreamDelivers writes more pieces than the window holds through a
// delayed stream and checks they all arrive, in order, no sooner than the
// delay, and that an idle stream keeps no queue.
func TestSimStreamDelivers(t *testing.T) {
	mn, err := mocknet.FullMeshLinked(2)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	hs := mn.Hosts()
	var all traffic
	const delay = 30 * time.Millisecond
	fixed := func(peer.ID) time.Duration { return delay }
	a, err := newSimHost(hs[0], 10, 20, time.Second, -1, &all, fixed)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newSimHost(hs[1], 10, 20, time.Second, -1, &all, fixed)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	got := make(chan []byte, 1)
	b.SetStreamHandler("/test/1", func(s network.Stream) {
		data, _ := io.ReadAll(s)
		got <- data
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := a.NewStream(ctx, b.ID(), "/test/1")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	t0 := time.Now()
	for i := range 3 * streamWindow {
		p := bytes.Repeat([]byte{byte(i)}, 100+i%7)
		want.Write(p)
		if _, err := s.Write(p); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ss := s.(*simStream)
	ss.mu.Lock()
	pending := ss.pending
	ss.mu.Unlock()
	if pending != 0 {
		t.Errorf("%d pieces pending after Close", pending)
	}
	select {
	case data := <-got:
		if !bytes.Equal(data, want.Bytes()) {
			t.Errorf("received %d bytes, not the %d written in order", len(data), want.Len())
		}
	case <-ctx.Done():
		t.Fatal("nothing received")
	}
	if el := time.Since(t0); el < delay {
		t.Errorf("delivered in %v, before the link's delay %v", el, delay)
	}
	// The sender ends once the queue is empty, and drops it.
	time.Sleep(50 * time.Millisecond)
	ss.mu.Lock()
	q, running := ss.q, ss.running
	ss.mu.Unlock()
	if q != nil || running {
		t.Errorf("idle stream keeps a queue of %d (cap %d) or a sender (%v)", len(q), cap(q), running)
	}
	if w := all[clOther].bytes.Load(); w != int64(want.Len()) {
		t.Errorf("counted %d bytes written, want %d", w, want.Len())
	}
}
