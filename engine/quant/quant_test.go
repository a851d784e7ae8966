package quant

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestF16RoundTripAllValues(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := F32ToF16(f); got != uint16(h) {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)=%g) = %#04x", h, f, got)
		}
	}
}

func TestF16KnownValues(t *testing.T) {
	cases := []struct {
		h uint16
		f float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.960464477539063e-08},
		{0x3555, 0.333251953125}, {0x0000, 0},
	}
	for _, c := range cases {
		if got := F16ToF32(c.h); got != c.f {
			t.Errorf("F16ToF32(%#04x) = %g, want %g", c.h, got, c.f)
		}
	}
	// Ties round to even: 1 + 2^-11 lies halfway between 1 and 1+2^-10.
	if got := F32ToF16(1 + 1.0/2048); got != 0x3c00 {
		t.Errorf("tie did not round to even: %#04x", got)
	}
}

func TestBF16(t *testing.T) {
	if got := F32ToBF16(1.00390625); got != 0x3f80 { // tie → even
		t.Errorf("bf16 tie: %#04x", got)
	}
	if got := BF16ToF32(0x4049); got != 3.140625 {
		t.Errorf("BF16ToF32 = %g", got)
	}
}

// TestQ8_0KnownBlock checks a hand-computed block: values k/127·2 for k in
// -16..15 give amax 32/127, d = amax/127, and q = round(v/d).
func TestQ8_0KnownBlock(t *testing.T) {
	x := make([]float32, QK)
	for i := range x {
		x[i] = float32(i-16) / 4
	}
	b := QuantizeQ8_0Block(x, nil)
	if len(b) != 34 {
		t.Fatalf("block is %d bytes", len(b))
	}
	d := F16ToF32(le16(b))
	if want := F16ToF32(F32ToF16(4.0 / 127)); d != want {
		t.Fatalf("scale %g, want %g", d, want)
	}
	if q := int8(b[2]); q != -127 {
		t.Fatalf("q[0] = %d, want -127", q)
	}
	out := make([]float32, QK)
	DequantizeQ8_0Block(b, out)
	for i := range x {
		if math.Abs(float64(out[i]-x[i])) > float64(d)/2+1e-6 {
			t.Fatalf("x[%d]: %g -> %g (d=%g)", i, x[i], out[i], d)
		}
	}
}

// TestQ4_0KnownBlock: the largest-magnitude value maps to q=0 (−8·d) and d = max/−8.
func TestQ4_0KnownBlock(t *testing.T) {
	x := make([]float32, QK)
	for i := range x {
		x[i] = float32(i) - 8 // max |x| is 23 at i=31
	}
	b := QuantizeQ4_0Block(x, nil)
	d := F16ToF32(le16(b))
	if want := F16ToF32(F32ToF16(23.0 / -8)); d != want {
		t.Fatalf("d = %g, want %g", d, want)
	}
	// x[31]=23 → 23/d+8.5 = 0.5 → q=0 (high nibble of byte 15).
	if q := b[2+15] >> 4; q != 0 {
		t.Fatalf("q[31] = %d, want 0", q)
	}
	out := make([]float32, QK)
	DequantizeQ4_0Block(b, out)
	for i := range x {
		if math.Abs(float64(out[i]-x[i])) > math.Abs(float64(d))/2+1e-4 {
			t.Fatalf("x[%d]: %g -> %g (d=%g)", i, x[i], out[i], d)
		}
	}
}

func TestQuantizeRoundTripErrorBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 1024)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, c := range []struct {
		t   Type
		tol float64 // relative RMS error bound
	}{{F32, 0}, {F16, 1e-3}, {BF16, 5e-3}, {Q8_0, 1e-2}, {Q4_1, 0.12}, {Q4_0, 0.15}} {
		b, err := Quantize(c.t, x, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := RowBytes(c.t, len(x)); n != len(b) {
			t.Fatalf("%s: %d bytes, RowBytes says %d", c.t, len(b), n)
		}
		y := make([]float32, len(x))
		if err := Dequantize(c.t, b, y); err != nil {
			t.Fatal(err)
		}
		var se, ss float64
		for i := range x {
			se += float64(y[i]-x[i]) * float64(y[i]-x[i])
			ss += float64(x[i]) * float64(x[i])
		}
		if rel := math.Sqrt(se / ss); rel > c.tol {
			t.Errorf("%s: relative RMS error %.4g > %.4g", c.t, rel, c.tol)
		}
	}
}

func TestRowBytesErrors(t *testing.T) {
	if _, err := RowBytes(Q8_0, 33); err == nil {
		t.Error("33 values of Q8_0 accepted")
	}
	if _, err := RowBytes(Type(99), 32); err == nil {
		t.Error("unknown type accepted")
	}
	if err := Dequantize(Q8_0, make([]byte, 10), make([]float32, 32)); err == nil {
		t.Error("short source accepted")
	}
	if _, err := ParseType("q8_0"); err != nil {
		t.Error(err)
	}
}
