package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/internal/testshared"
)

// TestModelConvertKeepsGreedyText is the conversion's acceptance check:
// stories260K.bin → GGUF F32 generates, greedily, exactly what the .bin
// generates and what llama2.c's run.c printed (the fixture of
// engine/model); the Q8_0 GGUF is reported (it drifts after a while).
func TestModelConvertKeepsGreedyText(t *testing.T) {
	bin := testshared.Path(t, "models/stories260K/stories260K.bin")
	dir := t.TempDir()
	f32, q8 := filepath.Join(dir, "s.gguf"), filepath.Join(dir, "q.gguf")
	orch(t, "model", "convert", bin, "--out", f32, "--quant", "f32")
	orch(t, "model", "convert", "--quant", "q8_0", bin, "--out", q8)
	gen := func(m string) string {
		return orch(t, "generate", "--model", m, "--prompt", "Once upon a time", "--temp", "0")
	}
	ref := gen(bin)
	runc, err := os.ReadFile("../../engine/model/testdata/stories260K_once_upon_a_time.runc.txt")
	if err != nil {
		t.Fatal(err)
	}
	if ref != string(runc) {
		t.Fatalf(".bin text differs from run.c's:\n%s\n---\n%s", ref, runc)
	}
	if got := gen(f32); got != ref {
		t.Fatalf("GGUF F32 text differs from the .bin's:\n%s\n---\n%s", got, ref)
	}
	q := gen(q8)
	n := 0
	for n < len(q) && n < len(ref) && q[n] == ref[n] {
		n++
	}
	t.Logf("GGUF Q8_0 greedy text: first %d of %d bytes equal the F32 text", n, len(ref))
	if n < 50 {
		t.Errorf("GGUF Q8_0 text diverges after %d bytes", n)
	}

	infoBin, infoF32, infoQ8 := orch(t, "model", "info", bin), orch(t, "model", "info", f32), orch(t, "model", "info", q8)
	line := func(info, key string) string {
		for _, l := range strings.Split(info, "\n") {
			if strings.HasPrefix(l, key) {
				return strings.TrimSpace(strings.TrimPrefix(l, key))
			}
		}
		t.Fatalf("no %q line in:\n%s", key, info)
		return ""
	}
	if line(infoBin, "fingerprint") != line(infoF32, "fingerprint") || line(infoBin, "fingerprint") == line(infoQ8, "fingerprint") {
		t.Errorf("fingerprints: .bin %s, F32 GGUF %s, Q8_0 GGUF %s", line(infoBin, "fingerprint"), line(infoF32, "fingerprint"), line(infoQ8, "fingerprint"))
	}
	if line(infoBin, "shape id") != line(infoQ8, "shape id") {
		t.Error("the Q8_0 copy has another shape id")
	}
	for key, want := range map[string]string{"layers": "5", "vocabulary": "512", "heads": "8 query, 4 key/value", "parameters": "260032", // 512·64 + 5·(2·64·64 + 2·32·64 + 3·172·64 + 2·64) + 64
		"context": "512", "classifier": "shared with the embedding"} {
		if got := line(infoF32, key); got != want {
			t.Errorf("model info %s: %q, want %q", key, got, want)
		}
	}
	if got := line(infoQ8, "tensor types"); !strings.Contains(got, "Q8_0 ×") || !strings.Contains(got, "F16 ×") {
		t.Errorf("Q8_0 tensor types: %q", got)
	}
}

func TestModelCommandErrors(t *testing.T) {
	bin := testshared.Path(t, "models/stories260K/stories260K.bin")
	out := filepath.Join(t.TempDir(), "x.gguf")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"model"}, 2, "model info PATH"},
		{[]string{"model", "frob"}, 2, "unknown model command"},
		{[]string{"model", "info"}, 2, "one model path"},
		{[]string{"model", "convert", bin}, 2, "--out"},
		{[]string{"model", "convert", bin, "--out", out, "--quant", "q3_k"}, 2, "unknown tensor type"},
		{[]string{"model", "info", filepath.Join(t.TempDir(), "none.gguf")}, 1, "none.gguf"},
	} {
		code, _, stderr := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("orchmind %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(c.args, " "), code, stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused conversion wrote its output")
	}
}

// TestModelInfoWithoutTokenizer: a Hugging Face folder without a tokenizer
// (here the Qwen2 reference fixture) is still described, and says what is
// missing.
func TestModelInfoWithoutTokenizer(t *testing.T) {
	info := orch(t, "model", "info", filepath.Join("..", "..", "testdata", "hf", "tiny-qwen2-torch"))
	for _, want := range []string{"architecture           qwen2", "fingerprint", "--tokenizer PATH"} {
		if !strings.Contains(info, want) {
			t.Errorf("model info lacks %q:\n%s", want, info)
		}
	}
}
