package chat

import (
	"strings"
	"testing"
)

func TestTemplates(t *testing.T) {
	msgs := []Message{{Role: "system", Content: "S"}, {Role: "user", Content: "U"}, {Role: "assistant", Content: "A"}}
	want := map[string][2]string{
		"plain":  {"S\nU\n", "A"},
		"chatml": {"<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n", "A<|im_end|>"},
		"llama2": {"[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]", " A"},
		"llama3": {"<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "A<|eot_id|>"},
		"gemma":  {"<start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n", "A<end_of_turn>"},
		"alpaca": {"S\n\n### Instruction:\nU\n\n### Response:\n", "A"},
	}
	for _, name := range TemplateNames {
		tp, err := TemplateByName(name)
		if err != nil {
			t.Fatal(err)
		}
		p, c, err := tp.Render(msgs)
		if err != nil {
			t.Fatal(err)
		}
		if p != want[name][0] || c != want[name][1] {
			t.Errorf("%s: got %q + %q", name, p, c)
		}
	}
	jinja := map[string]string{
		"{% for m in messages %}<|im_start|>{{ m.role }}":  "chatml",
		"{{ '<|start_header_id|>' + message['role'] }}":    "llama3",
		"{{ '<start_of_turn>' + role }}":                   "gemma",
		"{{ bos_token + '[INST] ' + message['content'] }}": "llama2",
		"":       "plain",
		"ChatML": "chatml",
	}
	for meta, name := range jinja {
		tp, err := DetectTemplate(meta)
		if err != nil || tp.Name != name {
			t.Errorf("detect %q: %v %v, want %s", meta, tp, err, name)
		}
	}
	if _, err := DetectTemplate("{{ weird }}"); err == nil || !strings.Contains(err.Error(), "--template") {
		t.Errorf("unknown jinja: %v", err)
	}
	if _, err := TemplateByName("vicuna"); err == nil {
		t.Error("unknown name accepted")
	}
}
