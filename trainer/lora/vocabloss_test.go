package lora

import (
	"math"
	"testing"

	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/engine/tensor"
)

// headChunked is the loss as it was computed before the vocabulary-sliced
// head: the whole vocabulary's logits for chunk tokens at a time, softmax
// by rows, then the gradient through the whole output matrix. It is the
// reference the sliced head must agree with (the same loss and ∂/∂xf, in
// e.dxf).
func headChunked(e *Engine, s Seq, weight float32, grad bool, chunk int) (float64, int) {
	T, D, V := len(s.IDs), e.m.Dim, e.m.Vocab
	var rowsAll []int
	for t := 0; t+1 < T; t++ {
		if s.Mask == nil || s.Mask[t+1] {
			rowsAll = append(rowsAll, t)
		}
	}
	if grad {
		clear(e.dxf[:T*D])
	}
	hrow, dlog, capped := make([]float32, chunk*D), make([]float32, chunk*V), make([]float32, chunk*V)
	capC := e.m.FinalSoftcap
	var sum float64
	for c0 := 0; c0 < len(rowsAll); c0 += chunk {
		rows := rowsAll[c0:min(c0+chunk, len(rowsAll))]
		n := len(rows)
		for i, t := range rows {
			copy(hrow[i*D:(i+1)*D], e.xf[t*D:(t+1)*D])
		}
		logits := dlog[:n*V]
		e.baseMatMul(logits, hrow[:n*D], n, e.m.Output)
		if capC > 0 {
			for j, v := range logits {
				th := float32(math.Tanh(float64(v / capC)))
				capped[j], logits[j] = th, th*capC
			}
		}
		for i, t := range rows {
			lg := logits[i*V : (i+1)*V]
			target := s.IDs[t+1]
			mx := tensor.Max(lg)
			tl := lg[target]
			z := float64(tensor.ExpSub(lg, mx))
			sum += float64(mx) + math.Log(z) - float64(tl)
			if grad {
				f := weight / float32(z)
				for j := range lg {
					lg[j] *= f
				}
				lg[target] -= weight
				if capC > 0 {
					for j, th := range capped[i*V : (i+1)*V] {
						lg[j] *= 1 - th*th
					}
				}
			}
		}
		if grad {
			e.baseMatMulT(hrow[:n*D], logits, n, e.m.Output)
			for i, t := range rows {
				copy(e.dxf[t*D:(t+1)*D], hrow[i*D:(i+1)*D])
			}
		}
	}
	return sum, len(rowsAll)
}

// TestSlicedHeadMatchesChunked: the vocabulary-sliced loss (every token at
// once, the vocabulary a slice at a time with a running maximum) gives the
// loss and the gradient at the final norm's output of the loss computed
// 32 tokens at a time over the whole vocabulary, on a model with a
// 3,001-token vocabulary taken 256 entries at a time (the last slice
// shorter, running maxima that grow from slice to slice), with and without
// Gemma 2's final soft-capping, with a prompt mask, a sparse mask and
// none, through Q8_0 and Q4_0 weights, in float32 and with bfloat16
// products where the CPU has them.
func TestSlicedHeadMatchesChunked(t *testing.T) {
	for _, capC := range []float32{0, 2} {
		for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0} {
			c := gemmaTiny(model.ArchGemma2)
			c.AttnSoftcap, c.FinalSoftcap = 0, capC
			c.Dim, c.HiddenDim, c.Vocab, c.SeqLen = 64, 96, 3001, 128
			m := randomModel(t, c, typ, 11)
			a := randomAdapter(t, m, 4, 12)
			seqs := map[string]Seq{"prompt mask": randomSeq(100, c.Vocab, 13), "no mask": randomSeq(77, c.Vocab, 14)}
			seqs["no mask"] = Seq{IDs: seqs["no mask"].IDs}
			sparse := randomSeq(90, c.Vocab, 15)
			for i := range sparse.Mask {
				sparse.Mask[i] = i%17 == 3
			}
			seqs["sparse mask"] = sparse
			for _, bf16 := range []bool{false, true} {
				if bf16 && !tensor.BF16Tiles() {
					continue
				}
				for name, s := range seqs {
					e, err := NewEngine(m, a, 1)
					if err != nil {
						t.Fatal(err)
					}
					e.BF16 = bf16
					e.forward(s, true)
					e.growLoss(e.maxT, 256)
					const weight = 0.37
					got, n := e.head(s, weight, true)
					T, D := len(s.IDs), c.Dim
					gotDx := append([]float32(nil), e.dxf[:T*D]...)
					want, wn := headChunked(e, s, weight, true, 32)
					if n != wn || n != Counted(s) {
						t.Fatalf("%d counted tokens, the chunked loss %d, Counted %d", n, wn, Counted(s))
					}
					tol := 2e-6
					if bf16 {
						tol = 2e-3
					}
					if math.Abs(got-want) > tol*math.Abs(want) {
						t.Errorf("cap %g %s bf16=%v %s: loss %.9g sliced, %.9g chunked", capC, typ, bf16, name, got, want)
					}
					var scale, worst float64
					for i, v := range e.dxf[:T*D] {
						scale = max(scale, math.Abs(float64(v)))
						worst = max(worst, math.Abs(float64(gotDx[i]-v)))
					}
					gtol := 1e-5
					if bf16 {
						gtol = 2e-2
					}
					if scale == 0 || worst > gtol*scale {
						t.Errorf("cap %g %s bf16=%v %s: ∂loss/∂x differs by %.3g (largest %.3g)", capC, typ, bf16, name, worst, scale)
					}
					// The forward-only loss is the same value.
					if l, _ := e.head(s, 0, false); l != got {
						t.Errorf("cap %g %s bf16=%v %s: loss %.9g without the gradient, %.9g with", capC, typ, bf16, name, l, got)
					}
				}
			}
		}
	}
}

// TestGeGLUMatchesTanhForm: the GeGLU passes through the sigmoid give
// GELU's tanh form (geluTanh) and its derivative to float32 precision, over
// the range activations take (and far tails).
func TestGeGLUMatchesTanhForm(t *testing.T) {
	var gate []float32
	for v := float32(-12); v <= 12; v += 0.0005 { // several chunks
		gate = append(gate, v)
	}
	gate = append(gate, -80, 80, 0)
	n := len(gate)
	up := make([]float32, n)
	for i := range up {
		up[i] = 0.5 + float32(i%7)*0.25
	}
	act, dAct, dUp, sg := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	gegluForward(act, gate, up)
	for i := range dAct {
		dAct[i] = 1 - float32(i%5)*0.3
	}
	d := append([]float32(nil), dAct...)
	gegluBackward(dAct, dUp, gate, up, sg)
	for i, a := range gate {
		want := geluTanh(a) * up[i]
		if diff := math.Abs(float64(act[i] - want)); diff > 1e-6*math.Max(1, math.Abs(float64(want))) {
			t.Errorf("GeGLU(%g)·%g = %g, tanh form %g", a, up[i], act[i], want)
		}
		wantUp, wantGate := d[i]*geluTanh(a), d[i]*up[i]*geluTanhGrad(a)
		if diff := math.Abs(float64(dUp[i] - wantUp)); diff > 1e-6*math.Max(1, math.Abs(float64(wantUp))) {
			t.Errorf("∂up at %g: %g, tanh form %g", a, dUp[i], wantUp)
		}
		if diff := math.Abs(float64(dAct[i] - wantGate)); diff > 2e-6*math.Max(1, math.Abs(float64(wantGate))) {
			t.Errorf("∂gate at %g: %g, tanh form %g", a, dAct[i], wantGate)
		}
	}
}

// geluTanh is GELU's tanh approximation as PyTorch's
// gelu(approximate="tanh") writes it, 0.5·x·(1 + tanh(√(2/π)·(x +
// 0.044715·x³))), in float64: the reference the sigmoid form
// (tensor.GELUGate) is checked against.
func geluTanh(x float32) float32 {
	v := float64(x)
	return float32(0.5 * v * (1 + math.Tanh(geluTanhC*(v+0.044715*v*v*v))))
}

// geluTanhGrad is the derivative of geluTanh at x.
func geluTanhGrad(x float32) float32 {
	v := float64(x)
	t := math.Tanh(geluTanhC * (v + 0.044715*v*v*v))
	return float32(0.5*(1+t) + 0.5*v*(1-t*t)*geluTanhC*(1+3*0.044715*v*v))
}

// geluTanhC is √(2/π).
const geluTanhC = 0.7978845608028654
