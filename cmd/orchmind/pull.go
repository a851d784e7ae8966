package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func pullCmd(e *env) *cobra.Command {
	c := verb("pull CID", "fetch, verify and plug an adapter by CID (needs a running node)", cobra.ArbitraryArgs)
	cf := addClientFlags(c, e)
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
			Dir string `json:"dir"`
		}
		if err := cl.call(c.Context(), "POST", "/api/swarm/pull", map[string]any{"cid": args[0]}, &out); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, out.Dir)
		return nil
	}
	return c
}
