package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func pullCmd(e *env) *cobra.Command {
	c := verb("pull CID", "fetch, verify and plug an adapter by CID (needs a running node)", cobra.ArbitraryArgs)
	cf := addClientFlags(c, e)
	withBase := c.Flags().Bool("with-base", false, "when the adapter's base model is missing here, fetch it from the peers that have it first")
	c.ValidArgsFunction = cobra.NoFileCompletions
	c.RunE = func(c *cobra.Command, args []string) error {
		cl, err := cf.connect()
		if err != nil {
			return err
		}
		if len(args) != 1 {
			return fmt.Errorf("%w: give the CID to pull (see orchmind search)", errUsage)
		}
		var out struct {
			Dir  string `json:"dir"`
			Note string `json:"note"`
		}
		if err := cl.call(c.Context(), "POST", "/api/swarm/pull", map[string]any{"cid": args[0], "with_base": *withBase}, &out); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, out.Dir)
		if out.Note != "" {
			fmt.Fprintln(e.stderr, out.Note)
		}
		return nil
	}
	return c
}
