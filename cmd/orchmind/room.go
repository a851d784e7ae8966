package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"orchmind/protocol/room"
)

const roomUsage = "orchmind room create prints a new room code; orchmind room join CODE checks one"

func roomCmd(e *env) *cobra.Command {
	create := verb("create", "print a new private-room code", noArgs)
	create.RunE = func(*cobra.Command, []string) error {
		code, err := room.NewCode()
		if err != nil {
			return err
		}
		r, err := room.Join(code)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, code)
		fmt.Fprintf(e.stderr, "room topic %s: share the code only with your group (anyone with it can read the room's announcements); members start their node with --room CODE and publish with orchmind publish --room CODE DIR (--room - reads the code from stdin, and %s=CODE works too, keeping it out of the process list)\n", r.Topic(), RoomEnv)
		return nil
	}
	join := verb("join [CODE|-]", "check a room code (then node --room CODE, publish --room CODE); - reads it from stdin, no code takes "+RoomEnv, cobra.ArbitraryArgs)
	join.ValidArgsFunction = cobra.NoFileCompletions
	join.RunE = func(_ *cobra.Command, args []string) error {
		code := strings.Join(args, " ")
		if code == "" || code == "-" {
			var given []string
			if code == "-" {
				given = []string{"-"}
			}
			codes, err := roomCodes(e, given, code == "")
			if err != nil {
				return err
			}
			if len(codes) != 1 {
				return fmt.Errorf("%w: orchmind room join CODE (or - to read it from stdin, or set %s)", errUsage, RoomEnv)
			}
			code = codes[0]
		}
		r, err := room.Join(code)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "the code is valid (room topic %s): start your node with --room CODE to see and publish the room's adapters (orchmind publish --room CODE DIR)\n", r.Topic())
		return nil
	}
	return parentCmd("room <command>", "room create: a new private-room code; room join CODE: check a code (then node --room CODE, publish --room CODE)",
		roomUsage, "unknown room command %q: "+roomUsage, create, join)
}
