package lora

import (
	"math"

	"orchmind/engine/parallel"
	"orchmind/engine/tensor"
)

// growLoss sizes the loss's buffers for sequences of up to T tokens taking
// slice vocabulary entries at a time, and returns the bytes they take.
func (e *Engine) growLoss(T, slice int) int64 {
	D := e.m.Dim
	tp := (T + 31) / 32 * 32
	var bytes int64
	f := func(n int) []float32 { bytes += 4 * int64(n); return make([]float32, n) }
	ls := &e.loss
	ls.slice = slice
	ls.x, ls.u, ls.tmp = f(tp*D), f(tp*D), f(tp*D)
	ls.logits = f(tp * slice)
	ls.capped = nil
	if e.m.FinalSoftcap > 0 {
		ls.capped = f(T * slice)
	}
	ls.mx, ls.sum, ls.target, ls.targetTh = f(T), f(T), f(T), f(T)
	ls.wrow = make([]float32, D) // one row: not counted, like the RoPE index slices
	return bytes
}

// head computes the masked cross-entropy of the next-token predictions.
// With grad set it also writes ∂(weight·sum)/∂xf into e.dxf.
//
// It takes every counted token at once and the vocabulary a slice at a
// time (the "cut cross-entropy" or online-softmax form): for each slice of
// the output matrix's rows it computes the slice's logits of all tokens,
// keeps per token the running maximum m and Σ exp(z−m) and the target's
// logit, and for the gradient adds exp(z−m)·∂z/∂l times the slice's rows
// into U (rescaling a token's U and sum by exp(m_old−m_new) when its
// maximum grows). At the end
//
//	loss = m + log Σ − z_target
//	∂loss/∂x = U/Σ − ∂z_target/∂l·W_target
//
// with z = l, or z = c·tanh(l/c) and ∂z/∂l = 1 − tanh² under Gemma 2's
// final soft-capping. Each slice of the (quantized) output matrix is
// converted once per sequence for the logits and once for U, where a loss
// over a few tokens at a time would convert the whole matrix again for
// every few tokens; the logits held never exceed hparams.LossBytes.
func (e *Engine) head(s Seq, weight float32, grad bool) (float64, int) {
	T, D, V := len(s.IDs), e.m.Dim, e.m.Vocab
	e.rows = e.rows[:0]
	for t := 0; t+1 < T; t++ {
		if s.Mask == nil || s.Mask[t+1] {
			e.rows = append(e.rows, t)
		}
	}
	if grad {
		clear(e.dxf[:T*D])
	}
	n := len(e.rows)
	if n == 0 {
		return 0, 0
	}
	ls := &e.loss
	// The bfloat16 kernels work on whole tiles of 32 inputs: padded with
	// zero rows, the products write straight into the buffers, with no
	// padded copy of the logits.
	np := n
	if e.BF16 && tensor.BF16Tiles() {
		np = (n + 31) / 32 * 32
	}
	x := ls.x[:np*D]
	for i, t := range e.rows {
		copy(x[i*D:(i+1)*D], e.xf[t*D:(t+1)*D])
	}
	clear(x[n*D:])
	mx, sum, tl, tth := ls.mx[:n], ls.sum[:n], ls.target[:n], ls.targetTh[:n]
	for i := range mx {
		mx[i], sum[i] = float32(math.Inf(-1)), 0
	}
	u := ls.u[:np*D]
	if grad {
		clear(u)
	}
	capC := e.m.FinalSoftcap
	S := ls.slice
	for v0 := 0; v0 < V; v0 += S {
		sv := min(S, V-v0)
		w := e.m.Output.RowRange(v0, v0+sv)
		logits := ls.logits[:np*sv]
		e.baseMatMul(logits, x, np, w)
		var capped []float32
		if capC > 0 {
			capped = ls.capped[:n*sv]
		}
		parallel.For(n, workersFor(n*sv), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				row := logits[i*sv : (i+1)*sv]
				var th []float32
				if capped != nil {
					// Soft-capped logits z = tanh(l/c)·c; th keeps tanh for
					// the derivative 1 − tanh². tanh(u) = 2σ(2u) − 1,
					// through the vectorised sigmoid.
					th = capped[i*sv : (i+1)*sv]
					for j, v := range row {
						th[j] = 2 * v / capC
					}
					tensor.Sigmoid(th, th)
					for j, h := range th {
						h = 2*h - 1
						th[j], row[j] = h, h*capC
					}
				}
				if tg := s.IDs[e.rows[i]+1] - v0; tg >= 0 && tg < sv {
					tl[i] = row[tg]
					if th != nil {
						tth[i] = th[tg]
					}
				}
				if m := tensor.Max(row); m > mx[i] {
					// A larger maximum: what was summed so far shrinks by
					// exp(m_old − m_new) (0 on the first slice).
					f := float32(math.Exp(float64(mx[i] - m)))
					sum[i] *= f
					if grad {
						ur := u[i*D : (i+1)*D]
						for k := range ur {
							ur[k] *= f
						}
					}
					mx[i] = m
				}
				sum[i] += tensor.ExpSub(row, mx[i])
				if grad && th != nil {
					for j, h := range th {
						row[j] *= 1 - h*h
					}
				}
			}
		})
		if grad {
			part := ls.tmp[:np*D]
			e.baseMatMulT(part, logits, np, w)
			for i := range n {
				tensor.Axpy(1, part[i*D:(i+1)*D], u[i*D:(i+1)*D])
			}
		}
	}
	var total float64
	for i, t := range e.rows {
		total += float64(mx[i]) + math.Log(float64(sum[i])) - float64(tl[i])
		if !grad {
			continue
		}
		dx := e.dxf[t*D : (t+1)*D]
		tensor.Axpy(weight/sum[i], u[i*D:(i+1)*D], dx)
		g := weight
		if capC > 0 {
			g *= 1 - tth[i]*tth[i]
		}
		e.m.Output.DequantizeRow(s.IDs[t+1], ls.wrow)
		tensor.Axpy(-g, ls.wrow, dx)
	}
	return total, n
}

// workersFor is how many workers an element-wise pass over n values of the
// loss takes: one for small passes, where handing out work costs more.
func workersFor(n int) int {
	if n < 1<<16 {
		return 1
	}
	return parallel.Workers()
}
