package adapters

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"orchmind/engine/safetensors"
)

// TestSafetensorsFolderRoundTrip writes a real PEFT folder and reads it back
// bit-exactly, checking the key names and shapes HF PEFT expects.
func TestSafetensorsFolderRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ad")
	a := sample()
	if err := WriteFolder(dir, a, Manifest{Announced: Announced{Name: "facts"}}, SafetensorsCodec{}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(filepath.Join(dir, SafetensorsFile))
	if err != nil {
		t.Fatal(err)
	}
	info, ok := f.Info("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight")
	if !ok || info.DType != "F32" || !reflect.DeepEqual(info.Shape, []int64{2, 4}) {
		t.Fatalf("lora_A of down_proj: %+v (present %v); names %v", info, ok, f.Names())
	}
	info, ok = f.Info("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")
	if !ok || !reflect.DeepEqual(info.Shape, []int64{3, 2}) {
		t.Fatalf("lora_B of q_proj: %+v (present %v)", info, ok)
	}
	got, _, err := ReadFolder(dir, SafetensorsCodec{})
	if err != nil {
		t.Fatal(err)
	}
	for k, p := range a.Pairs {
		q := got.Pairs[k]
		if q == nil || !reflect.DeepEqual(q.A, p.A) || !reflect.DeepEqual(q.B, p.B) {
			t.Fatalf("%v: got %+v, want %+v", k, q, p)
		}
	}
}

// TestCheckFolder: CheckFolder accepts what ReadFolder accepts, with the
// same manifest, and refuses with it what ReadFolder refuses, without
// reading the tensor data.
func TestCheckFolder(t *testing.T) {
	write := func(a *Adapter, tensors func([]Tensor) []Tensor) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "ad")
		if err := WriteFolder(dir, a, Manifest{Announced: Announced{Name: "facts", BaseFingerprint: "sha256:abc"}}, SafetensorsCodec{}); err != nil {
			t.Fatal(err)
		}
		if tensors != nil {
			ts, _, err := SafetensorsCodec{}.ReadTensors(filepath.Join(dir, SafetensorsFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := (SafetensorsCodec{}).WriteTensors(filepath.Join(dir, SafetensorsFile), tensors(ts), nil); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	good := write(sample(), nil)
	man, err := CheckFolder(good, SafetensorsCodec{})
	if err != nil {
		t.Fatal(err)
	}
	_, want, _ := ReadFolder(good, SafetensorsCodec{})
	if !reflect.DeepEqual(man, want) {
		t.Fatalf("manifest %+v, ReadFolder's %+v", man, want)
	}
	bad := map[string]string{
		"pair without B": write(sample(), func(ts []Tensor) []Tensor {
			var out []Tensor
			for _, x := range ts {
				if !strings.Contains(x.Name, "layers.0.self_attn.q_proj.lora_B") {
					out = append(out, x)
				}
			}
			return out
		}),
		"A not [r, in]": write(sample(), func(ts []Tensor) []Tensor {
			for i, x := range ts {
				if strings.Contains(x.Name, "lora_A") {
					ts[i].Shape = []int{x.Shape[1], x.Shape[0]}
					break
				}
			}
			return ts
		}),
		"3-D": write(sample(), func(ts []Tensor) []Tensor {
			ts[0].Shape = append([]int{1}, ts[0].Shape...)
			return ts
		}),
	}
	trunc := write(sample(), nil)
	st := filepath.Join(trunc, SafetensorsFile)
	b, _ := os.ReadFile(st)
	if err := os.WriteFile(st, b[:len(b)-4], 0o644); err != nil {
		t.Fatal(err)
	}
	bad["truncated"] = trunc
	for name, dir := range bad {
		_, _, rerr := ReadFolder(dir, SafetensorsCodec{})
		_, cerr := CheckFolder(dir, SafetensorsCodec{})
		if rerr == nil || cerr == nil {
			t.Errorf("%s: ReadFolder %v, CheckFolder %v; want both to refuse", name, rerr, cerr)
		}
	}
}
