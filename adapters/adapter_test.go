package adapters

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jsonCodec is a test-only TensorCodec (the real one is safetensors).
type jsonCodec struct{}

func (jsonCodec) WriteTensors(path string, ts []Tensor, meta map[string]string) error {
	b, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func (jsonCodec) ReadTensors(path string) ([]Tensor, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var ts []Tensor
	return ts, nil, json.Unmarshal(b, &ts)
}

func sample() *Adapter {
	a := &Adapter{Rank: 2, Alpha: 4, Dropout: 0.05, TargetModules: []Module{Q, Down}, BaseFingerprint: "sha256:abc", BaseName: "stories260K", Pairs: map[Key]*Pair{}}
	for l := range 2 {
		a.Pairs[Key{l, Q}] = &Pair{In: 3, Out: 3, A: []float32{1, 2, 3, 4, 5, 6}, B: []float32{.1, .2, .3, .4, .5, float32(l)}}
		a.Pairs[Key{l, Down}] = &Pair{In: 4, Out: 3, A: []float32{1, 2, 3, 4, 5, 6, 7, 8}, B: []float32{-1, -2, -3, -4, -5, -6}}
	}
	return a
}

func TestFolderRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ad")
	a := sample()
	m := Manifest{Announced: Announced{Name: "facts", BaseFingerprint: a.BaseFingerprint, BaseName: a.BaseName, Rank: 2, Alpha: 4, TargetModules: []string{"q_proj", "down_proj"}},
		TrainLossAfter: 0.01, Created: time.Unix(1700000000, 0).UTC(), OrchmindVersion: "dev"}
	for range 2 { // second write replaces the first
		if err := WriteFolder(dir, a, m, jsonCodec{}); err != nil {
			t.Fatal(err)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(dir))
	if len(ents) != 1 {
		t.Errorf("temp folders left behind: %v", ents)
	}
	var cfg map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["peft_type"] != "LORA" || cfg["task_type"] != "CAUSAL_LM" || cfg["bias"] != "none" || cfg["fan_in_fan_out"] != false || cfg["r"] != 2.0 || cfg["lora_alpha"] != 4.0 {
		t.Errorf("config %v", cfg)
	}
	got, man, err := ReadFolder(dir, jsonCodec{})
	if err != nil {
		t.Fatal(err)
	}
	if man == nil || man.Name != "facts" || man.Parents == nil || !man.Created.Equal(m.Created) {
		t.Errorf("manifest %+v", man)
	}
	if got.Rank != 2 || got.Alpha != 4 || got.BaseFingerprint != "sha256:abc" || len(got.Pairs) != 4 {
		t.Fatalf("adapter %+v", got)
	}
	for k, p := range a.Pairs {
		q := got.Pairs[k]
		if q == nil || q.In != p.In || q.Out != p.Out || q.B[5] != p.B[5] || q.A[len(q.A)-1] != p.A[len(p.A)-1] {
			t.Errorf("%v: %+v vs %+v", k, q, p)
		}
	}
}

func TestNames(t *testing.T) {
	a, b, err := PEFTNames(Key{7, Gate})
	if err != nil || a != "base_model.model.model.layers.7.mlp.gate_proj.lora_A.weight" || b != "base_model.model.model.layers.7.mlp.gate_proj.lora_B.weight" {
		t.Errorf("%s %s %v", a, b, err)
	}
	k, isA, err := ParsePEFTName("base_model.model.model.layers.12.self_attn.v_proj.lora_B.weight")
	if err != nil || k != (Key{12, V}) || isA {
		t.Errorf("%v %v %v", k, isA, err)
	}
	for _, bad := range []string{"model.layers.1.q_proj", "base_model.model.model.layers.1.mlp.q_proj.lora_A.weight", "base_model.model.model.layers.1.self_attn.q_proj.weight"} {
		if _, _, err := ParsePEFTName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	ga, gb, _ := GGUFNames(Key{0, O})
	if ga != "blk.0.attn_output.weight.lora_a" || gb != "blk.0.attn_output.weight.lora_b" {
		t.Errorf("%s %s", ga, gb)
	}
}

func TestRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ad")
	if err := WriteFolder(dir, sample(), Manifest{}, jsonCodec{}); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, SafetensorsFile))
	os.WriteFile(filepath.Join(dir, "adapter_model.bin"), []byte("\x80\x02"), 0o644)
	_, _, err := ReadFolder(dir, jsonCodec{})
	if err == nil || !strings.Contains(err.Error(), "pickle") || !strings.Contains(err.Error(), "safetensors") {
		t.Errorf("pickle: %v", err)
	}
	if !IsPickle("x.PT") || IsPickle("x.safetensors") {
		t.Error("IsPickle")
	}
	bad := sample()
	bad.Pairs[Key{0, Q}].A = bad.Pairs[Key{0, Q}].A[:5]
	if err := WriteFolder(filepath.Join(t.TempDir(), "b"), bad, Manifest{}, jsonCodec{}); err == nil || !strings.Contains(err.Error(), "lora_A has 5 values") {
		t.Errorf("bad shape: %v", err)
	}
	if err := CheckBase("sha256:aa", "m1", "sha256:bb", "m2"); err == nil || !strings.Contains(err.Error(), "sha256:aa") || !strings.Contains(err.Error(), "sha256:bb") {
		t.Errorf("mismatch: %v", err)
	}
	if err := CheckBase("x", "m", "x", "m"); err != nil {
		t.Error(err)
	}
}

func TestGGUFTensorsAndMeta(t *testing.T) {
	a := sample()
	ts, err := GGUFTensors(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 8 || ts[0].Name != "blk.0.ffn_down.weight.lora_a" || ts[0].Shape[0] != 2 || ts[0].Shape[1] != 4 || ts[1].Shape[0] != 3 || ts[1].Shape[1] != 2 {
		t.Errorf("tensors %+v", ts[:2])
	}
	m := GGUFMetadata(a)
	if m["general.type"] != "adapter" || m["adapter.type"] != "lora" || m["adapter.lora.alpha"] != float32(4) {
		t.Errorf("meta %v", m)
	}
}

// TestFolderRefusesHugeManifests: a pulled folder comes from a peer, and
// its JSON files are read whole into memory; a folder whose
// adapter_config.json or orchmind.json is over MaxJSONFileSize (here valid
// JSON padded with spaces) is refused instead of read.
func TestFolderRefusesHugeManifests(t *testing.T) {
	for _, name := range []string{ConfigFile, ManifestFile} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ad")
			a := sample()
			m := Manifest{Announced: Announced{Name: "facts", BaseFingerprint: a.BaseFingerprint, Rank: 2, Alpha: 4}}
			if err := WriteFolder(dir, a, m, jsonCodec{}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := ReadFolder(dir, jsonCodec{}); err != nil {
				t.Fatalf("the folder as written: %v", err)
			}
			p := filepath.Join(dir, name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			padded := append([]byte(strings.Repeat(" ", MaxJSONFileSize)), b...)
			if err := os.WriteFile(p, padded, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err = ReadFolder(dir, jsonCodec{})
			if err == nil || !strings.Contains(err.Error(), "a manifest may have") {
				t.Fatalf("ReadFolder with a %d-byte %s: err = %v, want a refusal for its size", len(padded), name, err)
			}
		})
	}
}

// TestParsePEFTNameGemma3: LoRA tensors on the language model of Gemma 3's
// multimodal checkpoint, in either transformers naming, map to the same
// keys as a …ForCausalLM's; vision-tower ones are recognised to be skipped.
func TestParsePEFTNameGemma3(t *testing.T) {
	for _, n := range []string{
		"base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight",
		"base_model.model.language_model.model.layers.3.self_attn.q_proj.lora_A.weight",
		"base_model.model.model.language_model.layers.3.self_attn.q_proj.lora_A.weight",
	} {
		k, isA, err := ParsePEFTName(n)
		if err != nil || !isA || k != (Key{Layer: 3, Module: Q}) {
			t.Errorf("%s: %+v %v %v", n, k, isA, err)
		}
		if IsPEFTVisionName(n) {
			t.Errorf("%s taken for the vision tower", n)
		}
	}
	for _, n := range []string{"base_model.model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.lora_A.weight",
		"base_model.model.model.multi_modal_projector.mm_input_projection.lora_B.weight"} {
		if !IsPEFTVisionName(n) {
			t.Errorf("%s not recognised as the vision tower's", n)
		}
	}
}
