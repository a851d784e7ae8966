package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"orchmind/engine/quant"
)

func sample(t testing.TB) []byte {
	t.Helper()
	q, err := quant.Quantize(quant.Q8_0, make([]float32, 64), nil)
	if err != nil {
		t.Fatal(err)
	}
	f32 := make([]byte, 4*3*5)
	for i := range 15 {
		binary.LittleEndian.PutUint32(f32[4*i:], uint32(i))
	}
	b, err := Encode([]KV{
		{"general.architecture", "llama"}, {"llama.block_count", uint32(2)}, {"llama.rope.freq_base", float32(10000)},
		{"tokenizer.ggml.tokens", []string{"<unk>", "a", "b"}}, {"tokenizer.ggml.scores", []float32{0, -1, -2}},
		{"flag", true}, {"big", uint64(1 << 40)}, {"neg", int64(-3)}, {"pi", 3.25},
	}, []WriteTensor{{"w", []uint64{5, 3}, quant.F32, f32}, {"q", []uint64{32, 2}, quant.Q8_0, q}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	f, err := Parse(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := f.String("general.architecture"); s != "llama" {
		t.Errorf("architecture %q", s)
	}
	if n, _ := f.Uint("llama.block_count"); n != 2 {
		t.Errorf("block_count %d", n)
	}
	if v, _ := f.Float("llama.rope.freq_base"); v != 10000 {
		t.Errorf("freq_base %g", v)
	}
	if toks := f.Metadata["tokenizer.ggml.tokens"].([]any); len(toks) != 3 || toks[2] != "b" {
		t.Errorf("tokens %v", toks)
	}
	if f.Metadata["flag"] != true || f.Metadata["big"] != uint64(1<<40) || f.Metadata["neg"] != int64(-3) || f.Metadata["pi"] != 3.25 {
		t.Errorf("metadata %v", f.Metadata)
	}
	w, ok := f.Tensor("w")
	if !ok || w.Elements() != 15 || binary.LittleEndian.Uint32(w.Data[4*14:]) != 14 {
		t.Fatalf("tensor w: %+v", w)
	}
	q, _ := f.Tensor("q")
	if q.Offset%32 != 0 || len(q.Data) != 2*34 {
		t.Fatalf("tensor q at %d, %d bytes", q.Offset, len(q.Data))
	}
	if f.DataOffset%32 != 0 || f.DataOffset == 0 {
		t.Fatalf("data offset %d", f.DataOffset)
	}
}

// TestReencodeIsIdentical writes a parsed file back from its parsed
// metadata (including []any arrays) and tensors: the bytes must not change.
func TestReencodeIsIdentical(t *testing.T) {
	orig := sample(t)
	f, err := Parse(orig)
	if err != nil {
		t.Fatal(err)
	}
	var kvs []KV
	for _, k := range f.Keys {
		kvs = append(kvs, KV{k, f.Metadata[k]})
	}
	var ts []WriteTensor
	for _, tt := range f.Tensors {
		ts = append(ts, WriteTensor{tt.Name, tt.Dims, tt.Type, tt.Data})
	}
	again, err := Encode(kvs, ts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, orig) {
		t.Fatalf("re-encoded file differs (%d vs %d bytes)", len(again), len(orig))
	}
}

// TestAllValueTypes round-trips every GGUF metadata type, typed slices,
// []any and an array of arrays.
func TestAllValueTypes(t *testing.T) {
	in := []KV{
		{"u8", uint8(200)}, {"i8", int8(-100)}, {"u16", uint16(60000)}, {"i16", int16(-30000)},
		{"u32", uint32(4e9)}, {"i32", int32(-2e9)}, {"f32", float32(1.5)}, {"b", false},
		{"s", "héllo"}, {"u64", uint64(math.MaxUint64)}, {"i64", int64(math.MinInt64)}, {"f64", math.Pi},
		{"a_u8", []uint8{1, 2}}, {"a_i8", []int8{-1}}, {"a_u16", []uint16{7}}, {"a_i16", []int16{-7}},
		{"a_u32", []uint32{9}}, {"a_i32", []int32{-9}}, {"a_f32", []float32{0.5}}, {"a_b", []bool{true, false}},
		{"a_s", []string{"", "x"}}, {"a_u64", []uint64{1 << 60}}, {"a_i64", []int64{-1 << 60}}, {"a_f64", []float64{-0.25}},
		{"a_any", []any{int16(3), int16(4)}}, {"a_empty", []any{}}, {"a_nested", []any{[]string{"p"}, []int32{5, 6}}},
	}
	want := map[string]any{
		"a_u8": []any{uint8(1), uint8(2)}, "a_i8": []any{int8(-1)}, "a_u16": []any{uint16(7)}, "a_i16": []any{int16(-7)},
		"a_u32": []any{uint32(9)}, "a_i32": []any{int32(-9)}, "a_f32": []any{float32(0.5)}, "a_b": []any{true, false},
		"a_s": []any{"", "x"}, "a_u64": []any{uint64(1 << 60)}, "a_i64": []any{int64(-1 << 60)}, "a_f64": []any{-0.25},
		"a_any": []any{int16(3), int16(4)}, "a_empty": []any{}, "a_nested": []any{[]any{"p"}, []any{int32(5), int32(6)}},
	}
	b, err := Encode(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for i, kv := range in {
		if f.Keys[i] != kv.Key {
			t.Fatalf("key %d is %q, want %q", i, f.Keys[i], kv.Key)
		}
		w, ok := want[kv.Key]
		if !ok {
			w = kv.Value
		}
		if !reflect.DeepEqual(f.Metadata[kv.Key], w) {
			t.Errorf("%s: got %#v, want %#v", kv.Key, f.Metadata[kv.Key], w)
		}
	}
	if n, ok := f.Uint("i8"); ok {
		t.Errorf("negative int8 read as unsigned %d", n)
	}
}

func TestWriteAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := Write(p, []KV{{"a", "b"}}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil || f.Metadata["a"] != "b" {
		t.Fatalf("%v %v", f, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// A refused write leaves the old file and no temp file.
	if err := Write(p, []KV{{"a", "x"}, {"a", "y"}}, nil); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate key: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
	if f, err := Open(p); err != nil || f.Metadata["a"] != "b" {
		t.Fatalf("old file damaged: %v", err)
	}
}

// TestOpenMapsFile opens a written file (mapped on unix), reads a tensor,
// closes twice, and checks that the same bytes come back as from Parse.
func TestOpenMapsFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(p, sample(t), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := Parse(sample(t))
	for _, tt := range ref.Tensors {
		g, ok := f.Tensor(tt.Name)
		if !ok || !bytes.Equal(g.Data, tt.Data) {
			t.Fatalf("tensor %s differs after Open", tt.Name)
		}
	}
	g, _ := f.Tensor("w")
	g.Data[0] ^= 0xFF // private mapping: allowed, and the file must not change
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, sample(t)) {
		t.Fatal("writing to mapped tensor data changed the file")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.gguf")); err == nil || !strings.Contains(err.Error(), "missing.gguf") {
		t.Fatalf("missing file: %v", err)
	}
	if err := os.WriteFile(p, []byte("GGUF\x03\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("truncated file: error %v does not name the file", err)
	}
}

// raw builds a GGUF file byte by byte so tests can make files the writer
// refuses to produce.
type raw struct{ bytes.Buffer }

func (r *raw) u32(v uint32) *raw  { _ = binary.Write(r, binary.LittleEndian, v); return r }
func (r *raw) u64(v uint64) *raw  { _ = binary.Write(r, binary.LittleEndian, v); return r }
func (r *raw) str(s string) *raw  { r.u64(uint64(len(s))); r.WriteString(s); return r }
func (r *raw) pad(a int) *raw     { r.Write(make([]byte, (a-r.Len()%a)%a)); return r }
func (r *raw) zeros(n int) []byte { r.Write(make([]byte, n)); return r.Bytes() }

func header(version uint32, tensors, kvs uint64) *raw {
	r := &raw{}
	r.WriteString("GGUF")
	return r.u32(version).u64(tensors).u64(kvs)
}

// info appends a tensor info: name, dims, type, offset.
func (r *raw) info(name string, dims []uint64, typ quant.Type, off uint64) *raw {
	r.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		r.u64(d)
	}
	return r.u32(uint32(typ)).u64(off)
}

func TestBadFiles(t *testing.T) {
	good := sample(t)
	cases := map[string][]byte{
		"empty":              nil,
		"magic":              append([]byte("GGUX"), good[4:]...),
		"version":            append(append([]byte("GGUF"), 9, 0, 0, 0), good[8:]...),
		"version 1":          append(append([]byte("GGUF"), 1, 0, 0, 0), good[8:]...),
		"big-endian":         append(append([]byte("GGUF"), 0, 0, 0, 3), good[8:]...),
		"truncated":          good[:len(good)-40],
		"header only":        good[:30],
		"unknown value type": header(3, 0, 1).str("k").u32(99).zeros(8),
		"bool 2":             append(header(3, 0, 1).str("k").u32(typeBool).Bytes(), 2),
		"huge string":        header(3, 0, 1).str("k").u32(typeString).u64(1 << 60).zeros(16),
		"huge array":         header(3, 0, 1).str("k").u32(typeArray).u32(typeUint8).u64(1 << 40).zeros(16),
		"deep arrays": header(3, 0, 1).str("k").u32(typeArray).u32(typeArray).u64(1).u32(typeArray).u64(1).
			u32(typeArray).u64(1).u32(typeUint8).u64(1).zeros(8),
		"alignment 3":       header(3, 0, 1).str("general.alignment").u32(typeUint32).u32(3).zeros(0),
		"unknown ggml type": header(3, 1, 0).info("t", []uint64{32}, quant.Type(77), 0).pad(32).zeros(1024),
		"zero dim":          header(3, 1, 0).info("t", []uint64{0}, quant.F32, 0).pad(32).zeros(64),
		"five dims":         header(3, 1, 0).info("t", []uint64{1, 1, 1, 1, 1}, quant.F32, 0).pad(32).zeros(64),
		"partial block":     header(3, 1, 0).info("t", []uint64{31}, quant.Q8_0, 0).pad(32).zeros(64),
		"misaligned":        header(3, 1, 0).info("t", []uint64{4}, quant.F32, 8).pad(32).zeros(64),
		"overlap": header(3, 2, 0).info("a", []uint64{16}, quant.F32, 0).info("b", []uint64{16}, quant.F32, 32).
			pad(32).zeros(128),
		"past the end":    header(3, 1, 0).info("t", []uint64{64}, quant.F32, 0).pad(32).zeros(255),
		"duplicate names": header(3, 2, 0).info("a", []uint64{8}, quant.F32, 0).info("a", []uint64{8}, quant.F32, 32).pad(32).zeros(64),
		"absurd dims":     header(3, 1, 0).info("t", []uint64{1 << 32, 1 << 32}, quant.F32, 0).pad(32).zeros(64),
	}
	cases["duplicate key"] = append(append(append(header(3, 0, 2).str("k").u32(typeUint8).Bytes(), 1), (&raw{}).str("k").u32(typeUint8).Bytes()...), 1)
	huge := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(huge[8:], 1<<40) // tensor count
	cases["absurd count"] = huge
	for name, b := range cases {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// The same builder makes a valid file when the numbers are right, so
	// the refusals above are about what each case changes.
	ok := header(3, 2, 1).str("general.alignment").u32(typeUint32).u32(64).
		info("a", []uint64{16}, quant.F32, 0).info("b", []uint64{16}, quant.F32, 64).pad(64).zeros(128)
	f, err := Parse(ok)
	if err != nil {
		t.Fatalf("valid hand-built file refused: %v", err)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Fatalf("alignment %d, data at %d", f.Alignment, f.DataOffset)
	}
}

func TestWriterRefuses(t *testing.T) {
	f32 := make([]byte, 16)
	cases := map[string]struct {
		kvs []KV
		ts  []WriteTensor
	}{
		"duplicate tensor": {nil, []WriteTensor{{"a", []uint64{4}, quant.F32, f32}, {"a", []uint64{4}, quant.F32, f32}}},
		"wrong size":       {nil, []WriteTensor{{"a", []uint64{5}, quant.F32, f32}}},
		"no dims":          {nil, []WriteTensor{{"a", nil, quant.F32, f32}}},
		"partial block":    {nil, []WriteTensor{{"a", []uint64{4}, quant.Q8_0, f32}}},
		"unknown type":     {[]KV{{"k", struct{}{}}}, nil},
		"mixed array":      {[]KV{{"k", []any{int32(1), "x"}}}, nil},
		"map":              {[]KV{{"k", map[string]int{}}}, nil},
	}
	for name, c := range cases {
		if _, err := Encode(c.kvs, c.ts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample(f))
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Parse(b)
		if err != nil {
			return
		}
		var spans [][2]uint64
		for _, tt := range g.Tensors {
			if uint64(len(tt.Data)) != tt.Size {
				t.Fatalf("tensor %q: %d bytes, size %d", tt.Name, len(tt.Data), tt.Size)
			}
			if tt.Offset%g.Alignment != 0 || g.DataOffset+tt.Offset+tt.Size > uint64(len(b)) {
				t.Fatalf("tensor %q at %d+%d is misaligned or outside the file", tt.Name, tt.Offset, tt.Size)
			}
			for _, s := range spans {
				if tt.Offset < s[1] && s[0] < tt.Offset+tt.Size {
					t.Fatalf("tensor %q overlaps another", tt.Name)
				}
			}
			spans = append(spans, [2]uint64{tt.Offset, tt.Offset + tt.Size})
		}
		// What parses must re-encode (at alignment 32) and parse the same.
		var kvs []KV
		for _, k := range g.Keys {
			if k != "general.alignment" {
				kvs = append(kvs, KV{k, g.Metadata[k]})
			}
		}
		var ts []WriteTensor
		for _, tt := range g.Tensors {
			ts = append(ts, WriteTensor{tt.Name, tt.Dims, tt.Type, tt.Data})
		}
		again, err := Encode(kvs, ts)
		if err != nil {
			t.Fatalf("parsed file does not re-encode: %v", err)
		}
		h, err := Parse(again)
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		if len(h.Tensors) != len(g.Tensors) || len(h.Keys) != len(kvs) {
			t.Fatalf("re-encoded file has %d tensors and %d keys, want %d and %d", len(h.Tensors), len(h.Keys), len(g.Tensors), len(kvs))
		}
	})
}

// TestReadsGGMLWrittenFile parses testdata/ggml_written.gguf, written by
// ggml's own gguf writer (gguf_write_to_file of ggml-org/ggml d99724f2,
// called from a small C++ program outside this repository), and checks every
// value it was given; ggml's reader reported data_offset 448 and tensor "q"
// at offset 64 for it.
func TestReadsGGMLWrittenFile(t *testing.T) {
	f, err := Open("testdata/ggml_written.gguf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]any{
		"general.architecture": "llama", "llama.block_count": uint32(2), "llama.rope.freq_base": float32(10000),
		"i8": int8(-5), "u16": uint16(65000), "i64": int64(-1234567890123), "f64": 2.5, "b": true,
		"tokenizer.ggml.tokens": []any{"<unk>", "a", "b"}, "tokenizer.ggml.scores": []any{float32(0), float32(-1), float32(-2)},
	}
	if !reflect.DeepEqual(f.Metadata, want) || f.Version != 3 || f.DataOffset != 448 {
		t.Fatalf("version %d, data at %d, metadata %#v", f.Version, f.DataOffset, f.Metadata)
	}
	w, _ := f.Tensor("w")
	q, _ := f.Tensor("q")
	if w == nil || q == nil || !reflect.DeepEqual(w.Dims, []uint64{5, 3}) || q.Offset != 64 || q.Type != quant.Q8_0 {
		t.Fatalf("tensors %+v %+v", w, q)
	}
	for i := range 15 {
		if v := math.Float32frombits(binary.LittleEndian.Uint32(w.Data[4*i:])); v != float32(i) {
			t.Fatalf("w[%d] = %g", i, v)
		}
	}
	for i, b := range q.Data {
		if b != byte(i*7) {
			t.Fatalf("q byte %d = %d", i, b)
		}
	}
}
