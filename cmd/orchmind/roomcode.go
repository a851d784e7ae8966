package main

import (
	"fmt"
	"io"
	"strings"
)

// RoomEnv names the environment variable that can hold room codes, so they
// need not appear on the command line (which other users of the computer
// can read in the process list).
const RoomEnv = "ORCHMIND_ROOM"

// splitCodes splits room codes given one per line or separated by commas,
// skipping blank lines and # comments.
func splitCodes(s string) []string {
	var out []string
	for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' }) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}

// roomCodes resolves the room codes of a command: each "-" among given is
// replaced by the codes read from stdin (one per line), and the codes in
// $ORCHMIND_ROOM (comma- or line-separated) are added when useEnv is set.
// Duplicates are dropped.
func roomCodes(e *env, given []string, useEnv bool) ([]string, error) {
	var out []string
	stdinRead := false
	for _, g := range given {
		if g != "-" {
			out = append(out, g)
			continue
		}
		if stdinRead {
			continue
		}
		stdinRead = true
		b, err := io.ReadAll(io.LimitReader(e.stdin, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("reading room codes from stdin: %w", err)
		}
		codes := splitCodes(string(b))
		if len(codes) == 0 {
			return nil, fmt.Errorf("%w: --room - reads the room code from stdin, but stdin held none (e.g. orchmind … --room - < room.txt)", errUsage)
		}
		out = append(out, codes...)
	}
	if useEnv {
		out = append(out, splitCodes(e.getenv(RoomEnv))...)
	}
	seen := map[string]bool{}
	uniq := out[:0]
	for _, c := range out {
		if !seen[c] {
			seen[c] = true
			uniq = append(uniq, c)
		}
	}
	return uniq, nil
}
