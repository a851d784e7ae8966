package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orchmind/engine/chat"
	"orchmind/trainer/lora"
)

// TestAdapterTemplateAndChat: a prompt to an adapter that records its
// training template is formatted with it (raw: true opts out), and
// /api/chat formats the whole conversation with it.
func TestAdapterTemplateAndChat(t *testing.T) {
	f := newFixture(t, randomBase(t, 1), nil)
	dir := writeAdapter(t, f.dir, "chatty", f.b, 5)
	// Record a template in its manifest, as training does.
	a, man, err := lora.ReadPEFT(dir, f.b.Model)
	if err != nil {
		t.Fatal(err)
	}
	man.PromptTemplate, man.Name = "llama2", "asker"
	if err := lora.WritePEFT(filepath.Join(f.dir, "asker"), a, *man, f.b.Model); err != nil {
		t.Fatal(err)
	}
	if c := f.call(t, "POST", "/api/adapters/load", LoadRequest{Path: "asker"}, nil); c != 200 {
		t.Fatalf("load: %d", c)
	}
	greedy := Options{Temperature: ptr(0.0), NumPredict: ptr(16)}
	render := func(msgs ...chat.Message) string {
		p, _, err := chat.Template{Name: "llama2"}.Render(append(msgs, chat.Message{Role: "assistant"}))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	user := func(s string) chat.Message { return chat.Message{Role: "user", Content: s} }
	asked, _ := f.generate(t, GenerateRequest{Prompt: "hello", Adapter: "asker", Options: greedy})
	raw, _ := f.generate(t, GenerateRequest{Prompt: render(user("hello")), Adapter: "asker", Raw: true, Options: greedy})
	plain, _ := f.generate(t, GenerateRequest{Prompt: "hello", Adapter: "asker", Raw: true, Options: greedy})
	if asked != strings.TrimLeft(raw, " ") || asked == plain {
		t.Fatalf("templated %q, by hand %q, raw %q", asked, raw, plain)
	}
	ollama := func(msgs ...chat.Message) string {
		b, _ := json.Marshal(OllamaChatRequest{Messages: msgs, Adapter: "asker", Options: greedy})
		resp, err := http.Post(f.ts.URL+"/api/chat", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/api/chat: %d", resp.StatusCode)
		}
		var out strings.Builder
		sc := bufio.NewScanner(resp.Body)
		var last OllamaChatChunk
		for sc.Scan() {
			if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
				t.Fatal(err)
			}
			if last.Message.Role != "assistant" || last.CreatedAt.Before(time.Now().Add(-time.Minute)) {
				t.Fatalf("chunk %+v", last)
			}
			out.WriteString(last.Message.Content)
		}
		if !last.Done || last.DoneReason == "" || last.EvalCount == 0 {
			t.Fatalf("last chunk %+v", last)
		}
		return out.String()
	}
	if got := ollama(user("hello")); got != asked {
		t.Fatalf("/api/chat %q, /api/generate %q", got, asked)
	}
	conv := []chat.Message{user("hi"), {Role: "assistant", Content: "yo"}, user("ok?")}
	byHand, _ := f.generate(t, GenerateRequest{Prompt: render(conv...), Adapter: "asker", Raw: true, Options: greedy})
	if got := ollama(conv...); got != strings.TrimLeft(byHand, " ") {
		t.Fatalf("conversation: /api/chat %q, by hand %q", got, byHand)
	}
	// A conversation longer than the context keeps its latest turns.
	long := []chat.Message{user(strings.Repeat("old ", 12)), {Role: "assistant", Content: strings.Repeat("reply ", 6)}, user("hi"), {Role: "assistant", Content: "yo"}, user("ok?")}
	if got := ollama(long...); got != strings.TrimLeft(byHand, " ") {
		t.Fatalf("long conversation: /api/chat %q, want the answer to its last turns %q", got, byHand)
	}
	f.wantErr(t, 400, "POST", "/api/chat", OllamaChatRequest{Messages: []chat.Message{{Role: "robot", Content: "x"}}}, "role")
	f.wantErr(t, 400, "POST", "/api/chat", OllamaChatRequest{}, "messages")
	var one OllamaChatChunk
	if c := f.call(t, "POST", "/api/chat", OllamaChatRequest{Messages: []chat.Message{user("hello")}, Adapter: "asker", Stream: ptr(false), Options: greedy}, &one); c != 200 || one.Message.Content != asked || !one.Done {
		t.Fatalf("non-streamed: %d %+v", c, one)
	}
}
