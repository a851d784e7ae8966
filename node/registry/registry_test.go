package registry

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orchmind/adapters"
	"orchmind/engine/base"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/trainer/lora"
)

var tiny = model.Config{Dim: 32, HiddenDim: 48, Layers: 2, Heads: 4, KVHeads: 2, SeqLen: 64, SharedClassifier: true}

func newBase(t testing.TB, c model.Config, typ quant.Type, seed uint64) *base.Base {
	t.Helper()
	b, err := base.Random(c, typ, seed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomAdapter is a LoRA adapter for b with non-zero B, stamped with b's
// identity.
func randomAdapter(t testing.TB, b *base.Base, rank int, seed uint64) *adapters.Adapter {
	t.Helper()
	a, err := lora.New(b.Model, rank, float32(rank), nil, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 9))
	for _, k := range a.SortedKeys() { // map order would make the weights differ run to run
		p := a.Pairs[k]
		for i := range p.B {
			p.B[i] = float32(rng.NormFloat64() * 0.05)
		}
	}
	a.BaseFingerprint, a.BaseName = b.Fingerprint, b.Name
	return a
}

func writeAdapter(t testing.TB, dir, name string, b *base.Base, a *adapters.Adapter) string {
	t.Helper()
	p := filepath.Join(dir, name)
	man := adapters.Manifest{Announced: adapters.Announced{Name: name, BaseName: b.Name, BaseFingerprint: a.BaseFingerprint, Rank: a.Rank, Alpha: a.Alpha},
		BaseShapeFingerprint: b.ShapeID, Created: time.Now()}
	if err := lora.WritePEFT(p, a, man, b.Model); err != nil {
		t.Fatal(err)
	}
	return p
}

// logits runs the tokens through m with d plugged and returns the last logits.
func logits(m *model.Model, d model.Delta, toks []int) []float32 {
	st := m.NewState()
	st.SetDelta(d)
	var out []float32
	for pos, id := range toks {
		out = st.Forward(id, pos)
	}
	return append([]float32(nil), out...)
}

func maxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func TestLoadDeltaMatchesPlug(t *testing.T) {
	b := newBase(t, tiny, quant.F32, 1)
	r := New(b, nil)
	a1, a2 := randomAdapter(t, b, 4, 1), randomAdapter(t, b, 2, 2)
	dir := t.TempDir()
	if _, err := r.Load(writeAdapter(t, dir, "one", b, a1)); err != nil {
		t.Fatal(err)
	}
	info, err := r.Load(writeAdapter(t, dir, "two", b, a2))
	if err != nil {
		t.Fatal(err)
	}
	if info.Warning != "" || info.Rank != 2 || info.Scale != 1 || info.Params == 0 {
		t.Fatalf("info = %+v", info)
	}
	// What its orchmind.json announces comes with it, in the shared type.
	if m := info.Manifest; m == nil || m.Name != "two" || m.BaseFingerprint != b.Fingerprint || m.Rank != 2 {
		t.Fatalf("info.Manifest = %+v", info.Manifest)
	}
	if got := r.List(); len(got) != 2 || got[0].Name != "one" || got[1].Name != "two" {
		t.Fatalf("List = %+v", got)
	}
	toks := []int{1, 40, 50, 60, 70}
	base0 := logits(b.Model, nil, toks)
	want, err := lora.NewPlug(b.Model, lora.Weighted{Adapter: a1, Weight: 0.5}, lora.Weighted{Adapter: a2, Weight: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetScale("two", 2); err != nil {
		t.Fatal(err)
	}
	d, err := r.Delta([]Selected{{Name: "one", Weight: 0.5}, {Name: "two"}})
	if err != nil {
		t.Fatal(err)
	}
	got, exp := logits(b.Model, d, toks), logits(b.Model, want, toks)
	if diff := maxDiff(got, exp); diff > 1e-4 {
		t.Fatalf("composed delta differs from lora.NewPlug by %g", diff)
	}
	if diff := maxDiff(got, base0); diff < 1e-3 {
		t.Fatalf("adapters changed the logits by only %g", diff)
	}
	if d, err := r.Delta(nil); err != nil || d != nil {
		t.Fatalf("empty selection: %v %v", d, err)
	}
	// The delta stays valid after unloading.
	if err := r.Unload("one"); err != nil {
		t.Fatal(err)
	}
	if diff := maxDiff(logits(b.Model, d, toks), exp); diff > 1e-4 {
		t.Fatalf("delta changed after unload by %g", diff)
	}
	if _, err := r.Delta([]Selected{{Name: "one"}}); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unloaded adapter: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	b := newBase(t, tiny, quant.Q8_0, 1)
	other := newBase(t, tiny, quant.Q8_0, 2)
	r := New(b, nil)
	dir := t.TempDir()

	// Same shapes, another base: refused with both fingerprints.
	p := writeAdapter(t, dir, "foreign", other, randomAdapter(t, other, 4, 3))
	_, err := r.Load(p)
	if !errors.Is(err, ErrWrongBase) || !strings.Contains(err.Error(), b.Fingerprint) || !strings.Contains(err.Error(), other.Fingerprint) {
		t.Fatalf("foreign adapter: %v", err)
	}
	// Other shapes, no fingerprint: refused by the shape check.
	bigger := tiny
	bigger.Dim, bigger.Heads = 64, 8
	big := newBase(t, bigger, quant.F32, 3)
	ab := randomAdapter(t, big, 2, 4)
	ab.BaseFingerprint = ""
	if _, err := r.Add("big", "", "", ab, nil); !errors.Is(err, ErrWrongBase) || !strings.Contains(err.Error(), "another base") {
		t.Fatalf("wrong shapes: %v", err)
	}
	// No fingerprint, shapes fit: accepted with a warning.
	an := randomAdapter(t, b, 2, 5)
	an.BaseFingerprint = ""
	info, err := r.Add("anon", "bafyanon", "", an, nil)
	if err != nil || info.Warning == "" {
		t.Fatalf("anonymous adapter: %+v %v", info, err)
	}
	if _, err := r.Get("bafyanon"); err != nil {
		t.Fatalf("lookup by CID: %v", err)
	}
	if _, err := r.Add("anon", "", "", an, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := r.Add("../x", "", "", an, nil); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad name: %v", err)
	}
	// Corrupt tensor file.
	good := writeAdapter(t, dir, "good", b, randomAdapter(t, b, 2, 6))
	st := filepath.Join(good, adapters.SafetensorsFile)
	raw, _ := os.ReadFile(st)
	if err := os.WriteFile(st, raw[:len(raw)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load(good); !errors.Is(err, ErrBadAdapter) {
		t.Fatalf("corrupt adapter: %v", err)
	}
	if _, err := r.Load(filepath.Join(dir, "missing")); !errors.Is(err, ErrBadAdapter) {
		t.Fatalf("missing folder: %v", err)
	}
	for _, w := range []float32{float32(math.NaN()), 100, -9} {
		if err := r.SetScale("anon", w); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("scale %v: %v", w, err)
		}
		if _, err := r.Delta([]Selected{{Name: "anon", Weight: w}}); !errors.Is(err, ErrBadRequest) {
			t.Fatalf("weight %v: %v", w, err)
		}
	}
	if _, err := r.Delta([]Selected{{Name: "anon"}, {Name: "bafyanon"}}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("selected twice: %v", err)
	}
	if err := r.Unload("nope"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unload unknown: %v", err)
	}
}

func TestBakeMatchesDelta(t *testing.T) {
	for _, typ := range []quant.Type{quant.F32, quant.Q8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			b := newBase(t, tiny, typ, 1)
			r := New(b, nil)
			if _, err := r.Add("a", "", "", randomAdapter(t, b, 4, 7), nil); err != nil {
				t.Fatal(err)
			}
			toks := []int{1, 80, 90, 100}
			m, d, err := r.Resolve([]Selected{{Name: "a"}})
			if err != nil || m != b.Model || d == nil {
				t.Fatalf("before bake: %v", err)
			}
			want := logits(m, d, toks)
			if err := r.Bake("a"); err != nil {
				t.Fatal(err)
			}
			bm, bd, err := r.Resolve([]Selected{{Name: "a"}})
			if err != nil || bm == b.Model || bd != nil {
				t.Fatalf("after bake: model swapped %v, delta %v, %v", bm != b.Model, bd, err)
			}
			tol := 1e-4
			if typ != quant.F32 {
				tol = 0.1 // re-quantization error
			}
			got := logits(bm, nil, toks)
			if diff := maxDiff(got, want); diff > tol {
				t.Fatalf("baked logits differ by %g (tolerance %g)", diff, tol)
			}
			if diff := maxDiff(got, logits(b.Model, nil, toks)); diff < 1e-3 {
				t.Fatalf("baking changed nothing (%g); the base must stay untouched and the copy changed", diff)
			}
			// Another scale falls back to the delta.
			if m, d, _ := r.Resolve([]Selected{{Name: "a", Weight: 0.5}}); m != b.Model || d == nil {
				t.Fatal("a different weight should use the delta on the base")
			}
			if err := r.Unbake("a"); err != nil {
				t.Fatal(err)
			}
			if m, _, _ := r.Resolve([]Selected{{Name: "a"}}); m != b.Model {
				t.Fatal("unbaked adapter still served from the copy")
			}
		})
	}
}

// TestConcurrentSwap: two goroutines load, rescale and unload adapters while
// a third generates with whatever is loaded (run with -race).
func TestConcurrentSwap(t *testing.T) {
	b := newBase(t, tiny, quant.Q8_0, 1)
	r := New(b, nil)
	ads := []*adapters.Adapter{randomAdapter(t, b, 2, 1), randomAdapter(t, b, 2, 2), randomAdapter(t, b, 2, 3)}
	names := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := names[(i+w)%3]
				_, _ = r.Add(n, "", "", ads[(i+w)%3], nil)
				_ = r.SetScale(n, float32(i%3))
				if i%2 == w {
					_ = r.Unload(n)
				}
				_ = r.List()
			}
		}()
	}
	ok := 0
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ok < 20 && time.Now().Before(deadline); i++ {
		sel := []Selected{{Name: names[i%3]}}
		if i%4 == 0 {
			sel = append(sel, Selected{Name: names[(i+1)%3], Weight: 0.5})
		}
		m, d, err := r.Resolve(sel)
		if err != nil {
			if !errors.Is(err, ErrUnknown) {
				t.Fatal(err)
			}
			continue
		}
		out := logits(m, d, []int{1, 70, 71})
		for _, v := range out {
			if math.IsNaN(float64(v)) {
				t.Fatal("NaN logits")
			}
		}
		ok++
	}
	close(stop)
	wg.Wait()
	if ok == 0 {
		t.Fatal("no generation ran with an adapter")
	}
}

// smolLM is SmolLM-135M's shape (vocabulary cut to bytes: the swap does not
// touch it).
var smolLM = model.Config{Dim: 576, HiddenDim: 1536, Layers: 30, Heads: 9, KVHeads: 3, SeqLen: 2048, SharedClassifier: true}

// BenchmarkAdapterSwap measures activating adapter A then B (r=16, all seven
// projections) on a loaded base of SmolLM-135M dimensions: one op is two
// activations.
func BenchmarkAdapterSwap(b *testing.B) {
	bs := newBase(b, smolLM, quant.Q8_0, 1)
	r := New(bs, nil)
	for i, n := range []string{"A", "B"} {
		if _, err := r.Add(n, "", "", randomAdapter(b, bs, 16, uint64(i+1)), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		for _, n := range []string{"A", "B"} {
			if _, err := r.Delta([]Selected{{Name: n}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/activation")
}
