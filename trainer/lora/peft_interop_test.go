package lora

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"orchmind/adapters"
	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/internal/atomicfile"
)

// interopDir holds PEFT files written by orchmind for the Hugging Face
// fixture model (testdata/hf/tiny-llama-torch) and the logits orchmind
// computes with them. scripts/check_peft_interop.py loads the same files
// with HF PEFT (PeftModel.from_pretrained on transformers' LlamaForCausalLM)
// and compares its logits with these; where only PyTorch is installed, it
// merges the adapter into the weights by PEFT's key names and runs a
// PyTorch transcription of the model instead.
const interopDir = "testdata/peft/interop"

// interopTokens are the positions the logits are compared at.
var interopTokens = []int{1, 5, 17, 42, 3, 95, 0, 63, 7, 8, 88, 12, 12, 40, 2, 77}

type interopLogits struct {
	Base   string      `json:"base"`
	Tokens []int       `json:"tokens"`
	Logits [][]float32 `json:"logits"`
}

// TestPEFTInteropFixture keeps interopDir true: orchmind must still write
// those PEFT files byte for byte for the same adapter, and compute the same
// logits with them. ORCHMIND_UPDATE_INTEROP=1 rewrites the folder.
func TestPEFTInteropFixture(t *testing.T) {
	base := filepath.Join("..", "..", "testdata", "hf", "tiny-llama-torch")
	m, err := model.LoadHF(base, quant.F32)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(m, 4, 8, nil, 7)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(11, 12))
	for _, k := range a.SortedKeys() {
		for i := range a.Pairs[k].B {
			a.Pairs[k].B[i] = float32(0.2 * r.NormFloat64()) // B = 0 would test nothing
		}
	}
	plug, err := NewPlug(m, Weighted{a, 1})
	if err != nil {
		t.Fatal(err)
	}
	st := m.NewState()
	st.SetDelta(plug)
	got := interopLogits{Base: "testdata/hf/tiny-llama-torch", Tokens: interopTokens}
	for pos, id := range interopTokens {
		got.Logits = append(got.Logits, append([]float32(nil), st.Forward(id, pos)...))
	}
	dir := t.TempDir()
	man := adapters.Manifest{Announced: adapters.Announced{Name: "peft-interop", BaseName: "tiny-llama-torch"}}
	if err := WritePEFT(filepath.Join(dir, "adapter"), a, man, m); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("ORCHMIND_UPDATE_INTEROP") == "1" {
		if err := os.RemoveAll(interopDir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(interopDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WritePEFT(filepath.Join(interopDir, "adapter"), a, man, m); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(got)
		if err := atomicfile.WriteFile(filepath.Join(interopDir, "orchmind_logits.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", interopDir)
		return
	}
	for _, f := range []string{"adapter_config.json", "adapter_model.safetensors"} {
		fresh, err := os.ReadFile(filepath.Join(dir, "adapter", f))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join(interopDir, "adapter", f))
		if err != nil {
			t.Fatalf("%v (ORCHMIND_UPDATE_INTEROP=1 go test -run PEFTInterop ./trainer/lora/ writes it)", err)
		}
		if !bytes.Equal(fresh, committed) {
			t.Fatalf("%s: orchmind no longer writes the PEFT file that scripts/check_peft_interop.py checks (ORCHMIND_UPDATE_INTEROP=1 rewrites it; then run the script again)", f)
		}
	}
	raw, err := os.ReadFile(filepath.Join(interopDir, "orchmind_logits.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want interopLogits
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if len(want.Logits) != len(got.Logits) {
		t.Fatalf("%d positions of logits committed, %d computed", len(want.Logits), len(got.Logits))
	}
	for pos := range want.Logits {
		for i, v := range want.Logits[pos] {
			if d := math.Abs(float64(got.Logits[pos][i] - v)); d > 1e-5*(1+math.Abs(float64(v))) {
				t.Fatalf("position %d logit %d: %g now, %g committed", pos, i, got.Logits[pos][i], v)
			}
		}
	}
}
