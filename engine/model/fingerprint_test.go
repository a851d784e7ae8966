package model

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"path/filepath"
	"testing"

	"orchmind/engine/gguf"
	"orchmind/engine/quant"
	"orchmind/engine/tensor"
)

// Adapters published in the swarm are pinned to these values: if the
// definition changes, every existing adapter stops matching its base. They
// were computed by this code and are checked here so that the definition
// cannot drift unnoticed; TestFingerprintDefinition checks that they follow
// docs/fingerprint.md.
const (
	stories260KF32Fingerprint = "sha256:5f1bcb612c17eb16cf0ec482f198fd928c26686be6de1a29cb17f16846ab398e"
	stories260KShapeID        = "sha256:5a58f74891de486d8b561f430131146e2cb699e66a06c41bb5bc4313f47c5295"
)

func TestFingerprintStories260K(t *testing.T) {
	a, _ := loadStories(t, quant.F32)
	b, _ := loadStories(t, quant.F32)
	if Fingerprint(a) != Fingerprint(b) || ShapeID(a) != ShapeID(b) {
		t.Fatal("two loads of the same checkpoint have different identities")
	}
	t.Logf("stories260K F32: fingerprint %s, shape id %s", Fingerprint(a), ShapeID(a))
	if Fingerprint(a) != stories260KF32Fingerprint || ShapeID(a) != stories260KShapeID {
		t.Fatalf("the definition changed: fingerprint %s, shape id %s", Fingerprint(a), ShapeID(a))
	}
	q, _ := loadStories(t, quant.Q8_0)
	if ShapeID(q) != ShapeID(a) {
		t.Fatal("Q8_0 and F32 loads have different shape IDs")
	}
	if Fingerprint(q) == Fingerprint(a) {
		t.Fatal("Q8_0 and F32 loads have the same fingerprint")
	}
	q2, _ := loadStories(t, quant.Q8_0)
	if Fingerprint(q2) != Fingerprint(q) {
		t.Fatal("two Q8_0 loads have different fingerprints")
	}
}

// TestFingerprintChanges: one byte of one weight, one norm value, or one
// architecture number changes the fingerprint; only the architecture
// changes the shape ID.
func TestFingerprintChanges(t *testing.T) {
	m := randomModel(11)
	fp, sid := Fingerprint(m), ShapeID(m)
	clone := func() *Model {
		c := *m
		c.Layers = append([]Layer(nil), m.Layers...)
		return &c
	}
	w := clone()
	old := w.Layers[1].Wv
	data := append([]byte(nil), old.Data...)
	data[len(data)/2] ^= 1
	w.Layers[1].Wv = &tensor.Matrix{Type: old.Type, Rows: old.Rows, Cols: old.Cols, Data: data}
	if Fingerprint(w) == fp || ShapeID(w) != sid {
		t.Error("flipping one bit of one weight: want another fingerprint, the same shape ID")
	}
	n := clone()
	n.FinalNorm = append([]float32(nil), m.FinalNorm...)
	n.FinalNorm[0] = math.Nextafter32(n.FinalNorm[0], 2)
	if Fingerprint(n) == fp || ShapeID(n) != sid {
		t.Error("changing one norm value: want another fingerprint, the same shape ID")
	}
	r := clone()
	r.RopeTheta = 500000
	if Fingerprint(r) == fp || ShapeID(r) == sid {
		t.Error("changing rope theta: want another fingerprint and shape ID")
	}
	s := clone()
	s.SeqLen = 4096
	if Fingerprint(s) != fp {
		t.Error("the context length changed the fingerprint")
	}
	if Fingerprint(clone()) != fp {
		t.Error("an identical copy has another fingerprint")
	}
}

// TestFingerprintDefinition recomputes both identities from a GGUF file,
// following docs/fingerprint.md step by step with the file's own metadata
// and tensors (WriteGGUF writes tensors in the canonical order), and
// compares with what Fingerprint and ShapeID say about the loaded model.
func TestFingerprintDefinition(t *testing.T) {
	for _, shared := range []bool{false, true} {
		m := randomModel(5)
		if shared {
			m.Output, m.SharedClassifier = m.Embed, true
		}
		p := filepath.Join(t.TempDir(), "m.gguf")
		if err := WriteGGUF(p, m, "x", quant.Q8_0, nil, nil); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		g, err := FromGGUF(f, AsStored)
		if err != nil {
			t.Fatal(err)
		}
		for _, withData := range []bool{true, false} {
			h := sha256.New()
			u := func(v uint64) { h.Write(binary.LittleEndian.AppendUint64(nil, v)) }
			s := func(x string) { u(uint64(len(x))); h.Write([]byte(x)) }
			meta := func(k string) uint64 { v, _ := f.Uint(k); return v }
			flt := func(k string) uint64 { v, _ := f.Float(k); return math.Float64bits(float64(float32(v))) }
			s("orchmind-base-v1")
			s("llama")
			u(meta("llama.embedding_length"))
			u(meta("llama.feed_forward_length"))
			u(meta("llama.block_count"))
			u(meta("llama.attention.head_count"))
			u(meta("llama.attention.head_count_kv"))
			emb, _ := f.Tensor("token_embd.weight")
			u(emb.Dims[1])
			u(flt("llama.rope.freq_base"))
			u(flt("llama.attention.layer_norm_rms_epsilon"))
			_, hasOut := f.Tensor("output.weight")
			if hasOut {
				u(0)
			} else {
				u(1)
			}
			for _, tt := range f.Tensors {
				s(tt.Name)
				u(uint64(len(tt.Dims)))
				for _, d := range tt.Dims {
					u(d)
				}
				if withData {
					u(uint64(tt.Type))
					h.Write(tt.Data)
				}
			}
			want := "sha256:" + hex.EncodeToString(h.Sum(nil))
			got := ShapeID(g)
			if withData {
				got = Fingerprint(g)
			}
			if got != want {
				t.Fatalf("shared=%v data=%v: model says %s, the documented definition %s", shared, withData, got, want)
			}
		}
	}
}
