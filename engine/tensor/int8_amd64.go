package tensor

import (
	"golang.org/x/sys/cpu"

	"orchmind/engine/quant"
)

// Integer row kernels (int8_amd64.s) over nb blocks: w the stored row, q
// and d the activation's values and scales, m its per-block correction
// (Q8Act.M128 for Q8_0 with VNNI, M8 for Q4_0; unused by dotQ8_0Q8AVX2).

//go:noescape
func dotQ8_0Q8AVX2(w *byte, q *int8, d *float32, m *int32, nb int) float32

//go:noescape
func dotQ4_0Q8AVX2(w *byte, q *int8, d *float32, m *int32, nb int) float32

//go:noescape
func dotQ4_KQ8AVX2(w *byte, q *int8, d *float32, m *int32, nb int) float32

//go:noescape
func dotQ4_KQ8VNNI(w *byte, q *int8, d *float32, m *int32, nb int) float32

//go:noescape
func dotQ6_KQ8AVX2(w *byte, q *int8, d *float32, m *int32, nb int) float32

//go:noescape
func dotQ8_0Q8VNNI(w *byte, q *int8, d *float32, m *int32, nb int) float32

//go:noescape
func dotQ4_0Q8VNNI(w *byte, q *int8, d *float32, m *int32, nb int) float32

// quantActAVX2 is quant.QuantizeAct over nb blocks, the same bytes.
//
//go:noescape
func quantActAVX2(x *float32, q *int8, d *float32, m128 *int32, m8 *int32, nb int)

// quantizeAVX2 is quant.QuantizeAct with the AVX2 quantizer.
func quantizeAVX2(a *quant.Q8Act, x []float32) error {
	if err := a.Resize(len(x)); err != nil {
		return err
	}
	if nb := len(x) / quant.QK; nb > 0 {
		quantActAVX2(&x[0], &a.Q[0], &a.D[0], &a.M128[0], &a.M8[0], nb)
	}
	return nil
}

// int8Kernel wraps an assembly kernel for rows of blocks of bb bytes,
// of bs values, bounds-checking the activation before passing pointers
// on; m128 picks
// Q8Act.M128 as the correction (else M8).
func int8Kernel(f func(w *byte, q *int8, d *float32, m *int32, nb int) float32, bs, bb int, m128 bool) int8Dot {
	return func(a *quant.Q8Act, row []byte) float32 {
		nb := len(row) / bb
		if nb == 0 {
			return 0
		}
		m := a.M8
		if m128 {
			m = a.M128
		}
		na := nb * bs / quant.QK // activation blocks
		_, _, _ = a.Q[na*quant.QK-1], a.D[na-1], m[na-1]
		return f(&row[0], &a.Q[0], &a.D[0], &m[0], nb)
	}
}

const q8bb, q4bb = 2 + quant.QK, 2 + quant.QK/2

// int8AVX2 multiplies with VPMADDUBSW (any CPU of the avx2 set); Q4_0
// and Q4_K rows 8 at a time (int8rows_amd64.s).
var int8AVX2 = &int8Set{name: "avx2", insn: "VPMADDUBSW", quantize: quantizeAVX2, dots: map[quant.Type]int8Dot{
	quant.Q8_0: int8Kernel(dotQ8_0Q8AVX2, quant.QK, q8bb, false),
	quant.Q4_0: int8Kernel(dotQ4_0Q8AVX2, quant.QK, q4bb, false),
	quant.Q4_K: int8Kernel(dotQ4_KQ8AVX2, quant.QKK, q4KBytes, false),
	quant.Q6_K: int8Kernel(dotQ6_KQ8AVX2, quant.QKK, q6KBytes, false),
}, groups: map[quant.Type]int8Group{
	quant.Q4_0: {group: 8, dot: q4GroupAVX2},
	quant.Q4_K: {group: 8, dot: q4KGroupAVX2},
}}

// int8VNNI multiplies with VPDPBUSD (AVX512-VNNI): one row at a time on
// 256-bit registers, Q4_0 and Q4_K rows 16 at a time on 512-bit ones
// (int8rows_amd64.s).
var int8VNNI = &int8Set{name: "vnni", insn: "VPDPBUSD; Q6_K with VPMADDUBSW", quantize: quantizeAVX2, dots: map[quant.Type]int8Dot{
	quant.Q8_0: int8Kernel(dotQ8_0Q8VNNI, quant.QK, q8bb, true),
	quant.Q4_0: int8Kernel(dotQ4_0Q8VNNI, quant.QK, q4bb, false),
	quant.Q4_K: int8Kernel(dotQ4_KQ8VNNI, quant.QKK, q4KBytes, false),
	quant.Q6_K: int8Kernel(dotQ6_KQ8AVX2, quant.QKK, q6KBytes, false), // VPMADDUBSW: see int8_amd64.s
}, groups: map[quant.Type]int8Group{
	quant.Q4_0: {group: 16, dot: q4GroupVNNI},
	quant.Q4_K: {group: 16, dot: q4KGroupVNNI},
}}

// hasVNNI reports AVX512-VNNI with 256-bit forms (AVX512VL) and the
// 512-bit byte and word operations the group kernels use (AVX512BW).
func hasVNNI() bool {
	return cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512F
}

// int8For returns the integer kernels that go with kernel set level:
// VPDPBUSD on the AVX-512 sets where the CPU has VNNI, VPMADDUBSW on avx2
// (and AVX-512 without VNNI), pure Go on generic.
func int8For(level string) *int8Set {
	switch level {
	case ISAGeneric:
		return int8Go
	case ISAAVX2:
		return int8AVX2
	case ISAAVX512, ISAAVX512BF16, ISAAMX:
		if hasVNNI() {
			return int8VNNI
		}
		return int8AVX2
	}
	return nil
}

// availableInt8 lists every integer kernel set this CPU can run, the Go
// reference first, for tests and benchmarks.
func availableInt8() []*int8Set {
	s := []*int8Set{int8Go}
	if hasAVX2Set() {
		s = append(s, int8AVX2)
	}
	if hasVNNI() {
		s = append(s, int8VNNI)
	}
	return s
}
