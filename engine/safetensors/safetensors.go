package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"orchmind/engine/quant"
	"orchmind/internal/atomicfile"
)

// MaxHeaderBytes bounds the JSON header (the reference implementation uses 100 MB).
const MaxHeaderBytes = 100 << 20

// dtypeSizes lists the dtypes this package knows, with their element size.
var dtypeSizes = map[string]int{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2,
	"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}

// TensorInfo describes one stored tensor.
type TensorInfo struct {
	Name  string
	DType string
	Shape []int64
	begin int
	end   int
}

// File is a parsed safetensors file held in memory.
type File struct {
	data []byte // the tensor data section
	// headerOnly: opened with OpenHeader, data was not read.
	headerOnly bool
	infos      map[string]TensorInfo
	meta       map[string]string
	Path       string // the file it came from, "" when parsed from bytes
}

type headerEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// Open reads and parses the safetensors file at path.
func Open(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

// OpenHeader reads and checks only the header of the safetensors file at
// path — every check Open makes, against the file's size — without reading
// the tensor data. Info, Names and Metadata work on the result; Raw and
// Float32 return an error.
func OpenHeader(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	size := st.Size()
	var lenBuf [8]byte
	if size >= 8 {
		if _, err := io.ReadFull(fh, lenBuf[:]); err != nil {
			return nil, fmt.Errorf("safetensors: %w", err)
		}
	}
	hlen, err := headerLen(lenBuf[:min(size, 8)], size)
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(fh, hdr); err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := parseHeader(hdr, size-8-int64(hlen))
	if err != nil {
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	f.Path, f.headerOnly = path, true
	return f, nil
}

// headerLen checks the 8-byte header length at the start of a file of
// size bytes (start holds its first min(size, 8) bytes).
func headerLen(start []byte, size int64) (uint64, error) {
	if size < 8 {
		return 0, fmt.Errorf("truncated: %d bytes, a safetensors file starts with an 8-byte header length", size)
	}
	hlen := binary.LittleEndian.Uint64(start)
	if hlen > MaxHeaderBytes {
		return 0, fmt.Errorf("header length %d exceeds the %d-byte limit: not a safetensors file", hlen, MaxHeaderBytes)
	}
	if hlen > uint64(size-8) {
		return 0, fmt.Errorf("truncated: header claims %d bytes but the file has %d after the length", hlen, size-8)
	}
	return hlen, nil
}

// Parse parses a whole safetensors file held in data (not copied).
func Parse(data []byte) (*File, error) {
	hlen, err := headerLen(data[:min(len(data), 8)], int64(len(data)))
	if err != nil {
		return nil, err
	}
	f, err := parseHeader(data[8:8+hlen], int64(len(data))-8-int64(hlen))
	if err != nil {
		return nil, err
	}
	f.data = data[8+hlen:]
	return f, nil
}

// parseHeader parses and checks the JSON header hdr of a file whose data
// section holds dataLen bytes.
func parseHeader(hdr []byte, dataLen int64) (*File, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	f := &File{infos: make(map[string]TensorInfo, len(raw)), meta: map[string]string{}}
	type span struct {
		b, e int
		name string
	}
	var spans []span
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.meta); err != nil {
				return nil, fmt.Errorf("__metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var e headerEntry
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("tensor %q: bad header entry: %w", name, err)
		}
		size, ok := dtypeSizes[e.DType]
		if !ok {
			return nil, fmt.Errorf("tensor %q: unknown dtype %q", name, e.DType)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("tensor %q: data_offsets must hold 2 numbers, has %d", name, len(e.DataOffsets))
		}
		n := int64(1)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && n > math.MaxInt64/8/d) {
				return nil, fmt.Errorf("tensor %q: shape %v is invalid", name, e.Shape)
			}
			n *= d
		}
		b, en := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || en < b || en > dataLen {
			return nil, fmt.Errorf("tensor %q: data_offsets [%d, %d) outside the %d-byte data section (file truncated?)", name, b, en, dataLen)
		}
		if en-b != n*int64(size) {
			return nil, fmt.Errorf("tensor %q: %s shape %v needs %d bytes, data_offsets give %d", name, e.DType, e.Shape, n*int64(size), en-b)
		}
		f.infos[name] = TensorInfo{Name: name, DType: e.DType, Shape: e.Shape, begin: int(b), end: int(en)}
		spans = append(spans, span{int(b), int(en), name})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].b < spans[j].b })
	for i := 1; i < len(spans); i++ {
		if spans[i].b < spans[i-1].e {
			return nil, fmt.Errorf("tensors %q and %q overlap", spans[i-1].name, spans[i].name)
		}
	}
	return f, nil
}

// Names returns the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.infos))
	for n := range f.infos {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Info returns the description of a tensor.
func (f *File) Info(name string) (TensorInfo, bool) { i, ok := f.infos[name]; return i, ok }

// Metadata returns the "__metadata__" map (never nil).
func (f *File) Metadata() map[string]string { return f.meta }

// Raw returns the stored bytes of a tensor (not copied).
func (f *File) Raw(name string) ([]byte, error) {
	i, ok := f.infos[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %q", name)
	}
	if f.headerOnly {
		return nil, fmt.Errorf("tensor %q: only the header of %s was read", name, f.Path)
	}
	return f.data[i.begin:i.end], nil
}

// Float32 returns a F32, F16 or BF16 tensor converted to float32, with its shape.
func (f *File) Float32(name string) ([]float32, []int64, error) {
	i, ok := f.infos[name]
	if !ok {
		return nil, nil, fmt.Errorf("no tensor %q", name)
	}
	var t quant.Type
	switch i.DType {
	case "F32":
		t = quant.F32
	case "F16":
		t = quant.F16
	case "BF16":
		t = quant.BF16
	default:
		return nil, nil, fmt.Errorf("tensor %q has dtype %s; only F32, F16 and BF16 convert to float32", name, i.DType)
	}
	if f.headerOnly {
		return nil, nil, fmt.Errorf("tensor %q: only the header of %s was read", name, f.Path)
	}
	out := make([]float32, (i.end-i.begin)/dtypeSizes[i.DType])
	if err := quant.Dequantize(t, f.data[i.begin:i.end], out); err != nil {
		return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return out, i.Shape, nil
}

// WriteTensor is one tensor to write.
type WriteTensor struct {
	Name  string
	DType string
	Shape []int64
	Data  []byte
}

// F32Tensor makes a little-endian F32 WriteTensor from values.
func F32Tensor(name string, shape []int64, values []float32) WriteTensor {
	b := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return WriteTensor{Name: name, DType: "F32", Shape: shape, Data: b}
}

// Encode returns the bytes of a safetensors file holding tensors (sorted by
// name, as Hugging Face writes them) and metadata.
func Encode(tensors []WriteTensor, metadata map[string]string) ([]byte, error) {
	ts := append([]WriteTensor(nil), tensors...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	hdr := map[string]any{}
	if len(metadata) > 0 {
		hdr["__metadata__"] = metadata
	}
	var off int64
	for i, t := range ts {
		if t.Name == "" || t.Name == "__metadata__" {
			return nil, fmt.Errorf("invalid tensor name %q", t.Name)
		}
		if i > 0 && ts[i-1].Name == t.Name {
			return nil, fmt.Errorf("tensor %q appears twice", t.Name)
		}
		size, ok := dtypeSizes[t.DType]
		if !ok {
			return nil, fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		n := int64(1)
		for _, d := range t.Shape {
			n *= d
		}
		if n*int64(size) != int64(len(t.Data)) {
			return nil, fmt.Errorf("tensor %q: %s shape %v needs %d bytes, have %d", t.Name, t.DType, t.Shape, n*int64(size), len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		hdr[t.Name] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: []int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		return nil, err
	}
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	out := make([]byte, 8, 8+len(h)+int(off))
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, t := range ts {
		out = append(out, t.Data...)
	}
	return out, nil
}

// Write writes tensors and metadata to path atomically.
func Write(path string, tensors []WriteTensor, metadata map[string]string) error {
	b, err := Encode(tensors, metadata)
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, b, 0o644)
}
