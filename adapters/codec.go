package adapters

import (
	"fmt"

	"orchmind/engine/safetensors"
)

// SafetensorsCodec stores adapter tensors as F32 safetensors, the file HF
// PEFT reads as adapter_model.safetensors.
type SafetensorsCodec struct{}

// WriteTensors writes ts to path atomically.
func (SafetensorsCodec) WriteTensors(path string, ts []Tensor, meta map[string]string) error {
	ws := make([]safetensors.WriteTensor, len(ts))
	for i, t := range ts {
		shape := make([]int64, len(t.Shape))
		for j, d := range t.Shape {
			shape[j] = int64(d)
		}
		ws[i] = safetensors.F32Tensor(t.Name, shape, t.Data)
	}
	return safetensors.Write(path, ws, meta)
}

// ReadTensors reads every tensor of path as float32.
func (SafetensorsCodec) ReadTensors(path string) ([]Tensor, map[string]string, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, nil, err
	}
	var ts []Tensor
	for _, name := range f.Names() {
		v, shape, err := f.Float32(name)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		s := make([]int, len(shape))
		for i, d := range shape {
			s[i] = int(d)
		}
		ts = append(ts, Tensor{Name: name, Shape: s, Data: v})
	}
	return ts, f.Metadata(), nil
}

// ReadTensorShapes reads only the header of path: every tensor's name and
// shape (Data nil), with the checks ReadTensors makes — offsets inside
// the file, sizes matching shapes and dtypes, dtypes that convert to
// float32 — but without reading or converting the tensor bytes.
func (SafetensorsCodec) ReadTensorShapes(path string) ([]Tensor, map[string]string, error) {
	f, err := safetensors.OpenHeader(path)
	if err != nil {
		return nil, nil, err
	}
	var ts []Tensor
	for _, name := range f.Names() {
		info, _ := f.Info(name)
		switch info.DType {
		case "F32", "F16", "BF16":
		default:
			return nil, nil, fmt.Errorf("%s: tensor %q has dtype %s; only F32, F16 and BF16 convert to float32", path, name, info.DType)
		}
		s := make([]int, len(info.Shape))
		for i, d := range info.Shape {
			s[i] = int(d)
		}
		ts = append(ts, Tensor{Name: name, Shape: s})
	}
	return ts, f.Metadata(), nil
}
