package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"orchmind/engine/quant"
	"orchmind/internal/atomicfile"
)

// KV is one metadata entry to write. Value may be uint8…uint64, int8…int64,
// float32, float64, bool, string, a slice of one of those ([]string,
// []float32, []int32, []uint64…), or []any whose elements all have one of
// those types (what Parse returns for arrays, so parsed metadata can be
// written back as it was; an empty []any is written as an empty uint8
// array).
type KV struct {
	Key   string
	Value any
}

// WriteTensor is a tensor to write: Dims in GGUF order (row length first)
// and the bytes as stored in Type.
type WriteTensor struct {
	Name string
	Dims []uint64
	Type quant.Type
	Data []byte
}

// Encode builds a GGUF v3 file with alignment 32 in memory. Write streams
// the same bytes to disk without holding them all.
func Encode(kvs []KV, tensors []WriteTensor) ([]byte, error) {
	var b bytes.Buffer
	if err := EncodeTo(&b, kvs, tensors); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// EncodeTo writes a GGUF v3 file with alignment 32 to w. Every entry is
// checked before the first byte is written: duplicate keys or tensor
// names, unsupported value types and tensors whose byte count does not
// match their shape and type are refused.
func EncodeTo(w io.Writer, kvs []KV, tensors []WriteTensor) error {
	keys := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		if keys[kv.Key] {
			return fmt.Errorf("gguf: metadata key %q given twice", kv.Key)
		}
		keys[kv.Key] = true
		if _, err := valueType(kv.Value); err != nil {
			return fmt.Errorf("gguf: metadata %q: %w", kv.Key, err)
		}
	}
	names := make(map[string]bool, len(tensors))
	for _, t := range tensors {
		if names[t.Name] {
			return fmt.Errorf("gguf: tensor %q given twice", t.Name)
		}
		names[t.Name] = true
		if len(t.Dims) == 0 || len(t.Dims) > maxDims {
			return fmt.Errorf("gguf: tensor %q: %d dimensions (1 to 4 allowed)", t.Name, len(t.Dims))
		}
		n := uint64(1)
		for _, d := range t.Dims {
			if d == 0 || d > 1<<32 || n > math.MaxUint64/d {
				return fmt.Errorf("gguf: tensor %q has invalid dimensions %v", t.Name, t.Dims)
			}
			n *= d
		}
		rb, err := quant.RowBytes(t.Type, int(t.Dims[0]))
		if err != nil {
			return fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		if want := uint64(rb) * (n / t.Dims[0]); uint64(len(t.Data)) != want {
			return fmt.Errorf("gguf: tensor %q: %d bytes for %v %s, want %d", t.Name, len(t.Data), t.Dims, t.Type, want)
		}
	}

	cw := &countingWriter{w: w}
	e := &encoder{w: cw}
	e.raw([]byte(magicNumber))
	e.u32(3)
	e.u64(uint64(len(tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		e.value(kv.Value, true)
	}
	var off uint64
	for _, t := range tensors {
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.Type))
		e.u64(off)
		off += (uint64(len(t.Data)) + DefaultAlignment - 1) / DefaultAlignment * DefaultAlignment
	}
	var zeros [DefaultAlignment]byte
	pad := func() { e.raw(zeros[:(DefaultAlignment-cw.n%DefaultAlignment)%DefaultAlignment]) }
	pad()
	for _, t := range tensors {
		e.raw(t.Data)
		pad()
	}
	if e.err != nil {
		return fmt.Errorf("gguf: write: %w", e.err)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

// encoder writes little-endian values and remembers the first error.
type encoder struct {
	w   io.Writer
	err error
	buf [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err == nil && len(p) > 0 {
		_, e.err = e.w.Write(p)
	}
}
func (e *encoder) u8(v uint8) { e.buf[0] = v; e.raw(e.buf[:1]) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.raw(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.raw(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.raw(e.buf[:8])
}
func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
	}
}

// valueType returns the GGUF type code of a metadata value, checking
// arrays element by element.
func valueType(v any) (uint32, error) {
	switch x := v.(type) {
	case uint8:
		return typeUint8, nil
	case int8:
		return typeInt8, nil
	case uint16:
		return typeUint16, nil
	case int16:
		return typeInt16, nil
	case uint32:
		return typeUint32, nil
	case int32:
		return typeInt32, nil
	case float32:
		return typeFloat32, nil
	case bool:
		return typeBool, nil
	case string:
		return typeString, nil
	case uint64:
		return typeUint64, nil
	case int64:
		return typeInt64, nil
	case float64:
		return typeFloat64, nil
	case []any:
		if len(x) == 0 {
			return typeArray, nil
		}
		et, err := valueType(x[0])
		if err != nil {
			return 0, err
		}
		for i, el := range x[1:] {
			t, err := valueType(el)
			if err != nil {
				return 0, err
			}
			if t != et {
				return 0, fmt.Errorf("array element %d is %T, element 0 %T: GGUF arrays hold one type", i+1, el, x[0])
			}
			if t == typeArray {
				if _, err := elemType(el); err != nil {
					return 0, err
				}
			}
		}
		return typeArray, nil
	}
	if _, err := elemType(v); err != nil {
		return 0, err
	}
	return typeArray, nil
}

// elemType returns the element type code of a typed slice ([]string…).
func elemType(v any) (uint32, error) {
	switch x := v.(type) {
	case []uint8:
		return typeUint8, nil
	case []int8:
		return typeInt8, nil
	case []uint16:
		return typeUint16, nil
	case []int16:
		return typeInt16, nil
	case []uint32:
		return typeUint32, nil
	case []int32:
		return typeInt32, nil
	case []float32:
		return typeFloat32, nil
	case []bool:
		return typeBool, nil
	case []string:
		return typeString, nil
	case []uint64:
		return typeUint64, nil
	case []int64:
		return typeInt64, nil
	case []float64:
		return typeFloat64, nil
	case []any:
		if len(x) == 0 {
			return typeUint8, nil
		}
		return valueType(x[0])
	}
	return 0, fmt.Errorf("unsupported metadata type %T", v)
}

// value writes v (already checked by valueType), with its type code first
// when withType is set.
func (e *encoder) value(v any, withType bool) {
	if withType {
		t, _ := valueType(v)
		e.u32(t)
	}
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		if x {
			e.u8(1)
		} else {
			e.u8(0)
		}
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case []any:
		array(e, x)
	case []uint8:
		array(e, x)
	case []int8:
		array(e, x)
	case []uint16:
		array(e, x)
	case []int16:
		array(e, x)
	case []uint32:
		array(e, x)
	case []int32:
		array(e, x)
	case []float32:
		array(e, x)
	case []bool:
		array(e, x)
	case []string:
		array(e, x)
	case []uint64:
		array(e, x)
	case []int64:
		array(e, x)
	case []float64:
		array(e, x)
	}
}

func array[T any](e *encoder, xs []T) {
	et, _ := elemType(xs)
	e.u32(et)
	e.u64(uint64(len(xs)))
	for _, x := range xs {
		e.value(x, false)
	}
}

// Write encodes a GGUF file and writes it atomically (temp file beside it,
// fsync, rename, fsync of the folder): a crash never leaves a half-written
// model or adapter under path. The file is streamed, not built in memory.
func Write(path string, kvs []KV, tensors []WriteTensor) error {
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return EncodeTo(w, kvs, tensors) }); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}
