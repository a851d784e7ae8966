package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"orchmind/engine/chat"
	"orchmind/engine/model"
	"orchmind/node/registry"
)

// MaxTemperature bounds the sampling temperature; beyond it text is noise.
const MaxTemperature = 10

// Options are Ollama's generation options that orchmind honours.
type Options struct {
	Temperature *float64 `json:"temperature,omitempty"`
	NumPredict  *int     `json:"num_predict,omitempty"`
	Seed        *uint64  `json:"seed,omitempty"`
}

// GenerateRequest is the body of POST /api/generate (Ollama's, plus the
// adapter fields).
type GenerateRequest struct {
	// Model is the base name, "base+adapter[+adapter…]", or an adapter
	// name; empty means the base (plus Adapter/Adapters).
	Model    string              `json:"model"`
	Prompt   string              `json:"prompt"`
	Adapter  string              `json:"adapter,omitempty"`
	Adapters []registry.Selected `json:"adapters,omitempty"`
	Stream   *bool               `json:"stream,omitempty"`
	Options  Options             `json:"options"`
	// Raw continues the prompt as it is; otherwise a prompt to adapters
	// that record their training template is formatted as a question in it.
	Raw bool `json:"raw,omitempty"`
}

// GenerateChunk is one NDJSON line of a /api/generate response.
type GenerateChunk struct {
	Model           string    `json:"model"`
	CreatedAt       time.Time `json:"created_at"`
	Response        string    `json:"response"`
	Done            bool      `json:"done"`
	DoneReason      string    `json:"done_reason,omitempty"`
	PromptEvalCount int       `json:"prompt_eval_count,omitempty"`
	EvalCount       int       `json:"eval_count,omitempty"`
	EvalDuration    int64     `json:"eval_duration,omitempty"`
	TotalDuration   int64     `json:"total_duration,omitempty"`
	Error           string    `json:"error,omitempty"`
}

// genJob is a validated generation request.
type genJob struct {
	modelName string
	model     *model.Model
	delta     model.Delta
	prompt    string
	promptN   int
	sampling  model.Sampling
	// trimLead drops the space before the answer's first word.
	trimLead bool
}

// selection turns the model string and adapter fields into adapters.
func (s *Server) selection(modelName, adapter string, ads []registry.Selected) (string, []registry.Selected, error) {
	b := s.cfg.Base
	sel := append([]registry.Selected(nil), ads...)
	if adapter != "" {
		sel = append(sel, registry.Selected{Name: adapter})
	}
	name := strings.TrimSuffix(modelName, ":latest")
	switch {
	case name == "" || name == b.Name:
	case strings.HasPrefix(name, b.Name+"+"):
		for _, a := range strings.Split(strings.TrimPrefix(name, b.Name+"+"), "+") {
			sel = append(sel, registry.Selected{Name: a})
		}
	default:
		if _, err := s.reg.Get(name); err != nil {
			return "", nil, fmt.Errorf("%w: unknown model %q: this node serves base %q; use \"%s\", \"%s+ADAPTER\" or the name of a loaded adapter (GET /api/adapters lists them)",
				errNotFound, modelName, b.Name, b.Name, b.Name)
		}
		sel = append(sel, registry.Selected{Name: name})
	}
	full := b.Name
	for _, x := range sel {
		full += "+" + x.Name
	}
	return full, sel, nil
}

// prepare validates the sampling options and the prompt.
func (s *Server) prepare(modelName, prompt string, sel []registry.Selected, o Options) (*genJob, error) {
	m := s.cfg.Base.Model
	j := &genJob{modelName: modelName, prompt: prompt, sampling: model.Sampling{MaxNew: -1, Temperature: 0.8, Seed: rand.Uint64()}}
	if t := o.Temperature; t != nil {
		if math.IsNaN(*t) || *t < 0 || *t > MaxTemperature {
			return nil, badRequest("temperature %v is out of range: use 0 (always the most likely word) up to %d (0.7–1 is usual)", *t, MaxTemperature)
		}
		j.sampling.Temperature = float32(*t)
	}
	if n := o.NumPredict; n != nil {
		switch {
		case *n < -1:
			return nil, badRequest("num_predict %d is negative: give the number of tokens to generate, or -1 for the default", *n)
		case *n > m.SeqLen:
			return nil, badRequest("num_predict %d is more than the model's context of %d tokens: ask for at most %d", *n, m.SeqLen, m.SeqLen)
		}
		j.sampling.MaxNew = *n
	}
	if o.Seed != nil {
		j.sampling.Seed = *o.Seed
	}
	j.promptN = len(s.cfg.Base.Tok.Encode(prompt, true, false))
	if j.promptN > m.SeqLen {
		return nil, badRequest("the prompt is %d tokens, longer than the model's context of %d: shorten it", j.promptN, m.SeqLen)
	}
	// Resolve here so that an unknown adapter or a bad weight is a 4xx
	// before any streaming starts; the delta stays valid if the adapter is
	// unloaded meanwhile.
	var err error
	if j.model, j.delta, err = s.reg.Resolve(sel); err != nil {
		return nil, err
	}
	return j, nil
}

// run generates, calling emit with each new piece (the prompt is not
// echoed). It returns the number of pieces.
func (s *Server) run(ctx context.Context, j *genJob, emit func(string) error) (int, error) {
	select {
	case s.gen <- struct{}{}:
		defer func() { <-s.gen }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	j.sampling.Delta = j.delta
	n, first := 0, true
	var pending []byte
	err := model.Generate(ctx, j.model, s.cfg.Base.Tok, j.prompt, j.sampling, func(p string) error {
		if first {
			first = false
			return nil
		}
		if j.trimLead && n == 0 && len(pending) == 0 {
			if p = strings.TrimLeft(p, " "); p == "" {
				return nil
			}
		}
		n++
		pending = append(pending, p...)
		cut := utf8Cut(pending)
		if cut == 0 {
			return nil
		}
		out := string(pending[:cut])
		pending = append(pending[:0], pending[cut:]...)
		return emit(out)
	})
	if err == nil && len(pending) > 0 {
		err = emit(string(pending))
	}
	return n, err
}

// utf8Cut is the length of the prefix of b that ends on a character
// boundary: byte-level tokens may split a character, and a piece sent
// alone in JSON would turn into U+FFFD.
func utf8Cut(b []byte) int {
	for i := max(0, len(b)-3); i < len(b); i++ {
		if utf8.RuneStart(b[i]) && !utf8.FullRune(b[i:]) {
			return i
		}
	}
	return len(b)
}

func doneReason(j *genJob, n int) string {
	if j.sampling.MaxNew >= 0 && n >= j.sampling.MaxNew {
		return "length"
	}
	return "stop"
}

func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request) {
	var req GenerateRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	name, sel, err := s.selection(req.Model, req.Adapter, req.Adapters)
	if err != nil {
		s.fail(w, err)
		return
	}
	prompt, templated, err := s.templatedPrompt(req.Prompt, sel, req.Raw)
	if err != nil {
		s.fail(w, err)
		return
	}
	j, err := s.prepare(name, prompt, sel, req.Options)
	if err != nil {
		s.fail(w, err)
		return
	}
	j.trimLead = templated
	start := time.Now()
	stream := req.Stream == nil || *req.Stream
	if !stream {
		var out strings.Builder
		n, err := s.run(r.Context(), j, func(p string) error { out.WriteString(p); return nil })
		if err != nil {
			s.fail(w, err)
			return
		}
		d := time.Since(start).Nanoseconds()
		writeJSON(w, http.StatusOK, GenerateChunk{Model: name, CreatedAt: now(), Response: out.String(), Done: true, DoneReason: doneReason(j, n),
			PromptEvalCount: j.promptN, EvalCount: n, EvalDuration: d, TotalDuration: d})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	n, err := s.run(r.Context(), j, func(p string) error {
		if err := enc.Encode(GenerateChunk{Model: name, CreatedAt: now(), Response: p}); err != nil {
			return err
		}
		return rc.Flush()
	})
	last := GenerateChunk{Model: name, CreatedAt: now(), Done: true, DoneReason: doneReason(j, n), PromptEvalCount: j.promptN,
		EvalCount: n, EvalDuration: time.Since(start).Nanoseconds(), TotalDuration: time.Since(start).Nanoseconds()}
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		last = GenerateChunk{Model: name, CreatedAt: now(), Done: true, DoneReason: "error", Error: err.Error()}
	}
	_ = enc.Encode(last)
	_ = rc.Flush()
}

// ChatRequest is the body of POST /v1/chat/completions (OpenAI's, plus the
// adapter fields).
type ChatRequest struct {
	Model               string              `json:"model"`
	Messages            []chat.Message      `json:"messages"`
	Adapter             string              `json:"adapter,omitempty"`
	Adapters            []registry.Selected `json:"adapters,omitempty"`
	Stream              bool                `json:"stream,omitempty"`
	Temperature         *float64            `json:"temperature,omitempty"`
	MaxTokens           *int                `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int                `json:"max_completion_tokens,omitempty"`
	Seed                *uint64             `json:"seed,omitempty"`
}

type chatMessage struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

type chatChoice struct {
	Index        int          `json:"index"`
	Message      *chatMessage `json:"message,omitempty"`
	Delta        *chatMessage `json:"delta,omitempty"`
	FinishReason *string      `json:"finish_reason"`
}

type chatUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *chatUsage   `json:"usage,omitempty"`
}

// chatPrompt renders the conversation up to the assistant's turn with the
// template the selected adapters were trained with, else the configured
// one, dropping the oldest turns of a conversation too long for the
// model's context.
func (s *Server) chatPrompt(msgs []chat.Message, sel []registry.Selected) (string, error) {
	if len(msgs) == 0 {
		return "", badRequest("messages is empty: send at least one {\"role\": \"user\", \"content\": \"…\"}")
	}
	for i, m := range msgs {
		switch m.Role {
		case "system", "user", "assistant":
		default:
			return "", badRequest("messages[%d].role %q: use system, user or assistant", i, m.Role)
		}
	}
	t, ok := s.adapterTemplate(sel)
	if !ok {
		var err error
		if t, err = s.cfg.Base.Template(s.cfg.ChatTemplate); err != nil {
			return "", err
		}
	}
	conv := append(append([]chat.Message(nil), msgs...), chat.Message{Role: "assistant"})
	for {
		p, _, err := t.Render(conv)
		if err != nil {
			return "", badRequest("cannot format the conversation: %v", err)
		}
		// A long conversation loses its oldest turns (a leading system
		// message stays) while the prompt would leave less than a quarter
		// of the context for the answer.
		m := s.cfg.Base.Model
		if len(s.cfg.Base.Tok.Encode(p, true, false)) <= m.SeqLen*3/4 {
			return p, nil
		}
		first := 0
		if conv[0].Role == "system" {
			first = 1
		}
		next := -1
		for j := first + 1; j < len(conv)-1; j++ {
			if conv[j].Role == "user" {
				next = j
				break
			}
		}
		if next < 0 {
			return p, nil // the last question alone: prepare says when it is too long
		}
		conv = append(conv[:first], conv[next:]...)
	}
}

// prepareChat is a generation job answering msgs with the selected
// adapters, formatted by chatPrompt, its answer's leading spaces trimmed:
// what the OpenAI-style and the Ollama-style chat routes share. name is
// the model name the answer reports.
func (s *Server) prepareChat(modelName, adapter string, ads []registry.Selected, msgs []chat.Message, o Options) (string, *genJob, error) {
	name, sel, err := s.selection(modelName, adapter, ads)
	if err != nil {
		return "", nil, err
	}
	prompt, err := s.chatPrompt(msgs, sel)
	if err != nil {
		return "", nil, err
	}
	j, err := s.prepare(name, prompt, sel, o)
	if err != nil {
		return "", nil, err
	}
	j.trimLead = true
	return name, j, nil
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	var req ChatRequest
	if err := decode(w, r, &req); err != nil {
		s.fail(w, err)
		return
	}
	o := Options{Temperature: req.Temperature, NumPredict: req.MaxTokens, Seed: req.Seed}
	if req.MaxCompletionTokens != nil {
		o.NumPredict = req.MaxCompletionTokens
	}
	name, j, err := s.prepareChat(req.Model, req.Adapter, req.Adapters, req.Messages, o)
	if err != nil {
		s.fail(w, err)
		return
	}
	id := fmt.Sprintf("chatcmpl-%x", rand.Uint64())
	created := time.Now().Unix()
	if !req.Stream {
		var out strings.Builder
		n, err := s.run(r.Context(), j, func(p string) error { out.WriteString(p); return nil })
		if err != nil {
			s.fail(w, err)
			return
		}
		fr := doneReason(j, n)
		writeJSON(w, http.StatusOK, chatResponse{ID: id, Object: "chat.completion", Created: created, Model: name,
			Choices: []chatChoice{{Message: &chatMessage{Role: "assistant", Content: out.String()}, FinishReason: &fr}},
			Usage:   &chatUsage{PromptTokens: j.promptN, CompletionTokens: n, TotalTokens: j.promptN + n}})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		return rc.Flush()
	}
	chunk := func(d *chatMessage, fr *string) chatResponse {
		return chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: name, Choices: []chatChoice{{Delta: d, FinishReason: fr}}}
	}
	if err := send(chunk(&chatMessage{Role: "assistant"}, nil)); err != nil {
		return
	}
	n, err := s.run(r.Context(), j, func(p string) error { return send(chunk(&chatMessage{Content: p}, nil)) })
	if err != nil {
		if r.Context().Err() == nil {
			_ = send(apiError{err.Error()})
		}
		return
	}
	fr := doneReason(j, n)
	_ = send(chunk(&chatMessage{}, &fr))
	_, _ = fmt.Fprint(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) {
	type mdl struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	b := s.cfg.Base.Name
	list := []mdl{{ID: b, Object: "model", OwnedBy: "orchmind"}}
	for _, a := range s.reg.List() {
		list = append(list, mdl{ID: b + "+" + a.Name, Object: "model", Created: a.Loaded.Unix(), OwnedBy: "orchmind"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": list})
}
