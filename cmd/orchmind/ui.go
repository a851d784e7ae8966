package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// uiCmd opens the web UI in the browser: when a node already runs (its data
// folder names its API, or ORCHMIND_HOST does), it opens that; otherwise it
// starts the full node (swarm included) and opens it.
func uiCmd(e *env) *cobra.Command {
	c := verb("ui "+nodeSynopsis, "open the web UI in the browser, starting the node (with the swarm) when none runs", noArgs)
	nf := addNodeFlags(c, e)
	c.RunE = func(c *cobra.Command, _ []string) error {
		if u := runningNodeURL(e, *nf.dataDir, c.Flags().Changed("data-dir")); u != "" {
			fmt.Fprintf(e.stderr, "a node is already running: opening %s\n", u)
			openBrowser(e, u+"/")
			return nil
		}
		return nf.start(c.Context(), e, c.Flags(), true)
	}
	return c
}
