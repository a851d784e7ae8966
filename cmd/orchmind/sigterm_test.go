package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"orchmind/internal/testshared"
)

// TestSIGTERMInDataStage: a SIGTERM while `orchmind train` reads and
// tokenises a 50 MB text ends the process within 2 s, saying where it
// stopped, with nothing written to the output folder.
func TestSIGTERMInDataStage(t *testing.T) {
	mp := testshared.Path(t, "models/stories260K/stories260K.bin")
	bin := binary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "big.txt")
	f, err := os.Create(data)
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Fields("the little cat saw a big red ball and ran to the park where her friend Tom was playing with a kite under the tall green tree")
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < 50<<20 {
		for i := range 60 + rng.IntN(120) {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		b.WriteString(".\n\n")
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	cmd := exec.Command(bin, "train", "--model", mp, "--data", data, "--out", out)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Let it get well into the data stage.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "data") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("train ended before the signal (%v): the input is too small to test this\n%s", err, stderr.String())
	default:
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		took := time.Since(sent)
		t.Logf("ended %v after SIGTERM: %v; %s", took.Round(time.Millisecond), err, strings.TrimSpace(stderr.String()))
		if took > 2*time.Second {
			t.Errorf("took %v to stop, want under 2 s", took)
		}
		if err == nil {
			t.Error("exit status 0 after SIGTERM")
		}
		if !strings.Contains(stderr.String(), "stopped") {
			t.Errorf("the message does not say where it stopped:\n%s", stderr.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("still running 10 s after SIGTERM\n%s", stderr.String())
	}
	var left []string
	_ = filepath.Walk(out, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("files left behind: %v", left)
	}
}
