package lora

import (
	"fmt"
	"sort"

	"orchmind/adapters"
	"orchmind/engine/gguf"
	"orchmind/engine/model"
	"orchmind/engine/quant"
)

// GGUFFile is the name of the llama.cpp LoRA file inside an adapter folder.
const GGUFFile = "adapter.gguf"

// WriteGGUF writes a (in the model's layout, which is GGUF's) as a llama.cpp
// GGUF LoRA adapter: general.type "adapter", adapter.type "lora",
// adapter.lora.alpha, and blk.N.<proj>.weight.lora_a [ne: in, r] / lora_b
// [ne: r, out] in F32, as llama.cpp's convert_lora_to_gguf.py writes them.
// c is the base's config: for a Qwen2 base the file says so, and the q/k
// lora_b rows go to the rotate-half order llama.cpp keeps qwen2's q/k rows in.
func WriteGGUF(path string, a *adapters.Adapter, baseName string, c model.Config) error {
	meta := adapters.GGUFMetadata(a)
	meta["general.architecture"] = c.ArchName()
	if c.NeoxRope() {
		a = permuteB(a, c, true)
	}
	if baseName != "" {
		meta["general.name"] = baseName + " LoRA"
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var kvs []gguf.KV
	for _, k := range keys {
		kvs = append(kvs, gguf.KV{Key: k, Value: meta[k]})
	}
	ts, err := adapters.GGUFTensors(a)
	if err != nil {
		return err
	}
	var wts []gguf.WriteTensor
	for _, t := range ts {
		data, err := quant.Quantize(quant.F32, t.Data, nil)
		if err != nil {
			return err
		}
		dims := make([]uint64, len(t.Shape))
		for i, d := range t.Shape {
			dims[len(t.Shape)-1-i] = uint64(d)
		}
		wts = append(wts, gguf.WriteTensor{Name: t.Name, Dims: dims, Type: quant.F32, Data: data})
	}
	if err := gguf.Write(path, kvs, wts); err != nil {
		return fmt.Errorf("write GGUF LoRA: %w", err)
	}
	return nil
}
