package lora

import (
	"fmt"
	"math"
	"math/rand/v2"

	"orchmind/adapters"
	"orchmind/engine/model"
	"orchmind/engine/parallel"
	"orchmind/engine/tensor"
)

// AllModules are the seven projections of a Llama block, the default targets.
var AllModules = []adapters.Module{adapters.Q, adapters.K, adapters.V, adapters.O, adapters.Gate, adapters.Up, adapters.Down}

// projOf maps a PEFT module name to the model's projection.
func projOf(m adapters.Module) (model.Proj, error) {
	p, ok := model.ParseProj(string(m))
	if !ok {
		return 0, fmt.Errorf("lora: unknown target module %q (use q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)", m)
	}
	return p, nil
}

// New returns a fresh adapter for m with PEFT's initialisation: A drawn
// Kaiming-uniform with a=√5 (uniform in ±1/√in), B zero, so the adapted
// model starts out equal to the base. The same seed gives the same adapter.
func New(m *model.Model, rank int, alpha float32, modules []adapters.Module, seed uint64) (*adapters.Adapter, error) {
	if rank <= 0 {
		return nil, fmt.Errorf("lora: rank must be > 0 (got %d)", rank)
	}
	if !(alpha > 0) {
		return nil, fmt.Errorf("lora: alpha must be > 0 (got %g)", alpha)
	}
	if len(modules) == 0 {
		modules = AllModules
	}
	a := &adapters.Adapter{Rank: rank, Alpha: alpha, TargetModules: modules, Pairs: map[adapters.Key]*adapters.Pair{}}
	rng := rand.New(rand.NewPCG(seed, 0x6c6f7261))
	for l := range m.Layers {
		for _, mod := range modules {
			p, err := projOf(mod)
			if err != nil {
				return nil, err
			}
			w := m.Layers[l].Weight(p)
			pair := &adapters.Pair{In: w.Cols, Out: w.Rows, A: make([]float32, rank*w.Cols), B: make([]float32, w.Rows*rank)}
			bound := 1 / math.Sqrt(float64(w.Cols))
			for i := range pair.A {
				pair.A[i] = float32((2*rng.Float64() - 1) * bound)
			}
			a.Pairs[adapters.Key{Layer: l, Module: mod}] = pair
		}
	}
	return a, nil
}

// Check verifies that a fits m: every pair names an existing layer and
// projection and has its shape.
func Check(m *model.Model, a *adapters.Adapter) error {
	if err := a.Validate(); err != nil {
		return err
	}
	for k, p := range a.Pairs {
		pr, err := projOf(k.Module)
		if err != nil {
			return err
		}
		if k.Layer >= len(m.Layers) {
			return fmt.Errorf("lora: the adapter has layer %d, the model only %d layers: it was made for another base model", k.Layer, len(m.Layers))
		}
		w := m.Layers[k.Layer].Weight(pr)
		if p.In != w.Cols || p.Out != w.Rows {
			return fmt.Errorf("lora: layer %d %s is %d→%d in the adapter but %d→%d in the model: it was made for another base model",
				k.Layer, k.Module, p.In, p.Out, w.Cols, w.Rows)
		}
	}
	return nil
}

// Scale is alpha/rank, the factor of B·A.
func Scale(a *adapters.Adapter) float32 { return a.Alpha / float32(a.Rank) }

// Weighted is one adapter with its mixing weight.
type Weighted struct {
	Adapter *adapters.Adapter
	Weight  float32
}

// Plug is a model.Delta that adds several adapters' updates, each at its
// weight: ΔW = Σ wᵢ·scaleᵢ·Bᵢ·Aᵢ. It is read-only and safe for concurrent
// use by many States.
type Plug struct {
	pairs [][model.NumProj][]plugged // per layer, per projection
}

type plugged struct {
	pair  *adapters.Pair
	rank  int
	scale float32
}

// NewPlug checks every adapter against m and returns their sum as a Delta.
func NewPlug(m *model.Model, ws ...Weighted) (*Plug, error) {
	p := &Plug{pairs: make([][model.NumProj][]plugged, len(m.Layers))}
	for _, w := range ws {
		if err := Check(m, w.Adapter); err != nil {
			return nil, err
		}
		s := Scale(w.Adapter) * w.Weight
		for k, pair := range w.Adapter.Pairs {
			pr, _ := projOf(k.Module)
			p.pairs[k.Layer][pr] = append(p.pairs[k.Layer][pr], plugged{pair, w.Adapter.Rank, s})
		}
	}
	return p, nil
}

// AddDelta implements model.Delta.
func (p *Plug) AddDelta(layer int, pr model.Proj, x []float32, n int, out []float32) {
	for _, q := range p.pairs[layer][pr] {
		u := make([]float32, n*q.rank)
		loraDown(u, x, n, q.pair.A, q.rank, q.pair.In)
		loraUp(out, u, n, q.pair.B, q.rank, q.pair.Out, q.scale)
	}
}

// loraDown computes u = x·Aᵀ: u [n, r], x [n, in], A [r, in].
func loraDown(u, x []float32, n int, A []float32, r, in int) {
	parallelFor(n, n*r*in, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			xt := x[t*in : (t+1)*in]
			for j := range r {
				u[t*r+j] = dot(xt, A[j*in:(j+1)*in])
			}
		}
	})
}

// loraUp adds s·u·Bᵀ to out: out [n, o], u [n, r], B [o, r].
func loraUp(out, u []float32, n int, B []float32, r, o int, s float32) {
	parallelFor(n, n*r*o, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			ut := u[t*r : (t+1)*r]
			ot := out[t*o : (t+1)*o]
			for i := range o {
				ot[i] += s * dot(ut, B[i*r:(i+1)*r])
			}
		}
	})
}

// parallelFor splits [0, n) over the cores when the work (in multiply-adds)
// is worth it. Each index is handled by exactly one goroutine, in chunks
// fixed by n and GOMAXPROCS, so results are deterministic.
func parallelFor(n, work int, f func(lo, hi int)) {
	workers := parallel.Workers()
	if work < 1<<15 {
		workers = 1
	}
	parallel.For(n, workers, f)
}

// dot and axpy use the SIMD kernels for long vectors; short ones (attention
// heads of 8–16, ranks) are cheaper inline than through a kernel call.
func dot(a, b []float32) float32 {
	if len(a) >= 32 {
		return tensor.Dot(a, b[:len(a)])
	}
	b = b[:len(a)]
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(a); i += 2 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
	}
	if i < len(a) {
		s0 += a[i] * b[i]
	}
	return s0 + s1
}

func axpy(alpha float32, x, y []float32) {
	if len(x) >= 32 {
		tensor.Axpy(alpha, x, y[:len(x)])
		return
	}
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// softmax normalises x in place with exp32.
func softmax(x []float32) {
	inv := 1 / tensor.ExpSub(x, tensor.Max(x))
	for i := range x {
		x[i] *= inv
	}
}
