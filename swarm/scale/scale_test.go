package scale

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHundredNodes is the short version of the harness that runs with the
// other tests: 100 nodes 20–200 ms apart, 10% churn, no pull phase. An
// announcement must reach at least 99% of the live nodes (joiners
// included, through the catalogue exchange) and DHT lookups must find the
// provider.
func TestHundredNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the 100-node swarm takes about a minute of CPU")
	}
	o := Options{Nodes: 100, Authors: 10, Lookups: 20, Pullers: -1, Quiet: -1, Observe: 15 * time.Second, Logger: testLogger()}
	if raceOn {
		// The race detector's goroutine limit: a smaller swarm, with a
		// pull, under -race; `make unit` runs the 100 nodes without it.
		o.Nodes, o.Authors, o.Lookups, o.Pullers, o.Background, o.PullMB = 8, 3, 5, 2, 2, 2
	}
	res, err := Run(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := json.Marshal(res)
	t.Logf("%s", line)
	if res.Coverage < 0.99 {
		t.Errorf("the announcement reached %.1f%% of the live nodes, want at least 99%%", 100*res.Coverage)
	}
	if res.Joined > 0 && res.JoinersCov < 0.9 {
		t.Errorf("only %.0f%% of the nodes that joined during the churn learned the announcement", 100*res.JoinersCov)
	}
	if res.LookupsOK < res.Lookups*9/10 {
		t.Errorf("DHT lookups found the provider %d times of %d", res.LookupsOK, res.Lookups)
	}
	if res.HopsP99 > float64(res.HopsBound+2) {
		t.Errorf("lookup hops p99 = %v, want 0..%d", res.HopsP99, res.HopsBound+2)
	}
	if res.Catalogue < float64(o.Authors) {
		t.Errorf("median catalogue holds %v announcements, want the %d announced", res.Catalogue, o.Authors)
	}
	if o.Pullers > 0 && res.PullsDone != o.Pullers+o.Background {
		t.Errorf("%d of %d pulls finished", res.PullsDone, o.Pullers+o.Background)
	}
}

// TestLinkLatency checks the latency model stays within its bounds and
// spreads over them.
func TestLinkLatency(t *testing.T) {
	lo, hi := 20*time.Millisecond, 200*time.Millisecond
	minL, maxL := hi, lo
	r := newRand(3)
	for range 10000 {
		l := linkLatency(randomPlace(r), randomPlace(r), lo, hi)
		if l < lo || l > hi {
			t.Fatalf("latency %v outside [%v, %v]", l, lo, hi)
		}
		minL, maxL = min(minL, l), max(maxL, l)
	}
	if minL > 40*time.Millisecond || maxL < 150*time.Millisecond {
		t.Errorf("latencies span only %v..%v of %v..%v", minL, maxL, lo, hi)
	}
}

// BenchmarkScale runs the harness once per node count in SCALE_NODES
// (default "100,300"; `make bench-scale` sets 100,300,1000) and prints
// one JSON line per run. SCALE_CHURN, SCALE_UPLINK_MBPS, SCALE_PULLERS,
// SCALE_BACKGROUND, SCALE_CONN_LOW, SCALE_CONN_HIGH,
// SCALE_CONN_GRACE_S, SCALE_JOIN_WAVE, SCALE_JOIN_TIMEOUT_S tune it; SCALE_PPROF=dir writes CPU, heap and goroutine
// profiles; SCALE_PPROF_HTTP=127.0.0.1:6060 serves net/http/pprof.
func BenchmarkScale(b *testing.B) {
	if addr := os.Getenv("SCALE_PPROF_HTTP"); addr != "" {
		// net/http/pprof on a loopback address, to look inside a long run.
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	counts := envList("SCALE_NODES", "100,300")
	for _, n := range counts {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for range b.N {
				o := Options{Nodes: n, Logger: testLogger()}
				if v, ok := envFloat("SCALE_CHURN"); ok {
					o.Churn = v
				}
				if v, ok := envFloat("SCALE_UPLINK_MBPS"); ok {
					o.UplinkMbps = v
				}
				if v, ok := envFloat("SCALE_PULLERS"); ok {
					o.Pullers = int(v)
				}
				if v, ok := envFloat("SCALE_BACKGROUND"); ok {
					o.Background = int(v)
				}
				if v, ok := envFloat("SCALE_CONN_LOW"); ok {
					o.ConnLow = int(v)
				}
				if v, ok := envFloat("SCALE_CONN_HIGH"); ok {
					o.ConnHigh = int(v)
				}
				if v, ok := envFloat("SCALE_JOIN_TIMEOUT_S"); ok {
					o.JoinTimeout = time.Duration(v * float64(time.Second))
				}
				if v, ok := envFloat("SCALE_JOIN_WAVE"); ok {
					o.JoinWave = int(v)
				}
				if v, ok := envFloat("SCALE_CONN_GRACE_S"); ok {
					o.ConnGrace = time.Duration(v * float64(time.Second))
				}
				if d := os.Getenv("SCALE_PPROF"); d != "" {
					o.CPUProfile = fmt.Sprintf("%s/cpu-%d.pprof", d, n)
					o.HeapProfile = fmt.Sprintf("%s/heap-%d.pprof", d, n)
				}
				res, err := Run(b.Context(), o)
				if err != nil {
					b.Fatal(err)
				}
				line, _ := json.Marshal(res)
				fmt.Println(string(line))
			}
		})
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("SCALE_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return nil
}

func envList(name, def string) []int {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

func envFloat(name string) (float64, bool) {
	v, err := strconv.ParseFloat(os.Getenv(name), 64)
	return v, err == nil
}

// TestConnCost measures what a connection end costs on libp2p's real TCP
// transport (127.0.0.1, TLS, yamux) and on the mock network, and checks
// the figures are sane: the harness's per-node memory is corrected by
// their difference (docs/scale.md).
func TestConnCost(t *testing.T) {
	for _, real := range []bool{false, true} {
		c, err := MeasureConnCost(t.Context(), 8, 2, real)
		if err != nil {
			t.Fatal(err)
		}
		line, _ := json.Marshal(c)
		t.Logf("%s", line)
		if c.Goroutines < 1 || c.HeapKB <= 0 {
			t.Errorf("%s: %v goroutines and %v KB of heap per connection end; a connection with open streams costs more", c.Transport, c.Goroutines, c.HeapKB)
		}
	}
}

// BenchmarkConnCost prints one JSON line per transport: goroutines, heap
// and stack per connection end with 2 streams each way (SCALE_CONN_HOSTS
// hosts, default 30, connected pairwise).
func BenchmarkConnCost(b *testing.B) {
	k := 30
	if v, ok := envFloat("SCALE_CONN_HOSTS"); ok {
		k = int(v)
	}
	for range b.N {
		for _, real := range []bool{false, true} {
			c, err := MeasureConnCost(b.Context(), k, 2, real)
			if err != nil {
				b.Fatal(err)
			}
			line, _ := json.Marshal(c)
			fmt.Println(string(line))
		}
	}
}
