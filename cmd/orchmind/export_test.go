package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orchmind/engine/chat"
	"orchmind/internal/testshared"
)

func orch(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("orchmind %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

// TestConvertTrainExport runs the CLI end to end: convert to GGUF, train,
// export a Modelfile and a merged GGUF whose greedy output equals
// base + adapter.
func TestConvertTrainExport(t *testing.T) {
	m := testshared.Path(t, "models/stories260K/stories260K.bin")
	dir := t.TempDir()
	g := filepath.Join(dir, "s.gguf")
	orch(t, "model", "convert", m, "--out", g)
	if info := orch(t, "model", "info", g); !strings.Contains(info, "fingerprint") || !strings.Contains(info, "layers                 5") {
		t.Fatalf("model info:\n%s", info)
	}
	orch(t, "train", "--model", g, "--data", "../../examples/facts.jsonl", "--out", dir, "--name", "facts")
	ad := filepath.Join(dir, "facts")
	line := orch(t, "export", "ollama", ad, "--base", g)
	mf, err := os.ReadFile(filepath.Join(ad, "Modelfile"))
	if err != nil || !strings.HasPrefix(line, "ollama create facts -f ") {
		t.Fatalf("ollama export: %q, %v", line, err)
	}
	if !strings.Contains(string(mf), `PARAMETER stop "<s>"`) {
		t.Errorf("Modelfile of a llama2.c base lacks the BOS stop:\n%s", mf)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(mf)), "\n") {
		kw := strings.Fields(l)[0]
		switch kw {
		case "#", "FROM", "ADAPTER", "TEMPLATE", "PARAMETER", `"""`:
		default:
			t.Errorf("Modelfile line %q: %s is not a documented Ollama keyword", l, kw)
		}
	}
	merged := filepath.Join(dir, "merged.gguf")
	orch(t, "export", "gguf", ad, "--model", g, "--out", merged)
	prompt := "Who helps the farmer?\n"
	a := orch(t, "generate", "--model", merged, "--temp", "0", "-n", "30", "--prompt", prompt)
	b := orch(t, "generate", "--model", g, "--adapter", ad, "--raw", "--temp", "0", "-n", "30", "--prompt", prompt)
	if a != b || !strings.Contains(a, "The kind girl helps the farmer.") {
		t.Fatalf("merged GGUF says %q, base+adapter %q", a, b)
	}
}

// TestModelfileTemplates: the Modelfile's TEMPLATE is the prompt exactly as
// the adapter was trained on it, and the end of the trained answer stops
// generation.
func TestModelfileTemplates(t *testing.T) {
	for name, want := range map[string][]string{
		"plain":  {"TEMPLATE \"\"\"{{ .Prompt }}\n\"\"\"\n"},
		"chatml": {"TEMPLATE \"\"\"<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n\"\"\"\n", `PARAMETER stop "<|im_end|>"`},
		"llama3": {"<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>", `PARAMETER stop "<|eot_id|>"`},
	} {
		tmpl, err := chat.TemplateByName(name)
		if err != nil {
			t.Fatal(err)
		}
		mf, err := Modelfile("/m/base.gguf", "/a/adapter.gguf", tmpl)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(mf, w) {
				t.Errorf("%s: Modelfile lacks %q:\n%s", name, w, mf)
			}
		}
		if !strings.Contains(mf, "FROM /m/base.gguf\nADAPTER /a/adapter.gguf\n") {
			t.Errorf("%s: FROM/ADAPTER lines missing:\n%s", name, mf)
		}
	}
}
