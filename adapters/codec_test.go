package adapters

import (
	"path/filepath"
	"reflect"
	"testing"

	"orchmind/trainer/safetensors"
)

// TestSafetensorsFolderRoundTrip writes a real PEFT folder and reads it back
// bit-exactly, checking the key names and shapes HF PEFT expects.
func TestSafetensorsFolderRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ad")
	a := sample()
	if err := WriteFolder(dir, a, Manifest{Name: "facts"}, SafetensorsCodec{}); err != nil {
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
