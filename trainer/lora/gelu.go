package lora

import (
	"orchmind/engine/parallel"
	"orchmind/engine/tensor"
)

// GELU's tanh approximation is a·σ(2·√(2/π)·(a + 0.044715·a³)) exactly
// (tensor.GELUGate), so the training passes take it through the
// vectorised sigmoid instead of a float64 tanh per value (which was a
// sixth of a Gemma 3 270M step).

// geluChunk is the number of values one worker takes at a time in the
// element-wise GeGLU passes.
const geluChunk = 1 << 14

// forEachChunk runs f over [0, n) in chunks, on all workers when n is
// large enough to share.
func forEachChunk(n int, f func(lo, hi int)) {
	chunks := (n + geluChunk - 1) / geluChunk
	parallel.For(chunks, min(parallel.Workers(), chunks), func(c0, c1 int) {
		for c := c0; c < c1; c++ {
			f(c*geluChunk, min((c+1)*geluChunk, n))
		}
	})
}

// gegluForward sets act = GELU(gate)·up.
func gegluForward(act, gate, up []float32) {
	n := len(gate)
	act, up = act[:n], up[:n]
	forEachChunk(n, func(lo, hi int) {
		a, s := gate[lo:hi], act[lo:hi]
		tensor.GELUGate(s, a)
		for i, v := range a {
			s[i] *= v * up[lo+i]
		}
	})
}

// gegluBackward turns dAct, the gradient of act = GELU(gate)·up, into the
// gradient of gate (in place) and writes that of up into dUp; sg is
// scratch of the same length.
func gegluBackward(dAct, dUp, gate, up, sg []float32) {
	n := len(gate)
	dAct, dUp, up, sg = dAct[:n], dUp[:n], up[:n], sg[:n]
	forEachChunk(n, func(lo, hi int) {
		a, s := gate[lo:hi], sg[lo:hi]
		tensor.GELUGate(s, a)
		for i, v := range a {
			σ := s[i]
			d := dAct[lo+i]
			dUp[lo+i] = d * v * σ
			// d/da a·σ(u(a)) = σ + a·σ(1−σ)·u'(a)
			dAct[lo+i] = d * up[lo+i] * (σ + v*σ*(1-σ)*tensor.GELUGateC*(1+3*tensor.GELUGateK*v*v))
		}
	})
}
