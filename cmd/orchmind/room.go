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
		fmt.Fprintf(e.stderr, "room topic %s: share the code only with your group (anyone with it can read the room's announcements); members start their node with --room CODE and publish with orchmind publish --room CODE DIR\n", r.Topic())
		return nil
	}
	join := verb("join CODE", "check a room code (then node --room CODE, publish --room CODE)", cobra.ArbitraryArgs)
	join.ValidArgsFunction = cobra.NoFileCompletions
	join.RunE = func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("%w: orchmind room join CODE", errUsage)
		}
		r, err := room.Join(strings.Join(args, " "))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "the code is valid (room topic %s): start your node with --room CODE to see and publish the room's adapters (orchmind publish --room CODE DIR)\n", r.Topic())
		return nil
	}
	return parentCmd("room <command>", "room create: a new private-room code; room join CODE: check a code (then node --room CODE, publish --room CODE)",
		roomUsage, "unknown room command %q: "+roomUsage, create, join)
}
