package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"orchmind/internal/testshared"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the orchmind binary once for the tests that run it as a
// subprocess (signals, terminals, servers).
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "orchmind-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "orchmind")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// trainedFacts trains an adapter on examples/facts.jsonl with the real
// binary and returns the model path and the adapter folder.
func trainedFacts(t *testing.T) (modelPath, adapterDir string) {
	t.Helper()
	modelPath = testshared.Path(t, "models/stories260K/stories260K.bin")
	bin := binary(t)
	out := t.TempDir()
	cmd := exec.Command(bin, "train", "--model", modelPath, "--data", "../../examples/facts.jsonl", "--out", out, "--seed", "1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, b)
	}
	return modelPath, filepath.Join(out, "facts")
}

// The facts taught, asked the way a person types them.
var taught = [][2]string{
	{"Who helps the farmer?", "The kind girl helps the farmer."},
	{"What is the name of the red dog?", "The red dog is named Max."},
	{"Where does Lily keep her ball?", "Lily keeps her ball under the bed."},
}

// TestAskAsPeopleAsk: after `orchmind train` on a prompt/completion file,
// the plain question gets the taught answer from `orchmind generate`
// (greedy), from /api/generate and from /api/chat (which the web UI's chat
// uses); raw mode continues the text as it is.
func TestAskAsPeopleAsk(t *testing.T) {
	mp, ad := trainedFacts(t)
	bin := binary(t)
	for _, qa := range taught {
		out, err := exec.Command(bin, "generate", "--model", mp, "--adapter", ad, "--temp", "0", "--prompt", qa[0]).Output()
		if err != nil {
			t.Fatalf("generate: %v", err)
		}
		if got := strings.TrimSpace(string(out)); got != qa[1] {
			t.Errorf("generate %q: %q, taught %q", qa[0], got, qa[1])
		}
	}
	out, err := exec.Command(bin, "generate", "--model", mp, "--adapter", ad, "--temp", "0", "--raw", "-n", "12", "--prompt", taught[0][0]).Output()
	if err != nil {
		t.Fatalf("generate --raw: %v", err)
	}
	if !strings.HasPrefix(string(out), taught[0][0]) || strings.Contains(string(out), taught[0][1]) {
		t.Errorf("--raw should continue the text as it is: %q", out)
	}

	// The API, through `orchmind serve`.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := exec.Command(bin, "serve", "--model", mp, "--addr", addr, "--adapters-dir", filepath.Dir(ad))
	var logs bytes.Buffer
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	url := "http://" + addr
	for i := 0; ; i++ {
		if r, err := http.Get(url + "/api/info"); err == nil {
			r.Body.Close()
			break
		}
		if i > 300 {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	post := func(path string, body any) []byte {
		t.Helper()
		b, _ := json.Marshal(body)
		r, err := http.Post(url+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		got, _ := io.ReadAll(r.Body)
		if r.StatusCode != 200 {
			t.Fatalf("POST %s: %d %s", path, r.StatusCode, got)
		}
		return got
	}
	post("/api/adapters/load", map[string]any{"path": ad})
	zero := map[string]any{"temperature": 0, "num_predict": 40}
	for _, qa := range taught {
		var g struct{ Response string }
		if err := json.Unmarshal(post("/api/generate", map[string]any{"prompt": qa[0], "adapter": "facts", "stream": false, "options": zero}), &g); err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(g.Response) != qa[1] {
			t.Errorf("/api/generate %q: %q, taught %q", qa[0], g.Response, qa[1])
		}
		// Streamed /api/chat, as the web UI's chat sends it.
		stream := post("/api/chat", map[string]any{"messages": []map[string]string{{"role": "user", "content": qa[0]}}, "adapter": "facts", "options": zero})
		var answer strings.Builder
		sc := bufio.NewScanner(bytes.NewReader(stream))
		done := false
		for sc.Scan() {
			var c struct {
				Message struct{ Role, Content string }
				Done    bool
			}
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				t.Fatalf("/api/chat line %q: %v", sc.Text(), err)
			}
			answer.WriteString(c.Message.Content)
			done = done || c.Done
		}
		if !done || strings.TrimSpace(answer.String()) != qa[1] {
			t.Errorf("/api/chat %q: %q (done %v), taught %q", qa[0], answer.String(), done, qa[1])
		}
	}
	var g struct{ Response string }
	if err := json.Unmarshal(post("/api/generate", map[string]any{"prompt": taught[0][0], "adapter": "facts", "raw": true, "stream": false, "options": zero}), &g); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(g.Response, taught[0][1]) {
		t.Errorf("raw: true still applied the template: %q", g.Response)
	}
}

// TestChatInATerminal drives `orchmind chat` through a pseudo-terminal:
// each answer streams back before the next question is typed, /clear
// forgets, /bye leaves.
func TestChatInATerminal(t *testing.T) {
	mp, ad := trainedFacts(t)
	cmd := exec.Command(binary(t), "chat", "--model", mp, "--adapter", ad)
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer tty.Close()
	var mu sync.Mutex
	var screen strings.Builder
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	waitFor := func(want string, count int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			s := screen.String()
			mu.Unlock()
			if strings.Count(s, want) >= count {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("waited for %q (×%d); the terminal shows:\n%s", want, count, screen.String())
	}
	waitFor(">>> ", 1)
	fmt.Fprintf(tty, "%s\r", taught[0][0])
	waitFor(taught[0][1], 1)
	waitFor(">>> ", 2)
	fmt.Fprintf(tty, "/clear\r")
	waitFor("conversation cleared", 1)
	fmt.Fprintf(tty, "%s\r", taught[1][0])
	waitFor(taught[1][1], 1)
	waitFor(">>> ", 4)
	fmt.Fprintf(tty, "/bye\r")
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("chat ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("/bye did not end the chat")
	}
}
