package quant

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// testdata/kquant_ref.json holds random K-quant blocks (two super-blocks per
// case) and the float32 bits that llama.cpp's reference C functions
// dequantize_row_q4_K/_q5_K/_q6_K (ggml-org/ggml src/ggml-quants.c, built
// with gcc -O0) return for them. Our decoding must be bit-identical.
func TestKQuantsMatchReference(t *testing.T) {
	raw, err := os.ReadFile("testdata/kquant_ref.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct{ Type, Blocks, Values string }
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, c := range cases {
		typ, err := ParseType(c.Type)
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := hex.DecodeString(c.Blocks)
		if err != nil {
			t.Fatal(err)
		}
		words := strings.Fields(c.Values)
		got := make([]float32, len(words))
		if err := Dequantize(typ, blocks, got); err != nil {
			t.Fatal(err)
		}
		for j, w := range words {
			bits, _ := strconv.ParseUint(w, 16, 32)
			if math.Float32bits(got[j]) != uint32(bits) {
				t.Fatalf("case %d (%s) value %d: got %g, reference %g", i, c.Type, j, got[j], math.Float32frombits(uint32(bits)))
			}
		}
		seen[c.Type]++
	}
	if seen["Q4_K"] == 0 || seen["Q5_K"] == 0 || seen["Q6_K"] == 0 {
		t.Fatalf("cases per type: %v", seen)
	}
}

// TestKQuantKnownBlock decodes a hand-built Q6_K block: d = 1, every scale
// 2, every quant 33 (= 1 after the −32 offset) → every value 2.
func TestKQuantKnownBlock(t *testing.T) {
	b := make([]byte, 210)
	for i := range 128 {
		b[i] = 0x11 // low nibbles 1 and 1
	}
	for i := 128; i < 192; i++ {
		b[i] = 0xAA // high bits 2,2,2,2 → +32 each
	}
	for i := 192; i < 208; i++ {
		b[i] = 2
	}
	b[208], b[209] = 0x00, 0x3c // f16 1.0
	y := make([]float32, 256)
	if err := Dequantize(Q6_K, b, y); err != nil {
		t.Fatal(err)
	}
	for i, v := range y {
		if v != 2 {
			t.Fatalf("value %d = %g, want 2", i, v)
		}
	}
}

// testdata/kquant_quant_ref.json holds five input patterns (small Gaussian
// weights, uniform with outliers, all-positive with a zero and a constant
// group, zeros and 1e-20 noise, groups spanning eight orders of magnitude)
// and the blocks ggml's quantize_row_q4_K_ref/_q5_K_ref/_q6_K_ref make of
// them (ggml-org/ggml d99724f2 src/ggml-quants.c, built with gcc -O0 and
// called from a small C program outside this repository). Our encoder must
// produce the same bytes.
func TestKQuantizeMatchesReference(t *testing.T) {
	raw, err := os.ReadFile("testdata/kquant_quant_ref.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct{ Type, Input, Blocks string }
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, c := range cases {
		typ, err := ParseType(c.Type)
		if err != nil {
			t.Fatal(err)
		}
		words := strings.Fields(c.Input)
		x := make([]float32, len(words))
		for j, w := range words {
			bits, err := strconv.ParseUint(w, 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			x[j] = math.Float32frombits(uint32(bits))
		}
		want, err := hex.DecodeString(c.Blocks)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Quantize(typ, x, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("case %d (%s): %d bytes, reference %d", i, c.Type, len(got), len(want))
		}
		for j := range got {
			if got[j] != want[j] {
				bb := typ.BlockBytes()
				t.Fatalf("case %d (%s): byte %d (block %d, offset %d) is %#02x, reference %#02x", i, c.Type, j, j/bb, j%bb, got[j], want[j])
			}
		}
		seen[c.Type]++
	}
	if seen["Q4_K"] != 5 || seen["Q5_K"] != 5 || seen["Q6_K"] != 5 {
		t.Fatalf("cases per type: %v", seen)
	}
}

// packScalesK4 writes eight 6-bit scales and mins in the Q4_K/Q5_K layout
// described in ggml-common.h: bytes 0-3 hold scales 0-3 (low 6 bits) and the
// top 2 bits of scales 4-7; bytes 4-7 the same for mins; bytes 8-11 the low
// nibbles of scale j (low half) and min j (high half) for j = 4..7.
func packScalesK4(sc, m [8]uint8) []byte {
	b := make([]byte, 12)
	for j := range 4 {
		b[j] = sc[j] | (sc[j+4]>>4)<<6
		b[j+4] = m[j] | (m[j+4]>>4)<<6
		b[j+8] = sc[j+4]&0xF | (m[j+4]&0xF)<<4
	}
	return b
}

// TestKQuantKnownQ4KQ5KBlocks builds Q4_K and Q5_K blocks by hand from
// chosen levels, scales (some above 15, so the high bits matter) and mins,
// and checks every decoded value against x = d·scale·q − dmin·min computed
// independently in float64 (exact here: small integers times 1 and 0.5).
func TestKQuantKnownQ4KQ5KBlocks(t *testing.T) {
	var sc, m [8]uint8
	for j := range 8 {
		sc[j], m[j] = uint8(10+7*j), uint8(63-5*j)
	}
	const d, dmin = 1.0, 0.5
	head := []byte{0x00, 0x3c, 0x00, 0x38} // f16 1.0, f16 0.5
	for _, five := range []bool{false, true} {
		level := func(i int) int {
			if five {
				return (i * 11) % 32
			}
			return (i * 7) % 16
		}
		qs := make([]byte, 128) // sub-blocks 2k and 2k+1 share bytes 32k…32k+31: low, high nibble
		qh := make([]byte, 32)  // bit j of qh[l]: the fifth bit of value l of sub-block j
		for i := range 256 {
			j, l := i/32, i%32
			q := level(i)
			if j%2 == 0 {
				qs[(j/2)*32+l] |= byte(q & 0xF)
			} else {
				qs[(j/2)*32+l] |= byte(q&0xF) << 4
			}
			if q >= 16 {
				qh[l] |= 1 << j
			}
		}
		blk := append(append([]byte{}, head...), packScalesK4(sc, m)...)
		typ := Q4_K
		if five {
			typ = Q5_K
			blk = append(blk, qh...)
		}
		blk = append(blk, qs...)
		if len(blk) != typ.BlockBytes() {
			t.Fatalf("%s block built with %d bytes, want %d", typ, len(blk), typ.BlockBytes())
		}
		y := make([]float32, 256)
		if err := Dequantize(typ, blk, y); err != nil {
			t.Fatal(err)
		}
		for i, v := range y {
			j := i / 32
			want := d*float64(sc[j])*float64(level(i)) - dmin*float64(m[j])
			if float64(v) != want {
				t.Fatalf("%s value %d = %g, want %g", typ, i, v, want)
			}
		}
	}
}

// TestKQuantizeRoundTrip quantizes Gaussian weights and checks the relative
// RMS error of each type, and that finer types are more accurate.
func TestKQuantizeRoundTrip(t *testing.T) {
	const n = 64 * QKK
	x := make([]float32, n)
	s := uint64(42)
	for i := range x {
		var a float64
		for range 12 {
			s ^= s << 13
			s ^= s >> 7
			s ^= s << 17
			a += float64(s>>11) / (1 << 53)
		}
		x[i] = float32((a - 6) * 0.02)
	}
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	limits := map[Type]float64{Q4_K: 0.12, Q5_K: 0.06, Q6_K: 0.03}
	rel := map[Type]float64{}
	for _, typ := range []Type{Q4_K, Q5_K, Q6_K} {
		q, err := Quantize(typ, x, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(q) != n/QKK*typ.BlockBytes() {
			t.Fatalf("%s: %d bytes", typ, len(q))
		}
		y := make([]float32, n)
		if err := Dequantize(typ, q, y); err != nil {
			t.Fatal(err)
		}
		var e float64
		for i := range x {
			d := float64(x[i] - y[i])
			e += d * d
		}
		rel[typ] = math.Sqrt(e / ss)
		if rel[typ] > limits[typ] {
			t.Errorf("%s: relative RMS error %.4f, limit %.2f", typ, rel[typ], limits[typ])
		}
	}
	t.Logf("relative RMS error: Q4_K %.4f, Q5_K %.4f, Q6_K %.4f", rel[Q4_K], rel[Q5_K], rel[Q6_K])
	if !(rel[Q6_K] < rel[Q5_K] && rel[Q5_K] < rel[Q4_K]) {
		t.Errorf("errors not ordered by bits: %v", rel)
	}
}

// TestKQuantizeOddInputs: zeros decode to zeros; NaN, infinities and huge
// values give some blocks (as in ggml) without panicking; a length that is
// not a whole super-block is refused.
func TestKQuantizeOddInputs(t *testing.T) {
	for _, typ := range []Type{Q4_K, Q5_K, Q6_K} {
		q, err := Quantize(typ, make([]float32, QKK), nil)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, QKK)
		if err := Dequantize(typ, q, y); err != nil {
			t.Fatal(err)
		}
		for i, v := range y {
			if v != 0 {
				t.Fatalf("%s: zero input decodes to %g at %d", typ, v, i)
			}
		}
		odd := make([]float32, QKK)
		odd[3], odd[40], odd[100], odd[200] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 3e38
		if _, err := Quantize(typ, odd, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := Quantize(typ, make([]float32, QKK+32), nil); err == nil {
			t.Fatalf("%s: 288 values accepted", typ)
		}
	}
}
