package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func searchCmd(e *env) *cobra.Command {
	c := verb("search [words…] [--base FINGERPRINT|this]", "search adapters announced in the swarm (needs a running node)", cobra.ArbitraryArgs)
	cf := addClientFlags(c, e)
	baseFP := c.Flags().String("base", "", "only adapters for this base fingerprint (\"this\": the node's base)")
	c.ValidArgsFunction = cobra.NoFileCompletions
	c.RunE = func(c *cobra.Command, args []string) error {
		cl, err := cf.connect()
		if err != nil {
			return err
		}
		var out struct {
			Results []struct {
				CID, Name, Description, Publisher string
				BaseName                          string `json:"base_name"`
				BaseWhere                         string `json:"base_where"`
				Size                              int64
			} `json:"results"`
		}
		if err := cl.call(c.Context(), "POST", "/api/swarm/search", map[string]any{"query": strings.Join(args, " "), "base_fingerprint": *baseFP}, &out); err != nil {
			return err
		}
		if len(out.Results) == 0 {
			fmt.Fprintln(e.stderr, "no adapters announced yet that match")
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tBASE\tBASE IS\tSIZE\tAUTHOR\tCID")
		for _, r := range out.Results {
			author := r.Publisher
			if len(author) > 16 {
				author = "…" + author[len(author)-12:]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.BaseName, dash(r.BaseWhere), humanBytes(r.Size), author, r.CID)
		}
		return tw.Flush()
	}
	return c
}
