package quant

import (
	"fmt"
	"math"
)

// Type is a ggml tensor element type; the numeric values are those stored in
// GGUF files.
type Type uint32

// The ggml type numbers (ggml.h, enum ggml_type).
const (
	F32  Type = 0
	F16  Type = 1
	Q4_0 Type = 2
	Q4_1 Type = 3
	Q8_0 Type = 8
	Q4_K Type = 12
	Q5_K Type = 13
	Q6_K Type = 14
	BF16 Type = 30
)

// QK is the block size of the 32-value block types (Q8_0, Q4_0, Q4_1).
const QK = 32

// QKK is the super-block size of the K-quant types.
const QKK = 256

type typeInfo struct {
	name       string
	blockSize  int // values per block
	blockBytes int // bytes per block
}

var types = map[Type]typeInfo{
	F32:  {"F32", 1, 4},
	F16:  {"F16", 1, 2},
	BF16: {"BF16", 1, 2},
	Q8_0: {"Q8_0", QK, 2 + QK},
	Q4_0: {"Q4_0", QK, 2 + QK/2},
	Q4_1: {"Q4_1", QK, 4 + QK/2},
	Q4_K: {"Q4_K", QKK, 2 + 2 + 12 + QKK/2},
	Q5_K: {"Q5_K", QKK, 2 + 2 + 12 + QKK/8 + QKK/2},
	Q6_K: {"Q6_K", QKK, QKK/2 + QKK/4 + QKK/16 + 2},
}

// Known reports whether t is a type orchmind can read.
func (t Type) Known() bool { _, ok := types[t]; return ok }

// String returns the ggml name of the type ("Q8_0", "F16", …).
func (t Type) String() string {
	if i, ok := types[t]; ok {
		return i.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of values in one block of t (1 for float types).
func (t Type) BlockSize() int { return types[t].blockSize }

// BlockBytes is the number of bytes in one block of t.
func (t Type) BlockBytes() int { return types[t].blockBytes }

// ParseType maps a ggml type name (case-insensitive, "q8_0", "f16", …) to a Type.
func ParseType(name string) (Type, error) {
	for t, i := range types {
		if equalFold(i.name, name) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown tensor type %q (known: f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q5_k, q6_k)", name)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// RowBytes returns the number of bytes of n values of type t, or an error if
// n is not a whole number of blocks or t is unknown.
func RowBytes(t Type, n int) (int, error) {
	i, ok := types[t]
	if !ok {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if n < 0 || n%i.blockSize != 0 {
		return 0, fmt.Errorf("%s: %d values is not a multiple of the block size %d", i.name, n, i.blockSize)
	}
	return n / i.blockSize * i.blockBytes, nil
}

// Dequantize converts n values of type t in src into dst[:n].
func Dequantize(t Type, src []byte, dst []float32) error {
	n := len(dst)
	need, err := RowBytes(t, n)
	if err != nil {
		return err
	}
	if len(src) < need {
		return fmt.Errorf("%s: need %d bytes for %d values, have %d", t, need, n, len(src))
	}
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(le16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(le16(src[2*i:]))
		}
	case Q8_0:
		for b := 0; b < n/QK; b++ {
			DequantizeQ8_0Block(src[b*34:b*34+34], dst[b*QK:b*QK+QK])
		}
	case Q4_0:
		for b := 0; b < n/QK; b++ {
			DequantizeQ4_0Block(src[b*18:b*18+18], dst[b*QK:b*QK+QK])
		}
	case Q4_1:
		for b := 0; b < n/QK; b++ {
			DequantizeQ4_1Block(src[b*20:b*20+20], dst[b*QK:b*QK+QK])
		}
	default:
		return dequantizeK(t, src, dst)
	}
	return nil
}

// DequantizeQ8_0Block decodes one 34-byte Q8_0 block into dst[:32].
func DequantizeQ8_0Block(b []byte, dst []float32) {
	d := F16ToF32(le16(b))
	q := b[2:34]
	for j := 0; j < QK; j++ {
		dst[j] = float32(int8(q[j])) * d
	}
}

// DequantizeQ4_0Block decodes one 18-byte Q4_0 block into dst[:32].
func DequantizeQ4_0Block(b []byte, dst []float32) {
	d := F16ToF32(le16(b))
	q := b[2:18]
	for j := 0; j < QK/2; j++ {
		dst[j] = float32(int(q[j]&0x0F)-8) * d
		dst[j+QK/2] = float32(int(q[j]>>4)-8) * d
	}
}

// DequantizeQ4_1Block decodes one 20-byte Q4_1 block into dst[:32].
func DequantizeQ4_1Block(b []byte, dst []float32) {
	d := F16ToF32(le16(b))
	m := F16ToF32(le16(b[2:]))
	q := b[4:20]
	for j := 0; j < QK/2; j++ {
		dst[j] = float32(q[j]&0x0F)*d + m
		dst[j+QK/2] = float32(q[j]>>4)*d + m
	}
}

// Quantize converts src into type t, appending to dst and returning it.
// Supported targets: every known type (K-quants in kquant.go). len(src)
// must be a multiple of the block size.
func Quantize(t Type, src []float32, dst []byte) ([]byte, error) {
	if _, err := RowBytes(t, len(src)); err != nil {
		return dst, err
	}
	switch t {
	case F32:
		for _, v := range src {
			dst = put32(dst, math.Float32bits(v))
		}
	case F16:
		for _, v := range src {
			dst = put16(dst, F32ToF16(v))
		}
	case BF16:
		for _, v := range src {
			dst = put16(dst, F32ToBF16(v))
		}
	case Q8_0:
		for b := 0; b < len(src); b += QK {
			dst = QuantizeQ8_0Block(src[b:b+QK], dst)
		}
	case Q4_0:
		for b := 0; b < len(src); b += QK {
			dst = QuantizeQ4_0Block(src[b:b+QK], dst)
		}
	case Q4_1:
		for b := 0; b < len(src); b += QK {
			dst = QuantizeQ4_1Block(src[b:b+QK], dst)
		}
	default:
		return quantizeK(t, src, dst)
	}
	return dst, nil
}

// QuantizeQ8_0Block appends the Q8_0 encoding of x[:32] to dst, exactly as
// ggml's quantize_row_q8_0_ref.
func QuantizeQ8_0Block(x []float32, dst []byte) []byte {
	var amax float32
	for _, v := range x[:QK] {
		if a := abs32(v); a > amax {
			amax = a
		}
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	dst = put16(dst, F32ToF16(d))
	for _, v := range x[:QK] {
		dst = append(dst, byte(int8(roundf(v*id))))
	}
	return dst
}

// QuantizeQ4_0Block appends the Q4_0 encoding of x[:32] to dst, exactly as
// ggml's quantize_row_q4_0_ref.
func QuantizeQ4_0Block(x []float32, dst []byte) []byte {
	var amax, max float32
	for _, v := range x[:QK] {
		if a := abs32(v); a > amax {
			amax, max = a, v
		}
	}
	d := max / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	dst = put16(dst, F32ToF16(d))
	for j := 0; j < QK/2; j++ {
		x0 := x[j] * id
		x1 := x[QK/2+j] * id
		xi0 := min(int8(x0+8.5), 15)
		xi1 := min(int8(x1+8.5), 15)
		dst = append(dst, byte(xi0)|byte(xi1)<<4)
	}
	return dst
}

// QuantizeQ4_1Block appends the Q4_1 encoding of x[:32] to dst, exactly as
// ggml's quantize_row_q4_1_ref.
func QuantizeQ4_1Block(x []float32, dst []byte) []byte {
	lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
	for _, v := range x[:QK] {
		lo = min(lo, v)
		hi = max(hi, v)
	}
	d := (hi - lo) / 15
	var id float32
	if d != 0 {
		id = 1 / d
	}
	dst = put16(dst, F32ToF16(d))
	dst = put16(dst, F32ToF16(lo))
	for j := 0; j < QK/2; j++ {
		x0 := (x[j] - lo) * id
		x1 := (x[QK/2+j] - lo) * id
		xi0 := min(int8(x0+0.5), 15)
		xi1 := min(int8(x1+0.5), 15)
		dst = append(dst, byte(xi0)|byte(xi1)<<4)
	}
	return dst
}

// roundf rounds half away from zero, like C's roundf.
func roundf(v float32) float32 { return float32(math.Round(float64(v))) }

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func put16(dst []byte, v uint16) []byte { return append(dst, byte(v), byte(v>>8)) }

func put32(dst []byte, v uint32) []byte {
	return append(dst, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}
