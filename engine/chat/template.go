package chat

import (
	"fmt"
	"strings"
)

// Message is one turn of a chat conversation.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Template formats a conversation into a prompt (not trained on) and a
// completion (trained on).
type Template struct {
	// Name is the template's identifier (see TemplateNames).
	Name string
}

// TemplateNames lists the supported chat templates.
var TemplateNames = []string{"plain", "chatml", "llama2", "llama3", "gemma", "alpaca"}

// TemplateByName returns the named template, or an error listing the known ones.
func TemplateByName(name string) (Template, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	switch n {
	case "llama-2", "llama_2", "inst":
		n = "llama2"
	case "llama-3", "llama_3":
		n = "llama3"
	case "none", "base", "":
		n = "plain"
	}
	for _, k := range TemplateNames {
		if k == n {
			return Template{Name: k}, nil
		}
	}
	return Template{}, fmt.Errorf("unknown chat template %q: known templates are %s (force one with --template)", name, strings.Join(TemplateNames, ", "))
}

// DetectTemplate picks a template from model metadata: either a template
// name, or the Jinja text of GGUF tokenizer.chat_template recognised by its
// markers. Empty metadata means a base model: the plain template.
func DetectTemplate(meta string) (Template, error) {
	s := strings.TrimSpace(meta)
	if s == "" {
		return Template{Name: "plain"}, nil
	}
	if !strings.Contains(s, "{") {
		return TemplateByName(s)
	}
	switch {
	case strings.Contains(s, "<|im_start|>"):
		return Template{Name: "chatml"}, nil
	case strings.Contains(s, "<|start_header_id|>"):
		return Template{Name: "llama3"}, nil
	case strings.Contains(s, "<start_of_turn>"):
		return Template{Name: "gemma"}, nil
	case strings.Contains(s, "[INST]"):
		return Template{Name: "llama2"}, nil
	case strings.Contains(s, "### Instruction") || strings.Contains(s, "### Response"):
		return Template{Name: "alpaca"}, nil
	}
	head := s
	if len(head) > 80 {
		head = head[:80] + "…"
	}
	return Template{}, fmt.Errorf("unrecognised chat template (no ChatML, Llama-2, Llama-3, Gemma or Alpaca markers) in %q: force one with --template (%s)", head, strings.Join(TemplateNames, ", "))
}

// Render splits a conversation into the prompt text (everything up to and
// including the header of the last assistant turn) and the completion (the
// last assistant turn plus its end marker). Earlier assistant turns are part
// of the prompt.
func (t Template) Render(msgs []Message) (prompt, completion string, err error) {
	last := -1
	for i, m := range msgs {
		if m.Role == "assistant" {
			last = i
		}
	}
	if last < 0 {
		return "", "", fmt.Errorf("conversation has no assistant message")
	}
	var b strings.Builder
	system := ""
	for i, m := range msgs[:last] {
		switch t.Name {
		case "chatml":
			fmt.Fprintf(&b, "<|im_start|>%s\n%s<|im_end|>\n", m.Role, m.Content)
		case "llama3":
			fmt.Fprintf(&b, "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>", m.Role, m.Content)
		case "gemma":
			role := m.Role
			if role == "assistant" {
				role = "model"
			}
			if role == "system" {
				system = m.Content + "\n\n"
				continue
			}
			fmt.Fprintf(&b, "<start_of_turn>%s\n%s%s<end_of_turn>\n", role, system, m.Content)
			system = ""
		case "llama2":
			switch m.Role {
			case "system":
				system = "<<SYS>>\n" + m.Content + "\n<</SYS>>\n\n"
			case "user":
				fmt.Fprintf(&b, "[INST] %s%s [/INST]", system, m.Content)
				system = ""
			default:
				fmt.Fprintf(&b, " %s </s><s>", m.Content)
			}
		case "alpaca":
			switch m.Role {
			case "system":
				fmt.Fprintf(&b, "%s\n\n", m.Content)
			case "user":
				fmt.Fprintf(&b, "### Instruction:\n%s\n\n", m.Content)
			default:
				fmt.Fprintf(&b, "### Response:\n%s\n\n", m.Content)
			}
		default: // plain
			if i > 0 {
				b.WriteString("\n")
			}
			b.WriteString(m.Content)
		}
	}
	ans := msgs[last].Content
	switch t.Name {
	case "chatml":
		b.WriteString("<|im_start|>assistant\n")
		return b.String(), ans + "<|im_end|>", nil
	case "llama3":
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
		return b.String(), ans + "<|eot_id|>", nil
	case "gemma":
		b.WriteString("<start_of_turn>model\n")
		return b.String(), ans + "<end_of_turn>", nil
	case "llama2":
		return b.String(), " " + ans, nil
	case "alpaca":
		b.WriteString("### Response:\n")
		return b.String(), ans, nil
	default:
		b.WriteString("\n")
		return b.String(), ans, nil
	}
}
