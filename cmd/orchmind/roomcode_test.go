package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"orchmind/protocol/room"
)

func runCLIStdin(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e syncBuffer // a node logs from its own goroutines too
	code = run(context.Background(), args, strings.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

// fakeRoomNode answers orchmind publish's API call and records the room
// each publish asked for.
func fakeRoomNode(t *testing.T) (url string, rooms func() []string) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		switch r.URL.Path {
		case "/api/swarm/publish":
			mu.Lock()
			got = append(got, body["room"].(string))
			mu.Unlock()
			_, _ = w.Write([]byte(`{"cid": "bafyfake"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }
}

// TestRoomCodeOutOfProcessList: publish and room join take the room code
// from stdin (--room -) or from ORCHMIND_ROOM, so it need not be on the
// command line.
func TestRoomCodeOutOfProcessList(t *testing.T) {
	code, err := room.NewCode()
	if err != nil {
		t.Fatal(err)
	}
	url, rooms := fakeRoomNode(t)
	dir := t.TempDir()

	t.Setenv(RoomEnv, "")
	if c, out, errOut := runCLIStdin(t, code+"\n", "publish", "--api", url, "--room", "-", dir); c != 0 || strings.TrimSpace(out) != "bafyfake" {
		t.Fatalf("publish --room -: code %d, stdout %q, stderr %q", c, out, errOut)
	}
	if c, _, errOut := runCLIStdin(t, "", "publish", "--api", url, dir); c != 0 {
		t.Fatalf("public publish: code %d, stderr %q", c, errOut)
	}
	if c, _, errOut := runCLIStdin(t, "", "publish", "--api", url, "--room", "-", dir); c != 2 || !strings.Contains(errOut, "stdin held none") {
		t.Fatalf("--room - with empty stdin: code %d, stderr %q", c, errOut)
	}
	t.Setenv(RoomEnv, code)
	if c, _, errOut := runCLIStdin(t, "", "publish", "--api", url, dir); c != 0 || !strings.Contains(errOut, RoomEnv) {
		t.Fatalf("publish with %s: code %d, stderr %q", RoomEnv, c, errOut)
	}
	if want := []string{code, "", code}; !slices.Equal(rooms(), want) {
		t.Fatalf("rooms asked for: %q, want %q", rooms(), want)
	}

	if c, _, errOut := runCLIStdin(t, "", "room", "join"); c != 0 || !strings.Contains(errOut, "the code is valid") {
		t.Fatalf("room join with %s: code %d, stderr %q", RoomEnv, c, errOut)
	}
	t.Setenv(RoomEnv, "")
	if c, _, errOut := runCLIStdin(t, "  "+strings.ToLower(code)+"  \n", "room", "join", "-"); c != 0 || !strings.Contains(errOut, "the code is valid") {
		t.Fatalf("room join -: code %d, stderr %q", c, errOut)
	}
	if c, _, _ := runCLIStdin(t, "", "room", "join"); c != 2 {
		t.Fatalf("room join without a code: exit %d, want 2", c)
	}
}

func TestRoomCodes(t *testing.T) {
	t.Setenv(RoomEnv, "AAAA, BBBB\nCCCC")
	e := &env{stdin: strings.NewReader("# my rooms\nDDDD\n\nAAAA\n"), getenv: os.Getenv}
	got, err := roomCodes(e, []string{"EEEE", "-", "-"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"EEEE", "DDDD", "AAAA", "BBBB", "CCCC"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got, _ := roomCodes(&env{stdin: strings.NewReader("")}, []string{"EEEE"}, false); !slices.Equal(got, []string{"EEEE"}) {
		t.Fatalf("without the environment: %q", got)
	}
}
