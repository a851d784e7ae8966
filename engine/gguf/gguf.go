package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"orchmind/engine/quant"
)

// Value types of metadata.
const (
	typeUint8   = 0
	typeInt8    = 1
	typeUint16  = 2
	typeInt16   = 3
	typeUint32  = 4
	typeInt32   = 5
	typeFloat32 = 6
	typeBool    = 7
	typeString  = 8
	typeArray   = 9
	typeUint64  = 10
	typeInt64   = 11
	typeFloat64 = 12
)

// DefaultAlignment is used when general.alignment is absent.
const DefaultAlignment = 32

const (
	maxString   = 1 << 24 // one metadata string
	maxArray    = 1 << 26 // elements of one array (vocabularies are ~256k)
	maxKV       = 1 << 20
	maxTensors  = 1 << 20
	maxDims     = 4
	maxNameLen  = 1 << 16
	magicNumber = "GGUF"
)

// Tensor describes one tensor of a file. Dims are in GGUF order: Dims[0]
// is the fastest-varying (the row length), so a PyTorch [out, in] matrix has
// Dims = [in, out].
type Tensor struct {
	Name   string
	Dims   []uint64
	Type   quant.Type
	Offset uint64 // relative to the data section
	Size   uint64 // bytes
	Data   []byte // the stored bytes (set by Parse)
}

// Elements is the number of values.
func (t *Tensor) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// File is a parsed GGUF file.
//
// A File from Open maps the file into memory (on Linux, macOS and the BSDs;
// elsewhere it is read): tensor Data slices, and anything built on them
// without copying, stay valid until Close. Not calling Close keeps the
// mapping for the life of the process, which is what a loaded base model
// needs. Metadata values are copies and survive Close.
type File struct {
	Path     string
	Version  uint32
	Metadata map[string]any // uint8…float64, bool, string, []any
	Keys     []string       // metadata keys in file order
	Tensors  []*Tensor      // in file order
	byName   map[string]*Tensor
	// Alignment is general.alignment (DefaultAlignment when absent).
	Alignment uint64
	// DataOffset is where the tensor data section starts in the file.
	DataOffset uint64
	mapping    *mapping
}

type mapping struct {
	once  sync.Once
	unmap func() error
	err   error
}

// Close releases the file's memory mapping. After Close, tensor Data must
// not be used. Close is safe to call more than once; a File from Parse has
// nothing to release.
func (f *File) Close() error {
	if f.mapping == nil || f.mapping.unmap == nil {
		return nil
	}
	f.mapping.once.Do(func() { f.mapping.err = f.mapping.unmap() })
	if f.mapping.err != nil {
		return fmt.Errorf("gguf %s: close: %w", f.Path, f.mapping.err)
	}
	return nil
}

// Tensor returns the tensor called name.
func (f *File) Tensor(name string) (*Tensor, bool) { t, ok := f.byName[name]; return t, ok }

// String returns a string metadata value.
func (f *File) String(key string) (string, bool) { s, ok := f.Metadata[key].(string); return s, ok }

// Uint returns an integer metadata value of any integer type.
func (f *File) Uint(key string) (uint64, bool) {
	switch v := f.Metadata[key].(type) {
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	case int8:
		return uint64(v), v >= 0
	case int16:
		return uint64(v), v >= 0
	case int32:
		return uint64(v), v >= 0
	case int64:
		return uint64(v), v >= 0
	}
	return 0, false
}

// Float returns a float metadata value (float32 or float64).
func (f *File) Float(key string) (float64, bool) {
	switch v := f.Metadata[key].(type) {
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// Open maps (or reads) and parses the GGUF file at path. See File for how
// long tensor data stays valid.
func Open(path string) (*File, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: open %s: %w", path, err)
	}
	f, err := Parse(data)
	if err != nil {
		if unmap != nil {
			_ = unmap()
		}
		return nil, fmt.Errorf("gguf %s: %w", path, err)
	}
	f.Path = path
	f.mapping = &mapping{unmap: unmap}
	return f, nil
}

// IsGGUF reports whether data starts with the GGUF magic.
func IsGGUF(head []byte) bool { return len(head) >= 4 && string(head[:4]) == magicNumber }

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) need(n uint64) bool {
	if r.err != nil {
		return false
	}
	if n > uint64(len(r.b)-r.off) {
		r.err = fmt.Errorf("truncated at byte %d (needs %d more bytes, the file has %d): the download may be incomplete", r.off, n, len(r.b)-r.off)
		return false
	}
	return true
}

func (r *reader) u8() uint8 {
	if !r.need(1) {
		return 0
	}
	r.off++
	return r.b[r.off-1]
}
func (r *reader) u16() uint16 {
	if !r.need(2) {
		return 0
	}
	r.off += 2
	return binary.LittleEndian.Uint16(r.b[r.off-2:])
}
func (r *reader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	r.off += 4
	return binary.LittleEndian.Uint32(r.b[r.off-4:])
}
func (r *reader) u64() uint64 {
	if !r.need(8) {
		return 0
	}
	r.off += 8
	return binary.LittleEndian.Uint64(r.b[r.off-8:])
}

func (r *reader) str(limit uint64) string {
	n := r.u64()
	if r.err != nil {
		return ""
	}
	if n > limit {
		r.err = fmt.Errorf("string of %d bytes at byte %d is absurd (limit %d): the file is corrupt", n, r.off-8, limit)
		return ""
	}
	if !r.need(n) {
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}

func (r *reader) value(t uint32, depth int) any {
	switch t {
	case typeUint8:
		return r.u8()
	case typeInt8:
		return int8(r.u8())
	case typeUint16:
		return r.u16()
	case typeInt16:
		return int16(r.u16())
	case typeUint32:
		return r.u32()
	case typeInt32:
		return int32(r.u32())
	case typeFloat32:
		return math.Float32frombits(r.u32())
	case typeBool:
		v := r.u8()
		if v > 1 && r.err == nil {
			r.err = fmt.Errorf("bool value %d at byte %d (must be 0 or 1): the file is corrupt", v, r.off-1)
		}
		return v == 1
	case typeString:
		return r.str(maxString)
	case typeUint64:
		return r.u64()
	case typeInt64:
		return int64(r.u64())
	case typeFloat64:
		return math.Float64frombits(r.u64())
	case typeArray:
		if depth > 2 {
			r.err = fmt.Errorf("arrays nested too deeply at byte %d", r.off)
			return nil
		}
		et := r.u32()
		n := r.u64()
		if r.err != nil {
			return nil
		}
		if n > maxArray || n > uint64(len(r.b)-r.off) {
			r.err = fmt.Errorf("array of %d elements at byte %d is larger than the file: it is corrupt", n, r.off-8)
			return nil
		}
		out := make([]any, 0, n)
		for i := uint64(0); i < n && r.err == nil; i++ {
			out = append(out, r.value(et, depth+1))
		}
		return out
	}
	r.err = fmt.Errorf("unknown metadata value type %d at byte %d: the file is corrupt or from a newer GGUF version", t, r.off-4)
	return nil
}

// Parse parses a whole GGUF file held in memory. Tensor data slices alias data.
func Parse(data []byte) (*File, error) {
	r := &reader{b: data}
	if len(data) < 4 || string(data[:4]) != magicNumber {
		return nil, errors.New("not a GGUF file (wrong magic): expected a .gguf model or adapter")
	}
	r.off = 4
	f := &File{Metadata: map[string]any{}, byName: map[string]*Tensor{}, Alignment: DefaultAlignment}
	f.Version = r.u32()
	if r.err == nil && f.Version&0xFFFF == 0 && f.Version>>16 != 0 {
		return nil, fmt.Errorf("this is a big-endian GGUF file (version %d, byte-swapped), which orchmind cannot read: use the little-endian file", f.Version>>24)
	}
	if r.err == nil && f.Version == 1 {
		return nil, errors.New("GGUF version 1 (2023) is not supported: convert the model again with a current llama.cpp")
	}
	if r.err == nil && (f.Version < 2 || f.Version > 3) {
		return nil, fmt.Errorf("GGUF version %d is not supported (orchmind reads versions 2 and 3)", f.Version)
	}
	nt, nkv := r.u64(), r.u64()
	if r.err != nil {
		return nil, r.err
	}
	if nt > maxTensors || nkv > maxKV {
		return nil, fmt.Errorf("header claims %d tensors and %d metadata entries: the file is corrupt", nt, nkv)
	}
	for i := uint64(0); i < nkv; i++ {
		k := r.str(maxNameLen)
		t := r.u32()
		v := r.value(t, 0)
		if r.err != nil {
			return nil, fmt.Errorf("metadata entry %d (%q): %w", i, k, r.err)
		}
		if _, dup := f.Metadata[k]; dup {
			return nil, fmt.Errorf("metadata key %q appears twice: the file is corrupt", k)
		}
		f.Metadata[k] = v
		f.Keys = append(f.Keys, k)
	}
	if a, ok := f.Uint("general.alignment"); ok {
		if a == 0 || a > 1<<16 || a&(a-1) != 0 {
			return nil, fmt.Errorf("general.alignment %d is not a power of two up to 65536", a)
		}
		f.Alignment = a
	}
	for i := uint64(0); i < nt; i++ {
		t := &Tensor{Name: r.str(maxNameLen)}
		nd := r.u32()
		if r.err == nil && (nd == 0 || nd > maxDims) {
			return nil, fmt.Errorf("tensor %q has %d dimensions (1 to 4 allowed)", t.Name, nd)
		}
		for d := uint32(0); d < nd && r.err == nil; d++ {
			t.Dims = append(t.Dims, r.u64())
		}
		t.Type = quant.Type(r.u32())
		t.Offset = r.u64()
		if r.err != nil {
			return nil, fmt.Errorf("tensor info %d: %w", i, r.err)
		}
		if _, dup := f.byName[t.Name]; dup {
			return nil, fmt.Errorf("tensor %q appears twice", t.Name)
		}
		if !t.Type.Known() {
			return nil, fmt.Errorf("tensor %q has ggml type %d, which orchmind does not know (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K)", t.Name, uint32(t.Type))
		}
		n := uint64(1)
		for _, d := range t.Dims {
			if d == 0 || d > 1<<32 || n > math.MaxUint64/d {
				return nil, fmt.Errorf("tensor %q has absurd dimensions %v", t.Name, t.Dims)
			}
			n *= d
		}
		if n > 1<<40 {
			return nil, fmt.Errorf("tensor %q has absurd dimensions %v", t.Name, t.Dims)
		}
		rb, err := quant.RowBytes(t.Type, int(t.Dims[0]))
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		t.Size = uint64(rb) * (n / t.Dims[0])
		f.Tensors = append(f.Tensors, t)
		f.byName[t.Name] = t
	}
	start := (uint64(r.off) + f.Alignment - 1) / f.Alignment * f.Alignment
	if start > uint64(len(data)) {
		return nil, fmt.Errorf("truncated before the tensor data: the download may be incomplete")
	}
	f.DataOffset = start
	body := data[start:]
	spans := make([]*Tensor, len(f.Tensors))
	copy(spans, f.Tensors)
	sort.Slice(spans, func(i, j int) bool { return spans[i].Offset < spans[j].Offset })
	var end uint64
	for _, t := range spans {
		if t.Offset%f.Alignment != 0 {
			return nil, fmt.Errorf("tensor %q at offset %d is not aligned to %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset < end {
			return nil, fmt.Errorf("tensor %q overlaps the tensor before it", t.Name)
		}
		if t.Offset > uint64(len(body)) || t.Size > uint64(len(body))-t.Offset {
			return nil, fmt.Errorf("tensor %q (%d bytes at offset %d) runs past the end of the file: the download may be incomplete", t.Name, t.Size, t.Offset)
		}
		t.Data = body[t.Offset : t.Offset+t.Size]
		end = t.Offset + t.Size
	}
	return f, nil
}
