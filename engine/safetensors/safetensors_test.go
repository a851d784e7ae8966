package safetensors

import (
	"encoding/binary"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"orchmind/engine/quant"
)

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	a := F32Tensor("z.weight", []int64{2, 3}, []float32{1, -2, 3.5, 0, 1e-7, -0})
	h := WriteTensor{Name: "a.half", DType: "F16", Shape: []int64{2}, Data: []byte{0x00, 0x3c, 0x00, 0xc0}} // 1, -2
	if err := Write(path, []WriteTensor{a, h}, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Names(); !reflect.DeepEqual(got, []string{"a.half", "z.weight"}) {
		t.Fatalf("names %v", got)
	}
	v, shape, err := f.Float32("z.weight")
	if err != nil || !reflect.DeepEqual(v, []float32{1, -2, 3.5, 0, 1e-7, 0}) || !reflect.DeepEqual(shape, []int64{2, 3}) {
		t.Fatalf("z.weight = %v %v %v", v, shape, err)
	}
	if v, _, _ := f.Float32("a.half"); !reflect.DeepEqual(v, []float32{1, -2}) {
		t.Fatalf("a.half = %v", v)
	}
	if f.Metadata()["format"] != "pt" {
		t.Fatalf("metadata %v", f.Metadata())
	}
	// The header is padded to 8 bytes and tensors are stored sorted by name.
	b, _ := os.ReadFile(path)
	if n := binary.LittleEndian.Uint64(b); n%8 != 0 {
		t.Fatalf("header length %d not 8-aligned", n)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// TestKnownBytes parses a file built by hand, byte for byte as the
// reference implementation writes it.
func TestKnownBytes(t *testing.T) {
	hdr := `{"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	b = append(b, 0x80, 0x3f, 0x49, 0x40) // bf16 1.0, 3.140625
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := f.Float32("x")
	if err != nil || v[0] != 1 || v[1] != quant.BF16ToF32(0x4049) {
		t.Fatalf("x = %v, %v", v, err)
	}
}

func TestBadInput(t *testing.T) {
	mk := func(hdr string, data int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
		return append(append(b, hdr...), make([]byte, data)...)
	}
	cases := map[string]struct {
		b    []byte
		want string
	}{
		"short":      {[]byte{1, 2}, "truncated"},
		"huge hdr":   {binary.LittleEndian.AppendUint64(nil, 1<<40), "limit"},
		"hdr > file": {binary.LittleEndian.AppendUint64(nil, 100), "truncated"},
		"not json":   {mk("{nope", 0), "JSON"},
		"dtype":      {mk(`{"x":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}`, 1), "unknown dtype"},
		"past end":   {mk(`{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8), "outside"},
		"size":       {mk(`{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), "needs 12 bytes"},
		"negative":   {mk(`{"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, 8), "invalid"},
		"overlap":    {mk(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12), "overlap"},
		"offsets":    {mk(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}}`, 8), "2 numbers"},
		"extra key":  {mk(`{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"evil":1}}`, 8), "bad header entry"},
		"metadata":   {mk(`{"__metadata__":{"a":1}}`, 0), "__metadata__"},
	}
	dir := t.TempDir()
	for name, c := range cases {
		if _, err := Parse(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, c.want)
		}
		// OpenHeader makes the same checks without reading the data.
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(p, c.b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenHeader(p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: OpenHeader error %v, want it to mention %q", name, err, c.want)
		}
	}
	path := filepath.Join(t.TempDir(), "bad.safetensors")
	os.WriteFile(path, []byte{1}, 0o644)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("error does not name the file: %v", err)
	}
	if _, err := Encode([]WriteTensor{{Name: "x", DType: "F32", Shape: []int64{3}, Data: make([]byte, 8)}}, nil); err == nil {
		t.Error("Encode accepted a size mismatch")
	}
	if _, err := Encode([]WriteTensor{F32Tensor("x", []int64{1}, []float32{1}), F32Tensor("x", []int64{1}, []float32{1})}, nil); err == nil {
		t.Error("Encode accepted a duplicate name")
	}
}

func FuzzParse(f *testing.F) {
	good, _ := Encode([]WriteTensor{F32Tensor("a", []int64{2}, []float32{1, 2}), F32Tensor("b", []int64{1, 1}, []float32{3})}, map[string]string{"format": "pt"})
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(good[:12])
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := Parse(b)
		if err != nil {
			return
		}
		for _, n := range sf.Names() {
			if _, err := sf.Raw(n); err != nil {
				t.Fatal(err)
			}
			sf.Float32(n)
		}
	})
}

// TestOpenHeader: the header alone gives the same names, shapes and
// metadata as the whole file; the data cannot be read from it.
func TestOpenHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := Write(path, []WriteTensor{F32Tensor("a", []int64{2, 3}, make([]float32, 6)), F32Tensor("b", []int64{1}, []float32{7})}, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	full, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := OpenHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(full.Names(), hdr.Names()) || !maps.Equal(full.Metadata(), hdr.Metadata()) {
		t.Fatalf("header %v %v, file %v %v", hdr.Names(), hdr.Metadata(), full.Names(), full.Metadata())
	}
	for _, n := range full.Names() {
		fi, _ := full.Info(n)
		hi, _ := hdr.Info(n)
		if fi.DType != hi.DType || !slices.Equal(fi.Shape, hi.Shape) {
			t.Fatalf("%s: header %+v, file %+v", n, hi, fi)
		}
		if _, err := hdr.Raw(n); err == nil {
			t.Fatalf("%s: Raw worked on a header-only file", n)
		}
		if _, _, err := hdr.Float32(n); err == nil {
			t.Fatalf("%s: Float32 worked on a header-only file", n)
		}
	}
	// A file cut in its data section is refused from the header too.
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenHeader(path); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("truncated data: %v", err)
	}
}
