package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"orchmind/engine/chat"
	"orchmind/node/registry"
)

// adapterTemplate returns the prompt template the selected adapters were
// trained with (recorded in their manifests; the first one wins), and
// whether any records one.
func (s *Server) adapterTemplate(sel []registry.Selected) (chat.Template, bool) {
	for _, x := range sel {
		_, man, err := s.reg.Adapter(x.Name)
		if err != nil || man == nil {
			continue
		}
		if name := man.Template(); name != "" {
			if t, err := chat.TemplateByName(name); err == nil {
				return t, true
			}
		}
	}
	return chat.Template{}, false
}

// templatedPrompt formats prompt as a user's question in the template of
// the selected adapters, unless raw or none records one.
func (s *Server) templatedPrompt(prompt string, sel []registry.Selected, raw bool) (string, bool, error) {
	if raw || len(sel) == 0 {
		return prompt, false, nil
	}
	t, ok := s.adapterTemplate(sel)
	if !ok {
		return prompt, false, nil
	}
	p, _, err := t.Render([]chat.Message{{Role: "user", Content: strings.TrimSpace(prompt)}, {Role: "assistant"}})
	if err != nil {
		return "", false, badRequest("cannot format the prompt with template %s: %v", t.Name, err)
	}
	return p, true, nil
}

// OllamaChatRequest is the body of POST /api/chat (Ollama's, plus the
// adapter fields).
type OllamaChatRequest struct {
	Model    string              `json:"model"`
	Messages []chat.Message      `json:"messages"`
	Adapter  string              `json:"adapter,omitempty"`
	Adapters []registry.Selected `json:"adapters,omitempty"`
	Stream   *bool               `json:"stream,omitempty"`
	Options  Options             `json:"options"`
}

// OllamaChatChunk is one NDJSON line of a /api/chat response.
type OllamaChatChunk struct {
	Model           string       `json:"model"`
	CreatedAt       time.Time    `json:"created_at"`
	Message         chat.Message `json:"message"`
	Done            bool         `json:"done"`
	DoneReason      string       `json:"done_reason,omitempty"`
	PromptEvalCount int          `json:"prompt_eval_count,omitempty"`
	EvalCount       int          `json:"eval_count,omitempty"`
	TotalDuration   int64        `json:"total_duration,omitempty"`
	Error           string       `json:"error,omitempty"`
}

// handleOllamaChat answers the conversation in messages (the client keeps
// it and sends it whole each turn), formatted with the template the
// adapters were trained with, else the node's chat template.
func (s *Server) handleOllamaChat(w http.ResponseWriter, r *http.Request) {
	var req OllamaChatRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	name, j, err := s.prepareChat(req.Model, req.Adapter, req.Adapters, req.Messages, req.Options)
	if err != nil {
		s.fail(w, err)
		return
	}
	start := time.Now()
	msg := func(c string) chat.Message { return chat.Message{Role: "assistant", Content: c} }
	if req.Stream != nil && !*req.Stream {
		var out strings.Builder
		n, err := s.run(r.Context(), j, func(p string) error { out.WriteString(p); return nil })
		if err != nil {
			s.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, OllamaChatChunk{Model: name, CreatedAt: now(), Message: msg(out.String()), Done: true, DoneReason: doneReason(j, n),
			PromptEvalCount: j.promptN, EvalCount: n, TotalDuration: time.Since(start).Nanoseconds()})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	n, err := s.run(r.Context(), j, func(p string) error {
		if err := enc.Encode(OllamaChatChunk{Model: name, CreatedAt: now(), Message: msg(p)}); err != nil {
			return err
		}
		return rc.Flush()
	})
	last := OllamaChatChunk{Model: name, CreatedAt: now(), Message: msg(""), Done: true, DoneReason: doneReason(j, n),
		PromptEvalCount: j.promptN, EvalCount: n, TotalDuration: time.Since(start).Nanoseconds()}
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		last = OllamaChatChunk{Model: name, CreatedAt: now(), Message: msg(""), Done: true, DoneReason: "error", Error: err.Error()}
	}
	_ = enc.Encode(last)
	_ = rc.Flush()
}
