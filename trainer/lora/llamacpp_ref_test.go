package lora

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"orchmind/engine/model"
	"orchmind/engine/quant"
	"orchmind/internal/testshared"
)

// TestGGUFLoRAMatchesLlamaCpp checks the llama.cpp LoRA file against
// llama.cpp itself. testdata/llamacpp holds an adapter orchmind trained on
// stories260K (rank 2, all seven projections) and the logits llama.cpp gave
// for a prompt with that folder's adapter.gguf plugged in (fixture.json says
// which llama.cpp and how it ran). The test requires that orchmind, from
// the PEFT files of the same folder, writes that adapter.gguf byte for byte
// and computes the same logits at every prompt position (to 1e-4 of the
// largest), and that the adapter matters (without it the logits are far
// off), so both the file layout and the math agree with llama.cpp.
func TestGGUFLoRAMatchesLlamaCpp(t *testing.T) {
	dir := filepath.Join("testdata", "llamacpp")
	m, err := model.LoadLlama2C(testshared.Path(t, "models/stories260K/stories260K.bin"), quant.F32)
	if err != nil {
		t.Fatal(err)
	}
	a, man, err := ReadPEFT(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	got := filepath.Join(t.TempDir(), GGUFFile)
	if err := WriteGGUF(got, a, man.BaseName, m.Config); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, GGUFFile))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(got); !bytes.Equal(b, want) {
		t.Fatalf("WriteGGUF no longer writes the adapter.gguf llama.cpp was checked with (%d bytes, want %d)", len(b), len(want))
	}

	var fx struct {
		IDs   []int `json:"ids"`
		Vocab int   `json:"vocab"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	ref, err := os.ReadFile(filepath.Join(dir, "logits.f32"))
	if err != nil {
		t.Fatal(err)
	}
	if fx.Vocab != m.Vocab || len(ref) != 4*len(fx.IDs)*fx.Vocab {
		t.Fatalf("fixture: vocab %d, %d bytes of logits for %d positions; model vocab %d", fx.Vocab, len(ref), len(fx.IDs), m.Vocab)
	}
	plug, err := NewPlug(m, Weighted{a, 1})
	if err != nil {
		t.Fatal(err)
	}
	diff := func(withAdapter bool) (worst, top float64) {
		st := m.NewState()
		if withAdapter {
			st.SetDelta(plug)
		}
		for pos, id := range fx.IDs {
			lg := st.Forward(id, pos)
			for i, v := range lg {
				r := math.Float32frombits(binary.LittleEndian.Uint32(ref[4*(pos*fx.Vocab+i):]))
				worst = math.Max(worst, math.Abs(float64(v-r)))
				top = math.Max(top, math.Abs(float64(r)))
			}
		}
		return worst, top
	}
	worst, top := diff(true)
	t.Logf("max |orchmind − llama.cpp| = %.3g over %d positions (largest logit %.3g)", worst, len(fx.IDs), top)
	if worst > 1e-4*top {
		t.Fatalf("logits with the adapter differ from llama.cpp's by %g (largest %g)", worst, top)
	}
	if base, _ := diff(false); base < 0.1*top {
		t.Fatalf("without the adapter the logits differ from the fixture by only %g: the fixture does not test the adapter", base)
	}
}
