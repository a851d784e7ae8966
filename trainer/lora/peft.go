package lora

import (
	"orchmind/adapters"
	"orchmind/engine/model"
)

// Layouts of the q_proj and k_proj rows. orchmind holds every model in the
// interleaved RoPE layout of Meta, llama2.c and GGUF (rotated pairs are
// neighbours); Hugging Face checkpoints, and so PEFT adapters, use the
// rotate-half layout (the two halves of each head are rotated together).
// llama.cpp's converter permutes q/k rows from HF to interleaved; the same
// permutation applies to the rows of a LoRA B on q_proj and k_proj (the
// output side), while A and every other projection are layout-free.
//
// PEFT files are therefore written in HF order and read back into
// interleaved order, so an adapter trained here loads in HF PEFT on the HF
// version of the base, and a PEFT adapter trained there plugs in here.

// hfToInterleaved returns, for each HF row index, its interleaved index.
func hfToInterleaved(heads, headDim int) []int {
	perm := make([]int, heads*headDim)
	half := headDim / 2
	for h := range heads {
		for s := range 2 {
			for i := range half {
				perm[h*headDim+s*half+i] = h*headDim + 2*i + s
			}
		}
	}
	return perm
}

// permuteB returns a copy of a whose q_proj/k_proj B rows are moved from
// HF order to interleaved order (toHF false) or back (toHF true).
func permuteB(a *adapters.Adapter, c model.Config, toHF bool) *adapters.Adapter {
	out := *a
	out.Pairs = make(map[adapters.Key]*adapters.Pair, len(a.Pairs))
	for k, p := range a.Pairs {
		heads := 0
		switch k.Module {
		case adapters.Q:
			heads = c.Heads
		case adapters.K:
			heads = c.KVHeads
		}
		if heads == 0 || p.Out != heads*c.HeadDim() {
			out.Pairs[k] = p
			continue
		}
		perm := hfToInterleaved(heads, c.HeadDim())
		q := &adapters.Pair{In: p.In, Out: p.Out, A: p.A, B: make([]float32, len(p.B))}
		r := a.Rank
		for hf, il := range perm {
			src, dst := hf, il
			if toHF {
				src, dst = il, hf
			}
			copy(q.B[dst*r:(dst+1)*r], p.B[src*r:(src+1)*r])
		}
		out.Pairs[k] = q
	}
	return &out
}

// ReadPEFT reads a PEFT adapter folder (adapter_config.json +
// adapter_model.safetensors, orchmind.json when present) for model m,
// converting it to the model's layout and checking its shapes.
func ReadPEFT(dir string, m *model.Model) (*adapters.Adapter, *adapters.Manifest, error) {
	a, man, err := adapters.ReadFolder(dir, adapters.SafetensorsCodec{})
	if err != nil {
		return nil, nil, err
	}
	if man != nil {
		if a.BaseFingerprint == "" {
			a.BaseFingerprint = man.BaseFingerprint
		}
		if a.BaseName == "" {
			a.BaseName = man.BaseName
		}
	}
	if err := Check(m, a); err != nil {
		return nil, nil, err
	}
	return permuteB(a, m.Config, false), man, nil
}

// WritePEFT writes a (in the model's layout) as a PEFT adapter folder in
// Hugging Face layout, atomically.
//
// For a base loaded from Gemma 3's multimodal Hugging Face checkpoint the
// tensors are named after its language model (model.language_model.layers…)
// unless a says otherwise, so PEFT loads them on that checkpoint.
func WritePEFT(dir string, a *adapters.Adapter, man adapters.Manifest, m *model.Model) error {
	out := permuteB(a, m.Config, true)
	if out.TextModel == "" {
		out.TextModel = m.HFTextModel
	}
	return adapters.WriteFolder(dir, out, man, adapters.SafetensorsCodec{})
}

// FromPEFTLayout returns a (read from PEFT files, Hugging Face layout) in
// the layout of a model with config c. Adapters whose q/k shapes do not fit
// c are returned unchanged (the shape check then refuses them).
func FromPEFTLayout(a *adapters.Adapter, c model.Config) *adapters.Adapter {
	return permuteB(a, c, false)
}
