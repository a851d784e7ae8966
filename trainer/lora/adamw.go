package lora

import (
	"fmt"
	"math"

	"orchmind/adapters"
)

// AdamW is torch.optim.AdamW over an adapter's A and B (PEFT's defaults:
// β₁ 0.9, β₂ 0.999, ε 1e-8, weight decay 0). Moments are kept in float32 and
// the bias corrections in float64, as torch does.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	// Step is the number of updates taken so far.
	Step int
	// M and V are the first and second moments, with the adapter's shape.
	M, V *adapters.Adapter
}

// NewAdamW returns an optimiser with PEFT/torch defaults for a.
func NewAdamW(a *adapters.Adapter) *AdamW {
	return &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, M: zerosLike(a), V: zerosLike(a)}
}

func zerosLike(a *adapters.Adapter) *adapters.Adapter {
	z := &adapters.Adapter{Rank: a.Rank, Alpha: a.Alpha, TargetModules: a.TargetModules, Pairs: map[adapters.Key]*adapters.Pair{}}
	for k, p := range a.Pairs {
		z.Pairs[k] = &adapters.Pair{In: p.In, Out: p.Out, A: make([]float32, len(p.A)), B: make([]float32, len(p.B))}
	}
	return z
}

// Update applies one AdamW step with learning rate lr to params using
// grads (which it does not modify).
func (o *AdamW) Update(params, grads *adapters.Adapter, lr float64) error {
	o.Step++
	bc1 := 1 - math.Pow(o.Beta1, float64(o.Step))
	bc2 := 1 - math.Pow(o.Beta2, float64(o.Step))
	stepSize := lr / bc1
	sqrtBC2 := math.Sqrt(bc2)
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	for k, p := range params.Pairs {
		g, m, v := grads.Pairs[k], o.M.Pairs[k], o.V.Pairs[k]
		if g == nil || m == nil || v == nil {
			return fmt.Errorf("lora: optimiser state has no %d/%s", k.Layer, k.Module)
		}
		for _, t := range [2][4][]float32{{p.A, g.A, m.A, v.A}, {p.B, g.B, m.B, v.B}} {
			w, gr, mm, vv := t[0], t[1], t[2], t[3]
			for i := range w {
				if o.WeightDecay != 0 {
					w[i] *= float32(1 - lr*o.WeightDecay)
				}
				mm[i] = b1*mm[i] + (1-b1)*gr[i]
				vv[i] = b2*vv[i] + (1-b2)*gr[i]*gr[i]
				denom := math.Sqrt(float64(vv[i]))/sqrtBC2 + o.Eps
				w[i] -= float32(stepSize * float64(mm[i]) / denom)
			}
		}
	}
	return nil
}

// GradNorm is the global L2 norm of all gradients.
func GradNorm(g *adapters.Adapter) float64 {
	var ss float64
	for _, p := range g.Pairs {
		for _, v := range p.A {
			ss += float64(v) * float64(v)
		}
		for _, v := range p.B {
			ss += float64(v) * float64(v)
		}
	}
	return math.Sqrt(ss)
}

// ClipGradNorm scales g so its global norm is at most maxNorm (as
// torch.nn.utils.clip_grad_norm_) and returns the norm before clipping.
func ClipGradNorm(g *adapters.Adapter, maxNorm float64) float64 {
	n := GradNorm(g)
	if maxNorm > 0 && n > maxNorm {
		c := float32(maxNorm / (n + 1e-6))
		for _, p := range g.Pairs {
			for i := range p.A {
				p.A[i] *= c
			}
			for i := range p.B {
				p.B[i] *= c
			}
		}
	}
	return n
}

// LR is the learning rate at optimiser step (0-based) of total with a linear
// warm-up then cosine decay to zero, as transformers'
// get_cosine_schedule_with_warmup.
func LR(base float64, step, warmup, total int) float64 {
	if step < warmup {
		return base * float64(step) / float64(max(1, warmup))
	}
	progress := float64(step-warmup) / float64(max(1, total-warmup))
	return base * max(0, 0.5*(1+math.Cos(math.Pi*progress)))
}
