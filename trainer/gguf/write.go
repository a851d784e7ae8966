package gguf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"orchmind/trainer/quant"
)

// KV is one metadata entry to write. Value may be uint8…uint64, int8…int64,
// float32, float64, bool, string, or a slice of one of those ([]string,
// []float32, []int32, []uint32, []any…).
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

// Encode builds a GGUF v3 file with alignment 32.
func Encode(kvs []KV, tensors []WriteTensor) ([]byte, error) {
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { le(uint64(len(s))); b.WriteString(s) }
	b.WriteString(magicNumber)
	le(uint32(3))
	le(uint64(len(tensors)))
	le(uint64(len(kvs)))
	for _, kv := range kvs {
		str(kv.Key)
		if err := writeValue(&b, kv.Value, true); err != nil {
			return nil, fmt.Errorf("gguf: metadata %q: %w", kv.Key, err)
		}
	}
	var off uint64
	for _, t := range tensors {
		n := uint64(1)
		for _, d := range t.Dims {
			n *= d
		}
		if len(t.Dims) == 0 || len(t.Dims) > maxDims {
			return nil, fmt.Errorf("gguf: tensor %q: %d dimensions", t.Name, len(t.Dims))
		}
		rb, err := quant.RowBytes(t.Type, int(t.Dims[0]))
		if err != nil {
			return nil, fmt.Errorf("gguf: tensor %q: %w", t.Name, err)
		}
		if want := uint64(rb) * (n / t.Dims[0]); uint64(len(t.Data)) != want {
			return nil, fmt.Errorf("gguf: tensor %q: %d bytes for %v %s, want %d", t.Name, len(t.Data), t.Dims, t.Type, want)
		}
		str(t.Name)
		le(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			le(d)
		}
		le(uint32(t.Type))
		le(off)
		off += (uint64(len(t.Data)) + DefaultAlignment - 1) / DefaultAlignment * DefaultAlignment
	}
	pad := func() {
		for b.Len()%DefaultAlignment != 0 {
			b.WriteByte(0)
		}
	}
	pad()
	for _, t := range tensors {
		b.Write(t.Data)
		pad()
	}
	return b.Bytes(), nil
}

func writeValue(b *bytes.Buffer, v any, withType bool) error {
	le := func(x any) { _ = binary.Write(b, binary.LittleEndian, x) }
	typ := func(t uint32) {
		if withType {
			le(t)
		}
	}
	switch x := v.(type) {
	case uint8:
		typ(typeUint8)
		le(x)
	case int8:
		typ(typeInt8)
		le(x)
	case uint16:
		typ(typeUint16)
		le(x)
	case int16:
		typ(typeInt16)
		le(x)
	case uint32:
		typ(typeUint32)
		le(x)
	case int32:
		typ(typeInt32)
		le(x)
	case float32:
		typ(typeFloat32)
		le(math.Float32bits(x))
	case bool:
		typ(typeBool)
		if x {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
	case string:
		typ(typeString)
		le(uint64(len(x)))
		b.WriteString(x)
	case uint64:
		typ(typeUint64)
		le(x)
	case int64:
		typ(typeInt64)
		le(x)
	case float64:
		typ(typeFloat64)
		le(math.Float64bits(x))
	case []string:
		return writeArray(b, typeString, len(x), func(i int) any { return x[i] }, withType)
	case []float32:
		return writeArray(b, typeFloat32, len(x), func(i int) any { return x[i] }, withType)
	case []int32:
		return writeArray(b, typeInt32, len(x), func(i int) any { return x[i] }, withType)
	case []uint32:
		return writeArray(b, typeUint32, len(x), func(i int) any { return x[i] }, withType)
	default:
		return fmt.Errorf("unsupported metadata type %T", v)
	}
	return nil
}

func writeArray(b *bytes.Buffer, et uint32, n int, at func(int) any, withType bool) error {
	le := func(x any) { _ = binary.Write(b, binary.LittleEndian, x) }
	if withType {
		le(uint32(typeArray))
	}
	le(et)
	le(uint64(n))
	for i := range n {
		if err := writeValue(b, at(i), false); err != nil {
			return err
		}
	}
	return nil
}

// Write encodes a GGUF file and writes it atomically (temp file, fsync,
// rename): a crash never leaves a half-written model or adapter.
func Write(path string, kvs []KV, tensors []WriteTensor) error {
	data, err := Encode(kvs, tensors)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("gguf: write %s: %w", path, err)
	}
	name := tmp.Name()
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(name, path)
	}
	if werr != nil {
		os.Remove(name)
		return fmt.Errorf("gguf: write %s: %w (is the disk full?)", path, werr)
	}
	return nil
}
