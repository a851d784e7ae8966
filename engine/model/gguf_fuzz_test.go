package model

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"orchmind/engine/gguf"
	"orchmind/engine/quant"
	"orchmind/internal/fuzzcheck"
)

// fuzzGGUFTypes are the weight types FuzzFromGGUF asks FromGGUF for.
var fuzzGGUFTypes = []quant.Type{AsStored, quant.F32, quant.Q8_0, quant.Q4_0}

// fuzzGGUFSeeds writes small valid GGUF models of each architecture the
// engine runs (random weights, a tokenizer for one of them, RoPE factors,
// Qwen2 biases, Qwen3 head norms and wide heads, quantized blocks).
func fuzzGGUFSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	base := Config{Dim: 8, HiddenDim: 16, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 12, SeqLen: 16, NormEps: 1e-5, RopeTheta: 10000}
	var out [][]byte
	for i, c := range []struct {
		cfg   func(Config) Config
		typ   quant.Type
		vocab bool
		edit  func(*Model)
	}{
		{func(c Config) Config { return c }, quant.F32, true, nil},
		{func(c Config) Config {
			c.Dim, c.HiddenDim, c.Heads, c.KVHeads, c.Vocab, c.SharedClassifier = 32, 32, 4, 2, 8, true
			return c
		}, quant.Q8_0, false, func(m *Model) { m.RopeFactors = []float32{1, 1, 2, 4} }},
		{func(c Config) Config { c.Arch = ArchQwen2; return c }, quant.F32, false, func(m *Model) {
			for l := range m.Layers {
				L := &m.Layers[l]
				L.Bias[ProjQ], L.Bias[ProjK], L.Bias[ProjV] = make([]float32, m.QDim()), make([]float32, m.KVDim()), make([]float32, m.KVDim())
			}
		}},
		{func(c Config) Config { c.Arch, c.HeadSize = ArchQwen3, 8; return c }, quant.F32, false, nil},
		{func(c Config) Config { c.Arch, c.SharedClassifier = ArchGemma, true; return c }, quant.F16, false, nil},
	} {
		m, err := Random(c.cfg(base), c.typ, uint64(i))
		if err != nil {
			tb.Fatal(err)
		}
		if c.edit != nil {
			c.edit(m)
		}
		var v *Vocab
		if c.vocab {
			v = &Vocab{BOS: 1, EOS: 2}
			for t := range m.Vocab {
				v.Tokens, v.Scores, v.Types = append(v.Tokens, fmt.Sprintf("t%d", t)), append(v.Scores, float32(-t)), append(v.Types, 1)
			}
		}
		p := filepath.Join(tb.TempDir(), "m.gguf")
		if err := WriteGGUF(p, m, "fuzz", AsStored, v, nil); err != nil {
			tb.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		g, err := gguf.Parse(b)
		if err == nil {
			_, err = FromGGUF(g, AsStored)
		}
		if err != nil {
			tb.Fatalf("seed %d does not load: %v", i, err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzFromGGUF builds models from fuzzed GGUF files. FromGGUF must not
// panic, must allocate in proportion to the file (a header claiming 16
// million blocks or a huge width must not reserve gigabytes), must explain
// a refusal in one line, and a model it accepts must be consistent: a
// forward pass runs and gives one logit per vocabulary entry.
func FuzzFromGGUF(f *testing.F) {
	for i, s := range fuzzGGUFSeeds(f) {
		f.Add(s, uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, typ uint8) { checkFromGGUF(t, data, typ) })
}

// checkFromGGUF is FuzzFromGGUF's check of one file.
func checkFromGGUF(t *testing.T, data []byte, typ uint8) {
	g, err := gguf.Parse(data)
	if err != nil {
		return // gguf.FuzzParse covers the parser
	}
	var m *Model
	fuzzcheck.Bounded(t, len(data), 128, 1<<20, func() { m, err = FromGGUF(g, fuzzGGUFTypes[int(typ)%len(fuzzGGUFTypes)]) })
	if err != nil {
		fuzzcheck.OneLine(t, err)
		return
	}
	c := m.Config
	if len(m.Layers) != c.Layers || m.Embed == nil || m.Output == nil || len(m.FinalNorm) != c.Dim ||
		m.Embed.Rows != c.Vocab || m.Embed.Cols != c.Dim {
		t.Fatalf("inconsistent model %+v", c)
	}
	// The KV cache is sized from SeqLen (the file's context length);
	// one position is enough here.
	short := *m
	short.SeqLen = 1
	var logits []float32
	fuzzcheck.Bounded(t, len(data), 128, 1<<20, func() { logits = short.NewState().Forward(c.Vocab-1, 0) })
	if len(logits) != c.Vocab {
		t.Fatalf("%d logits for a vocabulary of %d", len(logits), c.Vocab)
	}
	_ = Fingerprint(m)
}

// FuzzFromGGUFFields mutates the fields of valid GGUF files rather than
// their bytes, so that FromGGUF (not the parser) sees the damage: one
// metadata value replaced, one tensor reshaped, retyped, renamed or
// dropped, its bytes taken from fill. The checks are FuzzFromGGUF's.
func FuzzFromGGUFFields(f *testing.F) {
	var files []*gguf.File
	for _, s := range fuzzGGUFSeeds(f) {
		g, err := gguf.Parse(s)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, g)
	}
	knownTypes := []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q4_1, quant.Q4_K, quant.Q5_K, quant.Q6_K}
	for i := range files {
		f.Add(uint8(i), uint8(0), uint8(0), uint32(0), uint8(0), []byte{}, uint8(0), uint8(0), []byte{1})
	}
	f.Add(uint8(0), uint8(0), uint8(3), uint32(1<<24), uint8(0), []byte{}, uint8(0), uint8(0), []byte{0})
	f.Fuzz(func(t *testing.T, seed, typ, key uint8, val uint32, tensor uint8, dims []byte, ttype, op uint8, fill []byte) {
		g := files[int(seed)%len(files)]
		var kvs []gguf.KV
		for _, k := range g.Keys {
			kvs = append(kvs, gguf.KV{Key: k, Value: g.Metadata[k]})
		}
		kv := &kvs[int(key)%len(kvs)]
		switch v := kv.Value.(type) {
		case uint32, uint64, int32, int64, uint8, uint16, int8, int16:
			kv.Value = val
		case float32, float64:
			kv.Value = math.Float32frombits(val)
		case string:
			kv.Value = string(fill)
		case []any:
			kv.Value = v[:int(val)%(len(v)+1)]
		}
		var ts []gguf.WriteTensor
		for _, x := range g.Tensors {
			ts = append(ts, gguf.WriteTensor{Name: x.Name, Dims: x.Dims, Type: x.Type, Data: x.Data})
		}
		i := int(tensor) % len(ts)
		switch op % 4 {
		case 1: // drop
			ts = append(ts[:i], ts[i+1:]...)
		case 2: // rename to another tensor's name, or a new one
			if j := int(val) % (len(ts) + 1); j < len(ts) && j != i {
				ts[i].Name, ts[j].Name = ts[j].Name, ts[i].Name
			} else {
				ts[i].Name = string(fill)
			}
		case 3: // reshape and retype, with new bytes
			w := &ts[i]
			if len(dims) > 0 {
				w.Dims, w.Type = nil, knownTypes[int(ttype)%len(knownTypes)]
				n := 1
				for _, d := range dims[:min(len(dims), 4)] {
					v := int(d)%64 + 1
					if w.Type >= quant.Q4_K && len(w.Dims) == 0 {
						v = 256 * (int(d)%2 + 1)
					} else if w.Type >= quant.Q4_0 && len(w.Dims) == 0 {
						v = 32 * (int(d)%4 + 1)
					}
					if n*v > 1<<16 {
						break
					}
					n *= v
					w.Dims = append(w.Dims, uint64(v))
				}
			}
			rb, err := quant.RowBytes(w.Type, int(w.Dims[0]))
			if err != nil {
				return
			}
			n := rb
			for _, d := range w.Dims[1:] {
				n *= int(d)
			}
			w.Data = make([]byte, n)
			for k := range w.Data {
				if len(fill) > 0 {
					w.Data[k] = fill[k%len(fill)]
				}
			}
		}
		data, err := gguf.Encode(kvs, ts)
		if err != nil {
			return
		}
		checkFromGGUF(t, data, typ)
	})
}
