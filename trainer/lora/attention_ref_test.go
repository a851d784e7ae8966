package lora

import (
	"math"
	"math/rand/v2"
	"testing"

	"orchmind/engine/quant"
)

// The row-by-row attention that the matrix-kernel version replaced, kept
// as the reference it is tested against.

func (e *Engine) attentionRef(c *layerCache, T int) {
	cfg := e.m.Config
	D, KV, hd, H := cfg.Dim, cfg.KVDim(), cfg.HeadDim(), cfg.Heads
	group := H / cfg.KVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	for t := range T {
		for i := range KV {
			c.kt[i*T+t] = c.k[t*KV+i]
			c.vt[i*T+t] = c.v[t*KV+i]
		}
	}
	parallelFor(H, H*T*T*hd, func(lo, hi int) {
		for h := lo; h < hi; h++ {
			g := h / group
			kt, vt := c.kt[g*hd*T:(g+1)*hd*T], c.vt[g*hd*T:(g+1)*hd*T]
			for t := range T {
				q := c.q[t*D+h*hd : t*D+(h+1)*hd]
				s0 := e.segStart[t]
				p := c.p[(h*T+t)*T+s0 : (h*T+t)*T+t+1]
				clear(p)
				for d, qd := range q {
					axpy(qd*scale, kt[d*T+s0:d*T+t+1], p)
				}
				softmax(p)
				out := c.ao[t*D+h*hd : t*D+(h+1)*hd]
				for d := range out {
					out[d] = dot(p, vt[d*T+s0:d*T+t+1])
				}
			}
		}
	})
}

func (e *Engine) attentionBackRef(c *layerCache, T int, dAo, dq, dk, dv []float32) {
	cfg := e.m.Config
	D, KV, hd, H := cfg.Dim, cfg.KVDim(), cfg.HeadDim(), cfg.Heads
	group := H / cfg.KVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	clear(dq)
	dkt, dvt := e.dkt[:KV*T], e.dvt[:KV*T]
	clear(dkt)
	clear(dvt)
	// Work is split by key/value head: the query heads of a group all add
	// into the same dk and dv, so they stay on one goroutine.
	parallelFor(cfg.KVHeads, H*T*T*hd, func(lo, hi int) {
		dp := make([]float32, T)
		for g := lo; g < hi; g++ {
			kt, vt := c.kt[g*hd*T:(g+1)*hd*T], c.vt[g*hd*T:(g+1)*hd*T]
			gk, gv := dkt[g*hd*T:(g+1)*hd*T], dvt[g*hd*T:(g+1)*hd*T]
			for h := g * group; h < (g+1)*group; h++ {
				for t := range T {
					s0 := e.segStart[t]
					p := c.p[(h*T+t)*T+s0 : (h*T+t)*T+t+1]
					do := dAo[t*D+h*hd : t*D+(h+1)*hd]
					d := dp[:len(p)]
					clear(d)
					for j, g := range do {
						axpy(g, vt[j*T+s0:j*T+t+1], d) // dP = dO·Vᵀ
						axpy(g, p, gv[j*T+s0:j*T+t+1]) // dV += Pᵀ·dO
					}
					sum := dot(p, d)
					for s := range d {
						d[s] = p[s] * (d[s] - sum) * scale // dS, with the 1/√hd
					}
					q := c.q[t*D+h*hd : t*D+(h+1)*hd]
					dqt := dq[t*D+h*hd : t*D+(h+1)*hd]
					for j := range dqt {
						dqt[j] = dot(d, kt[j*T+s0:j*T+t+1])
						axpy(q[j], d, gk[j*T+s0:j*T+t+1])
					}
				}
			}
		}
	})
	for t := range T {
		for i := range KV {
			dk[t*KV+i] = dkt[i*T+t]
			dv[t*KV+i] = dvt[i*T+t]
		}
	}
}

// TestAttentionMatchesRowByRow: the matrix-kernel attention gives the
// row-by-row version's outputs and gradients, with grouped-query heads and
// packed segments.
func TestAttentionMatchesRowByRow(t *testing.T) {
	c := tiny
	c.Dim, c.Heads, c.KVHeads, c.SeqLen = 64, 8, 2, 64
	m := randomModel(t, c, quant.F32, 1)
	e, err := NewEngine(m, randomAdapter(t, m, 2, 2), 1)
	if err != nil {
		t.Fatal(err)
	}
	const T = 37
	e.grow(T)
	e.segStart = make([]int, T)
	for i := range e.segStart {
		if i >= 20 {
			e.segStart[i] = 20
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(v []float32) {
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
	}
	lc := &e.caches[0]
	D, KV := c.Dim, c.KVDim()
	fill(lc.q[:T*D])
	fill(lc.k[:T*KV])
	fill(lc.v[:T*KV])
	dAo := make([]float32, T*D)
	fill(dAo)
	e.attentionRef(lc, T)
	wantAo, wantP := append([]float32(nil), lc.ao[:T*D]...), append([]float32(nil), lc.p...)
	wq, wk, wv := make([]float32, T*D), make([]float32, T*KV), make([]float32, T*KV)
	e.attentionBackRef(lc, T, dAo, wq, wk, wv)
	clear(lc.ao)
	clear(lc.p)
	e.attention(0, lc, T)
	gq, gk, gv := make([]float32, T*D), make([]float32, T*KV), make([]float32, T*KV)
	e.attentionBack(0, lc, T, dAo, gq, gk, gv)
	for _, x := range []struct {
		name      string
		got, want []float32
	}{{"out", lc.ao[:T*D], wantAo}, {"dq", gq, wq}, {"dk", gk, wk}, {"dv", gv, wv}} {
		var worst, scale float64
		for i := range x.want {
			worst = max(worst, math.Abs(float64(x.got[i]-x.want[i])))
			scale = max(scale, math.Abs(float64(x.want[i])))
		}
		if worst > 1e-5*max(scale, 1) {
			t.Errorf("%s differs by %g (values up to %g)", x.name, worst, scale)
		}
	}
	for h := range c.Heads {
		for tt := range T {
			for s := range T {
				i := (h*T+tt)*T + s
				if in := s >= e.segStart[tt] && s <= tt; in && math.Abs(float64(lc.p[i]-wantP[i])) > 1e-6 {
					t.Fatalf("p[%d][%d][%d] = %g, want %g", h, tt, s, lc.p[i], wantP[i])
				}
			}
		}
	}
}
