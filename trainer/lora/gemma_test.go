package lora

import (
	"math"
	"slices"
	"strings"
	"testing"

	"orchmind/adapters"
	"orchmind/engine/gguf"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/trainer/hparams"
)

// inferenceLoss is the summed next-token cross-entropy of s.IDs computed
// with the inference path (model.State, the adapter plugged in).
func inferenceLoss(t *testing.T, m *model.Model, a Weighted, ids []int) float64 {
	t.Helper()
	plug, err := NewPlug(m, a)
	if err != nil {
		t.Fatal(err)
	}
	st := m.NewState()
	st.SetFloat32(true) // the float32 arithmetic of training, not generation's int8 dot products
	st.SetDelta(plug)
	var ref float64
	for pos := 0; pos+1 < len(ids); pos++ {
		lg := st.Forward(ids[pos], pos)
		mx := lg[0]
		for _, v := range lg {
			mx = max(mx, v)
		}
		var z float64
		for _, v := range lg {
			z += math.Exp(float64(v - mx))
		}
		ref += float64(mx) + math.Log(z) - float64(lg[ids[pos+1]])
	}
	return ref
}

// TestGemmaEngineMatchesInference: the training forward pass of Gemma 2
// and 3 (sandwich norms, sliding windows shorter than the sequence, two
// RoPE bases, soft caps) gives the loss of the inference path, in float32
// and through quantized weights.
func TestGemmaEngineMatchesInference(t *testing.T) {
	for _, arch := range []string{model.ArchGemma3, model.ArchGemma2} {
		for _, typ := range []quant.Type{quant.F32, quant.Q8_0} {
			c := gemmaTiny(arch)
			c.Dim, c.HiddenDim, c.Vocab = 32, 48, 40 // whole Q8_0 blocks
			m := randomModel(t, c, typ, 3)
			a := randomAdapter(t, m, 4, 4)
			e, err := NewEngine(m, a, 1)
			if err != nil {
				t.Fatal(err)
			}
			s := randomSeq(20, c.Vocab, 9)
			s.Mask = nil
			sum, n, err := e.Loss(s)
			if err != nil {
				t.Fatal(err)
			}
			ref := inferenceLoss(t, m, Weighted{a, 1}, s.IDs)
			if n != len(s.IDs)-1 || math.Abs(sum-ref) > 1e-4*math.Abs(ref) {
				t.Errorf("%s %s: engine loss %.7g over %d tokens, inference %.7g", arch, typ, sum, n, ref)
			}
		}
	}
}

// TestLossInSlices: with a 262,144-token vocabulary the loss takes the
// logits of every token for 8,192 vocabulary entries at a time (4 MiB at
// 100 tokens), never the whole vocabulary's; the loss and gradients equal
// those of a run whose one slice is the whole vocabulary.
func TestLossInSlices(t *testing.T) {
	if testing.Short() {
		t.Skip("a 262,144-token vocabulary: skipped in -short")
	}
	c := model.Config{Dim: 16, HiddenDim: 24, Layers: 1, Heads: 2, KVHeads: 1, Vocab: 262144, SeqLen: 128, NormEps: 1e-6,
		RopeTheta: 10000, SharedClassifier: true}
	m := randomModel(t, c, quant.Q8_0, 5)
	a := randomAdapter(t, m, 2, 6)
	s := randomSeq(100, c.Vocab, 7)
	if r := hparams.LossSlice(len(s.IDs), c.Vocab); r != hparams.LossSliceMax {
		t.Fatalf("LossSlice(100, 262144) = %d, want %d", r, hparams.LossSliceMax)
	}
	run := func(slice int) (float64, *Engine) {
		e, err := NewEngine(m, a, 1)
		if err != nil {
			t.Fatal(err)
		}
		e.grow(len(s.IDs))
		if slice > 0 {
			e.growLoss(len(s.IDs), slice)
		}
		sum, _, err := e.Accumulate(s, 1)
		if err != nil {
			t.Fatal(err)
		}
		return sum, e
	}
	sum, e := run(0)
	logitBytes := int64(4 * len(e.loss.logits))
	if logitBytes > hparams.LossBytes || e.ActivationBytes() < logitBytes {
		t.Fatalf("logits take %d bytes (limit %d), the engine reports %d in all", logitBytes, hparams.LossBytes, e.ActivationBytes())
	}
	hm := hparams.Model{Layers: c.Layers, Dim: c.Dim, HiddenDim: c.HiddenDim, Heads: c.Heads, KVDim: c.KVDim(), QDim: c.QDim(), KVHeads: c.KVHeads, Vocab: c.Vocab}
	if est, got := hparams.ActivationBytes(hm, 2, len(s.IDs), false, false), e.ActivationBytes(); float64(est) < 0.9*float64(got) || float64(est) > 1.1*float64(got) {
		t.Fatalf("estimate %d bytes, engine holds %d", est, got)
	}
	whole, f := run(c.Vocab)
	if math.Abs(sum-whole) > 1e-6*math.Abs(whole) {
		t.Fatalf("loss %.9g in slices, %.9g at once", sum, whole)
	}
	for k, g := range e.Grads.Pairs {
		h := f.Grads.Pairs[k]
		var scale float64
		for _, v := range h.A {
			scale = max(scale, math.Abs(float64(v)))
		}
		for i := range g.A {
			if math.Abs(float64(g.A[i]-h.A[i])) > 1e-3*scale { // float32 summation order
				t.Fatalf("%v: ∂A[%d] %g in slices, %g at once", k, i, g.A[i], h.A[i])
			}
		}
	}
}

// TestGGUFLoRAGemmaAsLlamaCpp applies the GGUF LoRA file of a Gemma 2/3
// adapter to the GGUF base file the way llama.cpp's loader does (each
// blk.N.X.weight += alpha/r · lora_b·lora_a, in the files' own row order:
// rotate-half q/k rows for gemma2/gemma3) and requires the result to give
// the logits of the base with the adapter plugged in.
func TestGGUFLoRAGemmaAsLlamaCpp(t *testing.T) {
	for _, arch := range []string{model.ArchGemma3, model.ArchGemma2} {
		c := gemmaTiny(arch)
		m := randomModel(t, c, quant.F32, 2)
		a := randomAdapter(t, m, 3, 8)
		dir := t.TempDir()
		bp, lp, mp := dir+"/base.gguf", dir+"/lora.gguf", dir+"/merged.gguf"
		if err := model.WriteGGUF(bp, m, "tiny", model.AsStored, nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := WriteGGUF(lp, a, "tiny", m.Config); err != nil {
			t.Fatal(err)
		}
		bf, err := gguf.Open(bp)
		if err != nil {
			t.Fatal(err)
		}
		lf, err := gguf.Open(lp)
		if err != nil {
			t.Fatal(err)
		}
		if lf.Metadata["general.architecture"] != arch || lf.Metadata["general.type"] != "adapter" {
			t.Fatalf("%s LoRA file metadata %v", arch, lf.Metadata)
		}
		alpha, _ := lf.Float("adapter.lora.alpha")
		var kvs []gguf.KV
		for _, k := range bf.Keys {
			kvs = append(kvs, gguf.KV{Key: k, Value: bf.Metadata[k]})
		}
		var ts []gguf.WriteTensor
		applied := 0
		for _, x := range bf.Tensors {
			data := x.Data
			la, okA := lf.Tensor(x.Name + ".lora_a")
			lb, okB := lf.Tensor(x.Name + ".lora_b")
			if okA && okB {
				in, out, r := int(x.Dims[0]), int(x.Dims[1]), int(la.Dims[1])
				w := make([]float32, in*out)
				A, B := make([]float32, r*in), make([]float32, out*r)
				if quant.Dequantize(x.Type, x.Data, w) != nil || quant.Dequantize(la.Type, la.Data, A) != nil || quant.Dequantize(lb.Type, lb.Data, B) != nil {
					t.Fatal("dequantize")
				}
				s := float32(alpha) / float32(r)
				for o := range out {
					for j := range r {
						f := s * B[o*r+j]
						for i := range in {
							w[o*in+i] += f * A[j*in+i]
						}
					}
				}
				data, _ = quant.Quantize(quant.F32, w, nil)
				applied++
			}
			ts = append(ts, gguf.WriteTensor{Name: x.Name, Dims: x.Dims, Type: x.Type, Data: data})
		}
		if applied != len(a.Pairs) {
			t.Fatalf("%s: %d LoRA pairs applied, the adapter has %d", arch, applied, len(a.Pairs))
		}
		if err := gguf.Write(mp, kvs, ts); err != nil {
			t.Fatal(err)
		}
		bf.Close()
		lf.Close()
		merged, mf, err := model.LoadGGUF(mp, model.AsStored)
		if err != nil {
			t.Fatal(err)
		}
		plug, err := NewPlug(m, Weighted{a, 1})
		if err != nil {
			t.Fatal(err)
		}
		s1, s2 := m.NewState(), merged.NewState()
		s1.SetDelta(plug)
		ids := randomSeq(10, c.Vocab, 4).IDs
		var worst, scale float64
		for pos, id := range ids {
			x, y := s1.Forward(id, pos), s2.Forward(id, pos)
			for i := range x {
				worst = max(worst, math.Abs(float64(x[i]-y[i])))
				scale = max(scale, math.Abs(float64(x[i])))
			}
		}
		mf.Close()
		if worst > 1e-4*scale {
			t.Errorf("%s: llama.cpp-style merge of the GGUF LoRA differs from the plugged adapter by %g (logits up to %g)", arch, worst, scale)
		}
	}
}

// TestPEFTGemma3Multimodal: an adapter for the base loaded from Gemma 3's
// multimodal Hugging Face folder is written with that checkpoint's PEFT
// names (model.language_model.layers…) and reads back to the same pairs;
// the names of either transformers version read the same.
func TestPEFTGemma3Multimodal(t *testing.T) {
	dir := "../../testdata/hf/tiny-gemma3-mm-torch"
	m, err := model.LoadHF(dir, quant.F32)
	if err != nil {
		t.Skipf("no fixture: %v", err)
	}
	if m.HFTextModel != "language_model.model" {
		t.Fatalf("HFTextModel %q", m.HFTextModel)
	}
	a := randomAdapter(t, m, 2, 3)
	out := t.TempDir() + "/ad"
	if err := WritePEFT(out, a, adapters.Manifest{Announced: adapters.Announced{Name: "x"}}, m); err != nil {
		t.Fatal(err)
	}
	raw, _, err := adapters.ReadFolder(out, adapters.SafetensorsCodec{})
	if err != nil {
		t.Fatal(err)
	}
	if raw.TextModel != "language_model.model" {
		t.Fatalf("written with text model %q", raw.TextModel)
	}
	back, _, err := ReadPEFT(out, m)
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range a.Pairs {
		q := back.Pairs[k]
		if q == nil || !slices.Equal(p.A, q.A) || !slices.Equal(p.B, q.B) {
			t.Fatalf("%v differs after PEFT", k)
		}
	}
	ts, _, err := adapters.SafetensorsCodec{}.ReadTensors(out + "/" + adapters.SafetensorsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ts[0].Name, "base_model.model.language_model.model.layers.") {
		t.Fatalf("tensor name %q", ts[0].Name)
	}
}
