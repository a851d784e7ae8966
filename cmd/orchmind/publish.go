package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"
)

func publishCmd(e *env) *cobra.Command {
	c := verb("publish DIR [--room CODE|-]", "publish an adapter folder to the swarm (needs a running node); prints its CID", cobra.ArbitraryArgs)
	cf := addClientFlags(c, e)
	roomCode := c.Flags().String("room", "", "announce only inside the private room of this code; \"-\" reads it from stdin; without --room, "+RoomEnv+" (when set) names the room")
	c.ValidArgsFunction = dirsOnly
	c.RunE = func(c *cobra.Command, args []string) error {
		var given []string
		if *roomCode != "" {
			given = []string{*roomCode}
		}
		codes, err := roomCodes(e, given, *roomCode == "")
		if err != nil {
			return err
		}
		switch {
		case len(codes) > 1:
			return fmt.Errorf("%w: %d room codes given (%s or stdin): publish into one room at a time", errUsage, len(codes), RoomEnv)
		case len(codes) == 1:
			*roomCode = codes[0]
			if len(given) == 0 {
				fmt.Fprintf(e.stderr, "publishing into the private room named by %s (unset it to publish to everyone)\n", RoomEnv)
			}
		}
		cl, err := cf.connect()
		if err != nil {
			return err
		}
		if len(args) != 1 {
			return fmt.Errorf("%w: give the adapter folder to publish", errUsage)
		}
		dir, err := filepath.Abs(args[0])
		if err != nil {
			return err
		}
		// The node publishes the folder from disk: it is not loaded (its
		// tensors are not read) to be published.
		var out struct {
			CID string `json:"cid"`
		}
		if err := cl.call(c.Context(), "POST", "/api/swarm/publish", map[string]any{"path": dir, "room": *roomCode}, &out); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, out.CID)
		return nil
	}
	return c
}

// dirsOnly completes positional arguments with folders.
func dirsOnly(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return nil, cobra.ShellCompDirectiveFilterDirs
}
