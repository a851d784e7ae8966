package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func peersCmd(e *env) *cobra.Command {
	c := verb("peers", "list the node's connected peers", noArgs)
	cf := addClientFlags(c, e)
	c.RunE = func(c *cobra.Command, _ []string) error {
		cl, err := cf.connect()
		if err != nil {
			return err
		}
		var out struct {
			Peers []struct {
				ID    string   `json:"id"`
				Addrs []string `json:"addrs"`
			} `json:"peers"`
		}
		if err := cl.call(c.Context(), "GET", "/api/swarm/peers", nil, &out); err != nil {
			return err
		}
		for _, p := range out.Peers {
			fmt.Fprintf(e.stdout, "%s\t%s\n", p.ID, strings.Join(p.Addrs, " "))
		}
		if len(out.Peers) == 0 {
			fmt.Fprintln(e.stderr, "no peers connected yet")
		}
		return nil
	}
	return c
}
