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
