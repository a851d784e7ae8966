// Command asmgen generates orchmind's amd64 matmul kernels
// (engine/tensor/kernels_amd64.s and its Go declarations) with avo.
//
// It is its own Go module so that the orchmind module does not depend on avo;
// the generated files are committed. Regenerate with `go generate` in
// engine/tensor (see gen.go there).
//
// Every kernel takes raw pointers and counts; the Go wrappers in
// engine/tensor/simd_amd64.go check slice lengths before calling, so the
// assembly never reads or writes outside the caller's slices.
//
// Two families are generated: AVX2 (with FMA and F16C, 256-bit vectors, any
// x86-64 since Haswell/Zen) and AVX-512 (F+BW+VL, 512-bit vectors).
package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// Byte layouts of the ggml blocks (engine/quant).
const (
	qk        = 32       // values per block
	q8Bytes   = 2 + qk   // Q8_0: f16 scale, 32 int8
	q4Bytes   = 2 + qk/2 // Q4_0: f16 scale, 16 bytes of nibbles
	f32Bytes  = 4
	f16Bytes  = 2
	ymmFloats = 8
)

// isa describes one vector width: the register constructor and the suffix
// of the generated function names.
type isa struct {
	suffix string
	lanes  int // float32 lanes per vector
	vec    func() reg.VecVirtual
}

var (
	avx2   = isa{suffix: "AVX2", lanes: 8, vec: YMM}
	avx512 = isa{suffix: "AVX512", lanes: 16, vec: ZMM}
)

func main() {
	for _, s := range []isa{avx2, avx512} {
		dotF32(s)
		axpyF32(s)
		dotF16(s)
		dequantF16(s)
		dotQ8(s)
		dequantQ8(s)
		axpyQ8(s)
		dotQ4(s)
		dequantQ4(s)
		axpyQ4(s)
		dot4F32(s)
		gemm(s)
		transpose8F32(s)
		maxF32(s)
		expSubF32(s)
		for _, typ := range []string{"Q4_K", "Q6_K", "Q5_K"} {
			for _, kd := range []kind{kindDot, kindDequant, kindAxpy} {
				kquantKernel(s, typ, kd)
			}
		}
	}
	gemmT(avx2)
	gemmT(avx512)
	sigmoidF32(avx2) // AVX2 also serves AVX-512 machines (it blends by sign)
	cpuid()
	Generate()
}

// hsum reduces the float32 lanes of v to one value and stores it as the
// function's float32 result.
func hsum(s isa, v reg.VecVirtual) {
	x := v.AsX()
	if s.lanes == 16 {
		hi := YMM()
		VEXTRACTF64X4(U8(1), v, hi)
		VADDPS(hi, v.AsY(), hi)
		x = hi.AsX()
		t := XMM()
		VEXTRACTF128(U8(1), hi, t)
		VADDPS(t, x, x)
	} else {
		t := XMM()
		VEXTRACTF128(U8(1), v, t)
		VADDPS(t, x, x)
	}
	t := XMM()
	VMOVHLPS(x, x, t)
	VADDPS(t, x, x)
	VMOVSHDUP(x, t)
	VADDSS(t, x, x)
	VZEROUPPER()
	Store(x, ReturnIndex(0))
	RET()
}

// zero clears the vector registers vs.
func zero(vs ...reg.VecVirtual) {
	for _, v := range vs {
		if v.Size() == 64 {
			VPXORD(v, v, v)
		} else {
			VXORPS(v, v, v)
		}
	}
}

// scale loads the f16 scale at w+off and broadcasts it as float32 into a
// new vector.
func scale(s isa, w reg.Register, off int) reg.VecVirtual {
	d := s.vec()
	if s.lanes == 16 {
		hy := YMM()
		VPBROADCASTW(Mem{Base: w, Disp: off}, hy)
		VCVTPH2PS(hy, d)
		return d
	}
	h := XMM()
	VPBROADCASTW(Mem{Base: w, Disp: off}, h)
	VCVTPH2PS(h, d)
	return d
}

// q8Floats converts the 32 int8 of the Q8_0 block at w+off to float32
// vectors (4 YMM or 2 ZMM), in value order.
func q8Floats(s isa, w reg.Register, off int) []reg.VecVirtual {
	var out []reg.VecVirtual
	for i := 0; i < qk; i += s.lanes {
		v := s.vec()
		VPMOVSXBD(Mem{Base: w, Disp: off + 2 + i}, v)
		VCVTDQ2PS(v, v)
		out = append(out, v)
	}
	return out
}

// q4Floats converts the 32 nibbles of the Q4_0 block at w+off to float32
// vectors holding q−8, in value order (low nibbles are values 0..15, high
// nibbles 16..31). eight is a vector of int32 8s, mask of int32 0x0f.
func q4Floats(s isa, w reg.Register, off int, eight, mask reg.VecVirtual) []reg.VecVirtual {
	var lo, hi []reg.VecVirtual
	for i := 0; i < qk/2; i += s.lanes {
		b := s.vec()
		VPMOVZXBD(Mem{Base: w, Disp: off + 2 + i}, b)
		l, h := s.vec(), s.vec()
		VPSRLD(U8(4), b, h)
		and(s, mask, b, l)
		for _, v := range []reg.VecVirtual{l, h} {
			VPSUBD(eight, v, v)
			VCVTDQ2PS(v, v)
		}
		lo = append(lo, l)
		hi = append(hi, h)
	}
	return append(lo, hi...)
}

// consts32 broadcasts the int32 constant c into a new vector.
func consts32(s isa, c uint32) reg.VecVirtual {
	g := GP32()
	MOVL(U32(c), g)
	x := XMM()
	VMOVD(g, x) // VEX: a legacy-SSE MOVD here costs 4× in the Q4 loop (SSE/AVX transition)
	v := s.vec()
	VPBROADCASTD(x, v)
	return v
}

// broadcastParam broadcasts the float32 parameter name into a new vector.
func broadcastParam(s isa, name string) reg.VecVirtual {
	v := s.vec()
	p, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	VBROADCASTSS(p.Addr, v)
	return v
}

// dotF32: Σ a[i]·b[i] for n a multiple of the lane count.
func dotF32(s isa) {
	TEXT("dotF32"+s.suffix, NOSPLIT, "func(a, b *float32, n int) float32")
	Doc("dotF32" + s.suffix + " returns Σ a[i]·b[i] over n elements; n must be a multiple of the vector width.")
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())
	n := Load(Param("n"), GP64())
	acc := []reg.VecVirtual{s.vec(), s.vec(), s.vec(), s.vec()}
	zero(acc...)
	step := 4 * s.lanes
	Label("big" + s.suffix)
	CMPQ(n, U32(step))
	JL(LabelRef("small" + s.suffix))
	for j := range 4 {
		v := s.vec()
		VMOVUPS(Mem{Base: a, Disp: j * s.lanes * f32Bytes}, v)
		VFMADD231PS(Mem{Base: b, Disp: j * s.lanes * f32Bytes}, v, acc[j])
	}
	ADDQ(U32(step*f32Bytes), a)
	ADDQ(U32(step*f32Bytes), b)
	SUBQ(U32(step), n)
	JMP(LabelRef("big" + s.suffix))
	Label("small" + s.suffix)
	CMPQ(n, U32(0))
	JE(LabelRef("done" + s.suffix))
	v := s.vec()
	VMOVUPS(Mem{Base: a}, v)
	VFMADD231PS(Mem{Base: b}, v, acc[0])
	ADDQ(U32(s.lanes*f32Bytes), a)
	ADDQ(U32(s.lanes*f32Bytes), b)
	SUBQ(U32(s.lanes), n)
	JMP(LabelRef("small" + s.suffix))
	Label("done" + s.suffix)
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	hsum(s, acc[0])
}

// dot4F32: out[j] = Σ row[i]·x[j·stride+i] for j < 4, sharing the row loads.
func dot4F32(s isa) {
	TEXT("dot4F32"+s.suffix, NOSPLIT, "func(row, x *float32, stride, n int, out *[4]float32)")
	Doc("dot4F32" + s.suffix + " computes out[j] = Σ row[i]·x[j·stride+i] for j < 4 over n elements; n must be a multiple of the vector width.")
	row := Load(Param("row"), GP64())
	x0 := Load(Param("x"), GP64())
	stride := Load(Param("stride"), GP64())
	n := Load(Param("n"), GP64())
	SHLQ(U8(2), stride)
	x1, x2, x3 := GP64(), GP64(), GP64()
	LEAQ(Mem{Base: x0, Index: stride, Scale: 1}, x1)
	LEAQ(Mem{Base: x1, Index: stride, Scale: 1}, x2)
	LEAQ(Mem{Base: x2, Index: stride, Scale: 1}, x3)
	xs := []reg.Register{x0, x1, x2, x3}
	acc := make([]reg.VecVirtual, 8)
	for i := range acc {
		acc[i] = s.vec()
	}
	zero(acc...)
	i := GP64()
	XORQ(i, i)
	Label("big4" + s.suffix)
	t := GP64()
	MOVQ(i, t)
	ADDQ(U32(2*s.lanes), t)
	CMPQ(t, n)
	JG(LabelRef("small4" + s.suffix))
	for u := range 2 {
		r := s.vec()
		VMOVUPS(Mem{Base: row, Index: i, Scale: 4, Disp: u * s.lanes * f32Bytes}, r)
		for j, x := range xs {
			VFMADD231PS(Mem{Base: x, Index: i, Scale: 4, Disp: u * s.lanes * f32Bytes}, r, acc[u*4+j])
		}
	}
	ADDQ(U32(2*s.lanes), i)
	JMP(LabelRef("big4" + s.suffix))
	Label("small4" + s.suffix)
	CMPQ(i, n)
	JGE(LabelRef("done4" + s.suffix))
	r := s.vec()
	VMOVUPS(Mem{Base: row, Index: i, Scale: 4}, r)
	for j, x := range xs {
		VFMADD231PS(Mem{Base: x, Index: i, Scale: 4}, r, acc[j])
	}
	ADDQ(U32(s.lanes), i)
	JMP(LabelRef("small4" + s.suffix))
	Label("done4" + s.suffix)
	out := Load(Param("out"), GP64())
	for j := range 4 {
		VADDPS(acc[4+j], acc[j], acc[j])
		reduceTo(s, acc[j], Mem{Base: out, Disp: j * f32Bytes})
	}
	VZEROUPPER()
	RET()
}

// reduceTo sums the lanes of v and stores the float32 at m.
func reduceTo(s isa, v reg.VecVirtual, m Mem) {
	x := v.AsX()
	if s.lanes == 16 {
		hi := YMM()
		VEXTRACTF64X4(U8(1), v, hi)
		VADDPS(hi, v.AsY(), hi)
		x = hi.AsX()
		t := XMM()
		VEXTRACTF128(U8(1), hi, t)
		VADDPS(t, x, x)
	} else {
		t := XMM()
		VEXTRACTF128(U8(1), v, t)
		VADDPS(t, x, x)
	}
	t := XMM()
	VMOVHLPS(x, x, t)
	VADDPS(t, x, x)
	VMOVSHDUP(x, t)
	VADDSS(t, x, x)
	VMOVSS(x, m)
}

// axpyF32: y[i] += alpha·x[i] for n a multiple of the lane count.
func axpyF32(s isa) {
	TEXT("axpyF32"+s.suffix, NOSPLIT, "func(alpha float32, x, y *float32, n int)")
	Doc("axpyF32" + s.suffix + " computes y[i] += alpha·x[i] over n elements; n must be a multiple of the vector width.")
	al := broadcastParam(s, "alpha")
	x := Load(Param("x"), GP64())
	y := Load(Param("y"), GP64())
	n := Load(Param("n"), GP64())
	Label("axloop" + s.suffix)
	CMPQ(n, U32(0))
	JE(LabelRef("axdone" + s.suffix))
	v := s.vec()
	VMOVUPS(Mem{Base: y}, v)
	VFMADD231PS(Mem{Base: x}, al, v)
	VMOVUPS(v, Mem{Base: y})
	ADDQ(U32(s.lanes*f32Bytes), x)
	ADDQ(U32(s.lanes*f32Bytes), y)
	SUBQ(U32(s.lanes), n)
	JMP(LabelRef("axloop" + s.suffix))
	Label("axdone" + s.suffix)
	VZEROUPPER()
	RET()
}

// dotF16: Σ x[i]·w[i] with w in IEEE half precision, n a multiple of the lane count.
func dotF16(s isa) {
	TEXT("dotF16"+s.suffix, NOSPLIT, "func(x *float32, w *byte, n int) float32")
	Doc("dotF16" + s.suffix + " returns Σ x[i]·w[i] for n half-precision values at w; n must be a multiple of the vector width.")
	x := Load(Param("x"), GP64())
	w := Load(Param("w"), GP64())
	n := Load(Param("n"), GP64())
	acc := []reg.VecVirtual{s.vec(), s.vec()}
	zero(acc...)
	Label("h2" + s.suffix)
	CMPQ(n, U32(2*s.lanes))
	JL(LabelRef("h1" + s.suffix))
	for j := range 2 {
		v := s.vec()
		VCVTPH2PS(Mem{Base: w, Disp: j * s.lanes * f16Bytes}, v)
		VFMADD231PS(Mem{Base: x, Disp: j * s.lanes * f32Bytes}, v, acc[j])
	}
	ADDQ(U32(2*s.lanes*f16Bytes), w)
	ADDQ(U32(2*s.lanes*f32Bytes), x)
	SUBQ(U32(2*s.lanes), n)
	JMP(LabelRef("h2" + s.suffix))
	Label("h1" + s.suffix)
	CMPQ(n, U32(0))
	JE(LabelRef("hdone" + s.suffix))
	v := s.vec()
	VCVTPH2PS(Mem{Base: w}, v)
	VFMADD231PS(Mem{Base: x}, v, acc[0])
	Label("hdone" + s.suffix)
	VADDPS(acc[1], acc[0], acc[0])
	hsum(s, acc[0])
}

// dequantF16: dst[i] = float32(w[i]) for n a multiple of the lane count.
func dequantF16(s isa) {
	TEXT("dequantF16"+s.suffix, NOSPLIT, "func(dst *float32, w *byte, n int)")
	Doc("dequantF16" + s.suffix + " converts n half-precision values at w to float32 at dst; n must be a multiple of the vector width.")
	dst := Load(Param("dst"), GP64())
	w := Load(Param("w"), GP64())
	n := Load(Param("n"), GP64())
	Label("dh" + s.suffix)
	CMPQ(n, U32(0))
	JE(LabelRef("dhdone" + s.suffix))
	v := s.vec()
	VCVTPH2PS(Mem{Base: w}, v)
	VMOVUPS(v, Mem{Base: dst})
	ADDQ(U32(s.lanes*f16Bytes), w)
	ADDQ(U32(s.lanes*f32Bytes), dst)
	SUBQ(U32(s.lanes), n)
	JMP(LabelRef("dh" + s.suffix))
	Label("dhdone" + s.suffix)
	VZEROUPPER()
	RET()
}

// rowPrefetch is how far ahead of the blocks being read (in bytes) the
// block loops ask for weights with PREFETCHT0. A single-token step streams
// every weight once (145 MB per token at SmolLM-135M Q8_0) and is bound by
// memory; the hardware prefetcher alone leaves the loop waiting. Measured
// at SmolLM-135M dims, 2 threads: none 80, 512 B 95, 1 KiB 109, 2 KiB
// 95–120 tokens/s (Q8_0); Q4_0 154 at 1 KiB.
const rowPrefetch = 1024

// blockLoop emits a loop over nb blocks of the given byte size, two blocks
// per iteration and then one, calling body(off) for the block at w+off and
// advancing w and, when x is not nil, x by 32 floats per block.
// Each iteration prefetches the weights rowPrefetch bytes ahead.
func blockLoop(s isa, name string, w, x, nb reg.Register, blockBytes int, body func(off, xoff int)) {
	Label(name + "2" + s.suffix)
	CMPQ(nb, U32(2))
	JL(LabelRef(name + "1" + s.suffix))
	PREFETCHT0(Mem{Base: w, Disp: rowPrefetch})
	body(0, 0)
	body(blockBytes, qk*f32Bytes)
	ADDQ(U32(2*blockBytes), w)
	if x != nil {
		ADDQ(U32(2*qk*f32Bytes), x)
	}
	SUBQ(U32(2), nb)
	JMP(LabelRef(name + "2" + s.suffix))
	Label(name + "1" + s.suffix)
	CMPQ(nb, U32(0))
	JE(LabelRef(name + "done" + s.suffix))
	body(0, 0)
	Label(name + "done" + s.suffix)
}

// blockDot accumulates acc += d · Σ_k q[k]·x[k·lanes…] for one block whose
// values are qs (already float32).
func blockDot(s isa, qs []reg.VecVirtual, x reg.Register, xoff int, d, acc reg.VecVirtual) {
	t := s.vec()
	VMULPS(Mem{Base: x, Disp: xoff}, qs[0], t)
	for k := 1; k < len(qs); k++ {
		VFMADD231PS(Mem{Base: x, Disp: xoff + k*s.lanes*f32Bytes}, qs[k], t)
	}
	VFMADD231PS(d, t, acc)
}

func dotQ8(s isa) {
	TEXT("dotQ8_0"+s.suffix, NOSPLIT, "func(x *float32, w *byte, nb int) float32")
	Doc("dotQ8_0" + s.suffix + " returns Σ x[i]·w[i] for nb Q8_0 blocks at w (32·nb values).")
	x := Load(Param("x"), GP64())
	w := Load(Param("w"), GP64())
	nb := Load(Param("nb"), GP64())
	acc := []reg.VecVirtual{s.vec(), s.vec()}
	zero(acc...)
	k := 0
	blockLoop(s, "q8dot", w, x, nb, q8Bytes, func(off, xoff int) {
		d := scale(s, w, off)
		blockDot(s, q8Floats(s, w, off), x, xoff, d, acc[k%2])
		k++
	})
	VADDPS(acc[1], acc[0], acc[0])
	hsum(s, acc[0])
}

func dotQ4(s isa) {
	TEXT("dotQ4_0"+s.suffix, NOSPLIT, "func(x *float32, w *byte, nb int) float32")
	Doc("dotQ4_0" + s.suffix + " returns Σ x[i]·w[i] for nb Q4_0 blocks at w (32·nb values).")
	x := Load(Param("x"), GP64())
	w := Load(Param("w"), GP64())
	nb := Load(Param("nb"), GP64())
	eight, mask := consts32(s, 8), consts32(s, 0x0f)
	acc := []reg.VecVirtual{s.vec(), s.vec()}
	zero(acc...)
	k := 0
	blockLoop(s, "q4dot", w, x, nb, q4Bytes, func(off, xoff int) {
		d := scale(s, w, off)
		blockDot(s, q4Floats(s, w, off, eight, mask), x, xoff, d, acc[k%2])
		k++
	})
	VADDPS(acc[1], acc[0], acc[0])
	hsum(s, acc[0])
}

// storeScaled writes d·q[k] to dst+off+k·lanes floats.
func storeScaled(s isa, qs []reg.VecVirtual, d reg.VecVirtual, dst reg.Register, off int) {
	for k, q := range qs {
		VMULPS(d, q, q)
		VMOVUPS(q, Mem{Base: dst, Disp: off + k*s.lanes*f32Bytes})
	}
}

func dequantQ8(s isa) {
	TEXT("dequantQ8_0"+s.suffix, NOSPLIT, "func(dst *float32, w *byte, nb int)")
	Doc("dequantQ8_0" + s.suffix + " writes the 32·nb values of nb Q8_0 blocks at w as float32 to dst.")
	dst := Load(Param("dst"), GP64())
	w := Load(Param("w"), GP64())
	nb := Load(Param("nb"), GP64())
	blockLoop(s, "q8deq", w, dst, nb, q8Bytes, func(off, xoff int) {
		storeScaled(s, q8Floats(s, w, off), scale(s, w, off), dst, xoff)
	})
	VZEROUPPER()
	RET()
}

func dequantQ4(s isa) {
	TEXT("dequantQ4_0"+s.suffix, NOSPLIT, "func(dst *float32, w *byte, nb int)")
	Doc("dequantQ4_0" + s.suffix + " writes the 32·nb values of nb Q4_0 blocks at w as float32 to dst.")
	dst := Load(Param("dst"), GP64())
	w := Load(Param("w"), GP64())
	nb := Load(Param("nb"), GP64())
	eight, mask := consts32(s, 8), consts32(s, 0x0f)
	blockLoop(s, "q4deq", w, dst, nb, q4Bytes, func(off, xoff int) {
		storeScaled(s, q4Floats(s, w, off, eight, mask), scale(s, w, off), dst, xoff)
	})
	VZEROUPPER()
	RET()
}

// axpyScaled computes y[k·lanes…] += (alpha·d)·q[k].
func axpyScaled(s isa, qs []reg.VecVirtual, alpha, d reg.VecVirtual, y reg.Register, off int) {
	VMULPS(alpha, d, d)
	for k, q := range qs {
		m := Mem{Base: y, Disp: off + k*s.lanes*f32Bytes}
		v := s.vec()
		VMOVUPS(m, v)
		VFMADD231PS(q, d, v)
		VMOVUPS(v, m)
	}
}

func axpyQ8(s isa) {
	TEXT("axpyQ8_0"+s.suffix, NOSPLIT, "func(alpha float32, w *byte, y *float32, nb int)")
	Doc("axpyQ8_0" + s.suffix + " computes y[i] += alpha·w[i] for the 32·nb values of nb Q8_0 blocks at w.")
	al := broadcastParam(s, "alpha")
	w := Load(Param("w"), GP64())
	y := Load(Param("y"), GP64())
	nb := Load(Param("nb"), GP64())
	blockLoop(s, "q8axpy", w, y, nb, q8Bytes, func(off, xoff int) {
		axpyScaled(s, q8Floats(s, w, off), al, scale(s, w, off), y, xoff)
	})
	VZEROUPPER()
	RET()
}

func axpyQ4(s isa) {
	TEXT("axpyQ4_0"+s.suffix, NOSPLIT, "func(alpha float32, w *byte, y *float32, nb int)")
	Doc("axpyQ4_0" + s.suffix + " computes y[i] += alpha·w[i] for the 32·nb values of nb Q4_0 blocks at w.")
	al := broadcastParam(s, "alpha")
	w := Load(Param("w"), GP64())
	y := Load(Param("y"), GP64())
	nb := Load(Param("nb"), GP64())
	eight, mask := consts32(s, 8), consts32(s, 0x0f)
	blockLoop(s, "q4axpy", w, y, nb, q4Bytes, func(off, xoff int) {
		axpyScaled(s, q4Floats(s, w, off, eight, mask), al, scale(s, w, off), y, xoff)
	})
	VZEROUPPER()
	RET()
}

// and computes dst = a & b on integer lanes.
func and(s isa, a, b, dst reg.VecVirtual) {
	if s.lanes == 16 {
		VPANDD(a, b, dst)
		return
	}
	VPAND(a, b, dst)
}

// cpuid exposes the CPUID instruction for the feature bits that
// golang.org/x/sys/cpu does not report (F16C).
func cpuid() {
	TEXT("cpuid", NOSPLIT, "func(leaf, sub uint32) (eax, ebx, ecx, edx uint32)")
	Doc("cpuid executes CPUID with the given leaf and sub-leaf.")
	Load(Param("leaf"), reg.EAX)
	Load(Param("sub"), reg.ECX)
	CPUID()
	Store(reg.EAX, Return("eax"))
	Store(reg.EBX, Return("ebx"))
	Store(reg.ECX, Return("ecx"))
	Store(reg.EDX, Return("edx"))
	RET()
}

// gemmShape is the register tile of a gemm micro-kernel: mr rows of A and C
// by nv vectors (nv·lanes columns) of B and C.
type gemmShape struct{ mr, nv int }

// gemmShapes are the tiles generated per family: AVX-512 has 32 vector
// registers (mr·nv accumulators + nv of B + 1 broadcast), AVX2 16.
var gemmShapes = map[string]gemmShape{"AVX2": {mr: 6, nv: 2}, "AVX512": {mr: 8, nv: 2}}

// gemm emits the register-blocked micro-kernel of MatMul and MatMulT:
//
//	C[mr×nr] = (acc ≠ 0 ? C : 0) + A[mr×k]·B[k×nr]
//
// with A's rows lda floats apart, B's rows ldb floats apart and C's rows ldc
// floats apart (nr = nv·lanes). Each step of the k loop loads one row of B
// (nv vectors), broadcasts one value of each row of A and issues mr·nv
// independent FMAs into accumulators that stay in registers for the whole
// loop, so C is read and written once per call.
func gemm(s isa) {
	sh := gemmShapes[s.suffix]
	mr, nr := sh.mr, sh.nv*s.lanes
	name := "gemm" + s.suffix
	TEXT(name, NOSPLIT, "func(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k int, acc int)")
	Doc(name+" computes C = A·B (or C += A·B when acc ≠ 0) for a",
		itoa(mr)+"×"+itoa(nr)+" tile of C: A has k columns and rows lda floats apart, B has k rows",
		"ldb floats apart, C rows ldc floats apart; k must be at least 1.")
	accs := gemmLoop(s, name)
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	flag := Load(Param("acc"), GP64())
	CMPQ(flag, U32(0))
	JE(LabelRef(name + "overwrite"))
	q := GP64()
	MOVQ(c, q)
	for i, row := range accs {
		for v, acc := range row {
			VADDPS(Mem{Base: q, Disp: v * s.lanes * f32Bytes}, acc, acc)
		}
		if i < mr-1 {
			ADDQ(ldc, q)
		}
	}
	Label(name + "overwrite")
	for i, row := range accs {
		for v, acc := range row {
			VMOVUPS(acc, Mem{Base: c, Disp: v * s.lanes * f32Bytes})
		}
		if i < mr-1 {
			ADDQ(ldc, c)
		}
	}
	VZEROUPPER()
	RET()
}

// gemmT emits the micro-kernel of gemm with the tile stored transposed,
// C[j·ldc + i] = Σ A[i,·]·B[·,j], for MatMul's W·xᵀ: the tile's columns are
// inputs and its rows W rows, so each column is a contiguous run of mr
// outputs. The accumulators are transposed in registers in 8×8 blocks
// (unpack, shuffle, 128-bit lane shuffle). AVX-512 (8×32) stores each
// column as one 8-float row; AVX2 (6×16) pads its 6 rows with two zero
// rows, spills the second half of the tile first (16 ymm registers hold
// the 12 accumulators, not a transpose beside them) and stores 6 floats
// per column, 4 + 2, so nothing past the tile's rows is written.
func gemmT(s isa) {
	sh := gemmShapes[s.suffix]
	mr, nr := sh.mr, sh.nv*s.lanes
	if (mr != 8 || s.lanes != 16) && (mr != 6 || s.lanes != 8 || sh.nv != 2) {
		panic("gemmT needs an 8×32 AVX-512 or a 6×16 AVX2 tile")
	}
	name := "gemmT" + s.suffix
	TEXT(name, NOSPLIT, "func(a *float32, lda int, b *float32, ldb int, c *float32, ldc int, k int)")
	Doc(name+" computes the "+itoa(mr)+"×"+itoa(nr)+" tile A·B like gemm"+s.suffix+" and stores it transposed:",
		"element (i, j) at c[j·ldc + i]; k must be at least 1.")
	accs := gemmLoop(s, name)
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	if s.lanes == 8 {
		spill := AllocLocal(mr * ymmFloats * f32Bytes)
		for i := range mr {
			VMOVUPS(accs[i][1], spill.Offset(i*ymmFloats*f32Bytes))
		}
		z := YMM()
		VXORPS(z, z, z)
		for v := range sh.nv {
			r := make([]reg.Register, 8)
			for i := range mr {
				if v == 0 {
					r[i] = accs[i][0]
					continue
				}
				y := YMM()
				VMOVUPS(spill.Offset(i*ymmFloats*f32Bytes), y)
				r[i] = y
			}
			for i := mr; i < 8; i++ {
				r[i] = z
			}
			for j, o := range transpose8(s, r) {
				if 8*v+j > 0 {
					ADDQ(ldc, c)
				}
				// Rows 0–5 of column j: 4 floats, then 2.
				hi := XMM()
				VEXTRACTF128(U8(1), o, hi)
				VMOVUPS(o.AsX(), Mem{Base: c})
				VMOVLPS(hi, Mem{Base: c, Disp: 4 * f32Bytes})
			}
		}
		VZEROUPPER()
		RET()
		return
	}
	for v := range sh.nv {
		for h := range 2 {
			// r[i] = lanes 8h..8h+7 of accs[i][v]: an 8×8 block whose
			// column j belongs at c + (16v + 8h + j)·ldc.
			r := make([]reg.Register, 8)
			for i := range r {
				if h == 0 {
					r[i] = accs[i][v].AsY()
					continue
				}
				r[i] = YMM()
				VEXTRACTF64X4(U8(1), accs[i][v], r[i])
			}
			for j, o := range transpose8(s, r) {
				col := 16*v + 8*h + j
				if col > 0 {
					ADDQ(ldc, c)
				}
				VMOVUPS(o, Mem{Base: c})
			}
		}
	}
	VZEROUPPER()
	RET()
}

// gemmLoop emits the argument loads and the k loop shared by gemm and gemmT
// and returns the accumulators, acc[i][v] holding row i, columns
// v·lanes … v·lanes+lanes−1 of the tile.
func gemmLoop(s isa, name string) [][]reg.VecVirtual {
	sh := gemmShapes[s.suffix]
	mr, nv := sh.mr, sh.nv
	a := Load(Param("a"), GP64())
	lda := Load(Param("lda"), GP64())
	b := Load(Param("b"), GP64())
	ldb := Load(Param("ldb"), GP64())
	k := Load(Param("k"), GP64())
	SHLQ(U8(2), lda)
	SHLQ(U8(2), ldb)
	lda3 := GP64()
	LEAQ(Mem{Base: lda, Index: lda, Scale: 2}, lda3)
	// Row i of A is at bases[i/4] + (i%4)·lda.
	bases := []reg.Register{a}
	for i := 4; i < mr; i += 4 {
		p := GP64()
		LEAQ(Mem{Base: bases[len(bases)-1], Index: lda, Scale: 4}, p)
		bases = append(bases, p)
	}
	rowA := func(i, disp int) Mem {
		base := bases[i/4]
		switch i % 4 {
		case 0:
			return Mem{Base: base, Disp: disp}
		case 1:
			return Mem{Base: base, Index: lda, Scale: 1, Disp: disp}
		case 2:
			return Mem{Base: base, Index: lda, Scale: 2, Disp: disp}
		default:
			return Mem{Base: base, Index: lda3, Scale: 1, Disp: disp}
		}
	}
	accs := make([][]reg.VecVirtual, mr)
	for i := range accs {
		accs[i] = make([]reg.VecVirtual, nv)
		for v := range accs[i] {
			accs[i][v] = s.vec()
		}
		zero(accs[i]...)
	}
	// step emits one k step reading B at bRow and A at column offset disp.
	step := func(bRow func(v int) Mem, disp int) {
		bv := make([]reg.VecVirtual, nv)
		for v := range bv {
			bv[v] = s.vec()
			VMOVUPS(bRow(v), bv[v])
		}
		for i := range mr {
			t := s.vec()
			VBROADCASTSS(rowA(i, disp), t)
			for v := range nv {
				VFMADD231PS(bv[v], t, accs[i][v])
			}
		}
	}
	Label(name + "loop2")
	CMPQ(k, U32(2))
	JL(LabelRef(name + "loop1"))
	step(func(v int) Mem { return Mem{Base: b, Disp: v * s.lanes * f32Bytes} }, 0)
	step(func(v int) Mem { return Mem{Base: b, Index: ldb, Scale: 1, Disp: v * s.lanes * f32Bytes} }, f32Bytes)
	for _, p := range bases {
		ADDQ(U32(2*f32Bytes), p)
	}
	LEAQ(Mem{Base: b, Index: ldb, Scale: 2}, b)
	SUBQ(U32(2), k)
	JMP(LabelRef(name + "loop2"))
	Label(name + "loop1")
	CMPQ(k, U32(0))
	JE(LabelRef(name + "done"))
	step(func(v int) Mem { return Mem{Base: b, Disp: v * s.lanes * f32Bytes} }, 0)
	Label(name + "done")
	return accs
}

// itoa formats a small non-negative int.
func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// transpose8 transposes the 8×8 float32 block held in the ymm registers r
// (r[i] is row i) and returns its columns, in order, in new registers:
// unpack pairs of rows, shuffle pairs of pairs, then swap 128-bit halves.
func transpose8(s isa, r []reg.Register) []reg.VecVirtual {
	t := make([]reg.VecVirtual, 8)
	for p := range 4 {
		t[2*p], t[2*p+1] = YMM(), YMM()
		VUNPCKLPS(r[2*p+1], r[2*p], t[2*p])
		VUNPCKHPS(r[2*p+1], r[2*p], t[2*p+1])
	}
	u := make([]reg.VecVirtual, 8)
	for q := range 2 {
		lo, hi := t[4*q:4*q+2], t[4*q+2:4*q+4]
		for e := range 2 {
			u[4*q+2*e], u[4*q+2*e+1] = YMM(), YMM()
			VSHUFPS(U8(0x44), hi[e], lo[e], u[4*q+2*e])
			VSHUFPS(U8(0xee), hi[e], lo[e], u[4*q+2*e+1])
		}
	}
	// u[0..3] hold columns 0..3 of rows 0..3 (and columns 4..7 in the high
	// halves), u[4..7] the same of rows 4..7.
	out := make([]reg.VecVirtual, 8)
	for j := range out {
		out[j] = YMM()
		if s.lanes == 16 {
			// EVEX VSHUFF32X4, not VPERM2F128: the registers may be Y16+.
			VSHUFF32X4(U8([]uint8{0, 3}[j/4]), u[4+j%4], u[j%4], out[j])
		} else {
			VPERM2F128(U8([]uint8{0x20, 0x31}[j/4]), u[4+j%4], u[j%4], out[j])
		}
	}
	return out
}

// transpose8F32 emits the packing kernel of MatMul: it transposes 8 rows of
// x (ldx floats apart) over n columns into dst, column c of the block going
// to the 8 floats at dst + c·ldd.
func transpose8F32(s isa) {
	name := "transpose8F32" + s.suffix
	TEXT(name, NOSPLIT, "func(dst *float32, ldd int, x *float32, ldx int, n int)")
	Doc(name + " writes x[i·ldx + c] to dst[c·ldd + i] for i < 8 and c < n; n must be a multiple of 8.")
	dst := Load(Param("dst"), GP64())
	ldd := Load(Param("ldd"), GP64())
	x := Load(Param("x"), GP64())
	ldx := Load(Param("ldx"), GP64())
	n := Load(Param("n"), GP64())
	SHLQ(U8(2), ldd)
	SHLQ(U8(2), ldx)
	ldx3 := GP64()
	LEAQ(Mem{Base: ldx, Index: ldx, Scale: 2}, ldx3)
	x4 := GP64()
	LEAQ(Mem{Base: x, Index: ldx, Scale: 4}, x4)
	Label(name + "loop")
	CMPQ(n, U32(0))
	JE(LabelRef(name + "done"))
	r := make([]reg.Register, 8)
	for i := range r {
		v := YMM()
		base := []reg.Register{x, x4}[i/4]
		m := Mem{Base: base}
		switch i % 4 {
		case 1:
			m = Mem{Base: base, Index: ldx, Scale: 1}
		case 2:
			m = Mem{Base: base, Index: ldx, Scale: 2}
		case 3:
			m = Mem{Base: base, Index: ldx3, Scale: 1}
		}
		VMOVUPS(m, v)
		r[i] = v
	}
	for _, o := range transpose8(s, r) {
		VMOVUPS(o, Mem{Base: dst})
		ADDQ(ldd, dst)
	}
	ADDQ(U32(8*f32Bytes), x)
	ADDQ(U32(8*f32Bytes), x4)
	SUBQ(U32(8), n)
	JMP(LabelRef(name + "loop"))
	Label(name + "done")
	VZEROUPPER()
	RET()
}

// hmax reduces the float32 lanes of v to their maximum and stores it as
// the function's float32 result.
func hmax(s isa, v reg.VecVirtual) {
	x := v.AsX()
	if s.lanes == 16 {
		hi := YMM()
		VEXTRACTF64X4(U8(1), v, hi)
		VMAXPS(hi, v.AsY(), hi)
		x = hi.AsX()
		t := XMM()
		VEXTRACTF128(U8(1), hi, t)
		VMAXPS(t, x, x)
	} else {
		t := XMM()
		VEXTRACTF128(U8(1), v, t)
		VMAXPS(t, x, x)
	}
	t := XMM()
	VMOVHLPS(x, x, t)
	VMAXPS(t, x, x)
	VMOVSHDUP(x, t)
	VMAXSS(t, x, x)
	VZEROUPPER()
	Store(x, ReturnIndex(0))
	RET()
}

// maxF32: the largest of n float32 (n a positive multiple of the lane count).
func maxF32(s isa) {
	TEXT("maxF32"+s.suffix, NOSPLIT, "func(x *float32, n int) float32")
	Doc("maxF32" + s.suffix + " returns the largest of x[0:n]; n must be a positive multiple of the vector width.")
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	acc := []reg.VecVirtual{s.vec(), s.vec(), s.vec(), s.vec()}
	for _, a := range acc {
		VMOVUPS(Mem{Base: x}, a)
	}
	step := 4 * s.lanes
	Label("mxbig" + s.suffix)
	CMPQ(n, U32(step))
	JL(LabelRef("mxsmall" + s.suffix))
	for j := range 4 {
		VMAXPS(Mem{Base: x, Disp: j * s.lanes * f32Bytes}, acc[j], acc[j])
	}
	ADDQ(U32(step*f32Bytes), x)
	SUBQ(U32(step), n)
	JMP(LabelRef("mxbig" + s.suffix))
	Label("mxsmall" + s.suffix)
	CMPQ(n, U32(0))
	JE(LabelRef("mxdone" + s.suffix))
	VMAXPS(Mem{Base: x}, acc[0], acc[0])
	ADDQ(U32(s.lanes*f32Bytes), x)
	SUBQ(U32(s.lanes), n)
	JMP(LabelRef("mxsmall" + s.suffix))
	Label("mxdone" + s.suffix)
	VMAXPS(acc[1], acc[0], acc[0])
	VMAXPS(acc[3], acc[2], acc[2])
	VMAXPS(acc[2], acc[0], acc[0])
	hmax(s, acc[0])
}

// expSubF32: x[i] = exp(x[i] − m) in place, returning the sum, for
// x[i] ≤ m (softmax after subtracting the maximum). The same algorithm as
// the pure-Go version: clamp at −87, k = round(x·log2 e), r = x − k·ln 2
// (in two parts), a degree-6 Taylor polynomial of e^r, times 2^k.
func expSubF32(s isa) {
	TEXT("expSubF32"+s.suffix, NOSPLIT, "func(x *float32, n int, m float32) float32")
	Doc("expSubF32" + s.suffix + " sets x[i] = exp(x[i]-m) over n elements and returns their sum; n must be a multiple of the vector width.")
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	mv := broadcastParam(s, "m")
	lo := consts32(s, 0xc2ae0000)    // -87
	log2e := consts32(s, 0x3fb8aa3b) // 1.442695
	ln2hi := consts32(s, 0x3f318000) // 0.693359375
	ln2lo := consts32(s, 0xb95e8083) // -2.12194440e-4
	one := consts32(s, 0x3f800000)
	cs := []reg.VecVirtual{
		consts32(s, 0x3ab60b61), // 1/720
		consts32(s, 0x3c088889), // 1/120
		consts32(s, 0x3d2aaaab), // 1/24
		consts32(s, 0x3e2aaaab), // 1/6
		consts32(s, 0x3f000000), // 1/2
		one,
		one,
	}
	var bias reg.VecVirtual
	if s.lanes == 8 {
		bias = consts32(s, 127)
	}
	// AVX2 has 16 vector registers: one accumulator and one vector per
	// iteration; AVX-512 has 32: two of each.
	unroll := 1
	if s.lanes == 16 {
		unroll = 2
	}
	acc := make([]reg.VecVirtual, unroll)
	for i := range acc {
		acc[i] = s.vec()
	}
	zero(acc...)
	body := func(disp int, a reg.VecVirtual) {
		v := s.vec()
		VMOVUPS(Mem{Base: x, Disp: disp}, v)
		VSUBPS(mv, v, v)
		VMAXPS(lo, v, v)
		k := s.vec()
		VMULPS(log2e, v, k)
		if s.lanes == 16 {
			VRNDSCALEPS(U8(0), k, k)
		} else {
			VROUNDPS(U8(0), k, k)
		}
		VFNMADD231PS(ln2hi, k, v) // r = x − k·ln2hi
		VFNMADD231PS(ln2lo, k, v) // r −= k·ln2lo
		p := s.vec()
		VMOVAPS(cs[0], p)
		for _, c := range cs[1:] {
			VFMADD213PS(c, v, p) // p = p·r + c
		}
		if s.lanes == 16 {
			VSCALEFPS(k, p, p)
		} else {
			VCVTPS2DQ(k, v) // r is no longer needed: reuse it for 2^k
			VPADDD(bias, v, v)
			VPSLLD(U8(23), v, v)
			VMULPS(v, p, p)
		}
		VMOVUPS(p, Mem{Base: x, Disp: disp})
		VADDPS(p, a, a)
	}
	step := unroll * s.lanes
	Label("exbig" + s.suffix)
	CMPQ(n, U32(step))
	JL(LabelRef("exsmall" + s.suffix))
	for i := range unroll {
		body(i*s.lanes*f32Bytes, acc[i])
	}
	ADDQ(U32(step*f32Bytes), x)
	SUBQ(U32(step), n)
	JMP(LabelRef("exbig" + s.suffix))
	Label("exsmall" + s.suffix)
	CMPQ(n, U32(0))
	JE(LabelRef("exdone" + s.suffix))
	body(0, acc[0])
	ADDQ(U32(s.lanes*f32Bytes), x)
	SUBQ(U32(s.lanes), n)
	JMP(LabelRef("exsmall" + s.suffix))
	Label("exdone" + s.suffix)
	for _, a := range acc[1:] {
		VADDPS(a, acc[0], acc[0])
	}
	hsum(s, acc[0])
}

// sigmoidF32: dst[i] = 1/(1+e^−x[i]) for n a multiple of 8, with AVX2 only.
// e = exp(−|x|) by expSubF32's algorithm (never overflows), r = 1/(1+e),
// and the result is r where x ≥ 0 and e·r where x < 0 (no cancellation).
func sigmoidF32(s isa) {
	TEXT("sigmoidF32"+s.suffix, NOSPLIT, "func(dst, x *float32, n int)")
	Doc("sigmoidF32" + s.suffix + " sets dst[i] = 1/(1+exp(-x[i])) over n elements; n must be a multiple of 8.")
	dst := Load(Param("dst"), GP64())
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	sign := consts32(s, 0x80000000)
	lo := consts32(s, 0xc2ae0000)    // -87
	log2e := consts32(s, 0x3fb8aa3b) // 1.442695
	ln2hi := consts32(s, 0x3f318000) // 0.693359375
	ln2lo := consts32(s, 0xb95e8083) // -2.12194440e-4
	one := consts32(s, 0x3f800000)
	cs := []reg.VecVirtual{
		consts32(s, 0x3ab60b61), // 1/720
		consts32(s, 0x3c088889), // 1/120
		consts32(s, 0x3d2aaaab), // 1/24
		consts32(s, 0x3e2aaaab), // 1/6
		consts32(s, 0x3f000000), // 1/2
		one,
		one,
	}
	bias := consts32(s, 127)
	Label("sgloop" + s.suffix)
	CMPQ(n, U32(0))
	JE(LabelRef("sgdone" + s.suffix))
	xv := s.vec()
	VMOVUPS(Mem{Base: x}, xv)
	v := s.vec()
	VORPS(sign, xv, v) // −|x|
	VMAXPS(lo, v, v)
	k := s.vec()
	VMULPS(log2e, v, k)
	VROUNDPS(U8(0), k, k)
	VFNMADD231PS(ln2hi, k, v)
	VFNMADD231PS(ln2lo, k, v)
	p := s.vec()
	VMOVAPS(cs[0], p)
	for _, c := range cs[1:] {
		VFMADD213PS(c, v, p)
	}
	VCVTPS2DQ(k, v)
	VPADDD(bias, v, v)
	VPSLLD(U8(23), v, v)
	VMULPS(v, p, p) // e = exp(−|x|)
	VADDPS(one, p, v)
	VDIVPS(v, one, k)      // r = 1/(1+e)
	VMULPS(k, p, p)        // e·r
	VBLENDVPS(xv, p, k, k) // sign of x set: e·r, else r
	VMOVUPS(k, Mem{Base: dst})
	ADDQ(U32(s.lanes*f32Bytes), x)
	ADDQ(U32(s.lanes*f32Bytes), dst)
	SUBQ(U32(s.lanes), n)
	JMP(LabelRef("sgloop" + s.suffix))
	Label("sgdone" + s.suffix)
	VZEROUPPER()
	RET()
}
