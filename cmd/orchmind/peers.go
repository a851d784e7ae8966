package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

// reachWords says in words what the node's reachability means.
var reachWords = map[string]string{
	"public":     "public: peers can dial this node's addresses",
	"nat-relay":  "behind NAT, reachable through relays (direct after hole punching)",
	"nat":        "behind NAT, no relay yet: only outgoing connections",
	"unknown":    "not known yet (AutoNAT asks peers to dial back)",
	"local-only": "local-only: only the peers given with --bootstrap",
}

type peersOut struct {
	Peers []struct {
		ID       string   `json:"id"`
		Addrs    []string `json:"addrs"`
		Orchmind bool     `json:"orchmind"`
		Source   string   `json:"source"`
		Conn     string   `json:"conn"`
	} `json:"peers"`
	Network *struct {
		Reachability      string         `json:"reachability"`
		Addrs             []string       `json:"addrs"`
		PublicDHT         bool           `json:"public_dht"`
		PublicDHTPeers    int            `json:"public_dht_peers"`
		Rendezvous        []string       `json:"rendezvous"`
		OrchmindPeers     int            `json:"orchmind_peers"`
		BySource          map[string]int `json:"by_source"`
		HolePunches       int            `json:"hole_punches"`
		HolePunchFailures int            `json:"hole_punch_failures"`
	} `json:"network"`
}

func peersCmd(e *env) *cobra.Command {
	c := verb("peers [--json]", "list the node's connected peers, how it found them and how it is reachable", noArgs)
	cf := addClientFlags(c, e)
	asJSON := c.Flags().Bool("json", false, "print the API's answer as JSON")
	c.RunE = func(c *cobra.Command, _ []string) error {
		cl, err := cf.connect()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := cl.call(c.Context(), "GET", "/api/swarm/peers", nil, &raw); err != nil {
			return err
		}
		if *asJSON {
			fmt.Fprintln(e.stdout, string(raw))
			return nil
		}
		var out peersOut
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("the node's answer about its peers does not decode: %w", err)
		}
		if n := out.Network; n != nil {
			w := reachWords[n.Reachability]
			if w == "" {
				w = n.Reachability
			}
			fmt.Fprintf(e.stdout, "reachable: %s\n", w)
			if n.PublicDHT {
				fmt.Fprintf(e.stdout, "public DHT: on, %d servers known; advertised under %s\n", n.PublicDHTPeers, strings.Join(n.Rendezvous, ", "))
			} else {
				fmt.Fprintln(e.stdout, "public DHT: off")
			}
			var by []string
			for src, k := range n.BySource {
				by = append(by, fmt.Sprintf("%s %d", src, k))
			}
			slices.Sort(by)
			fmt.Fprintf(e.stdout, "orchmind peers: %d (%s)\n", n.OrchmindPeers, strings.Join(by, ", "))
			if n.HolePunches+n.HolePunchFailures > 0 {
				fmt.Fprintf(e.stdout, "hole punches: %d succeeded, %d failed\n", n.HolePunches, n.HolePunchFailures)
			}
		}
		for _, p := range out.Peers {
			kind := "other"
			if p.Orchmind {
				kind = "orchmind"
			}
			if p.Source == "" {
				fmt.Fprintf(e.stdout, "%s\t%s\n", p.ID, strings.Join(p.Addrs, " "))
				continue
			}
			fmt.Fprintf(e.stdout, "%s\t%s\t%s\t%s\t%s\n", p.ID, kind, p.Source, p.Conn, strings.Join(p.Addrs, " "))
		}
		if len(out.Peers) == 0 {
			fmt.Fprintln(e.stderr, "no peers connected yet")
		}
		return nil
	}
	return c
}
