package main

import (
	"cmp"
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"orchmind/internal/appdir"
	"orchmind/node"
	"orchmind/node/config"
)

// defaultDataDir is where a node keeps its key and store: $ORCHMIND_HOME,
// else the user's config folder.
func defaultDataDir(getenv func(string) string) string {
	if d := getenv("ORCHMIND_HOME"); d != "" {
		return d
	}
	return appdir.Dir()
}

// PublicDHTEnv, when set (on or off), is --public-dht's default: the
// Makefile sets it off so that no test or demo can reach the public DHT
// even if it forgets the flag.
const PublicDHTEnv = "ORCHMIND_PUBLIC_DHT"

// localOnlyHelp is the --local-only flag's help, shared by node and ui.
const localOnlyHelp = "talk to nothing but the peers given with --bootstrap (and those they introduce): no router port mapping, mDNS, AutoNAT, relays or hole punching; listen on 127.0.0.1 unless --listen says otherwise (tests, demos, CI)"

const nodeSynopsis = "[--model M] [--data-dir DIR] [--api 127.0.0.1:11435] [--port 4747] [--listen MULTIADDR]… [--bootstrap MULTIADDR]… [--public-dht on|off] [--room CODE]…"

func nodeCmd(e *env) *cobra.Command {
	c := verb("node "+nodeSynopsis, "run the node: base model, content store, libp2p swarm, local API and web UI", noArgs)
	nf := addNodeFlags(c, e)
	c.RunE = func(c *cobra.Command, _ []string) error { return nf.start(c.Context(), e, c.Flags(), false) }
	return c
}

// nodeFlags are the flags of the verbs that start a node (node, ui).
type nodeFlags struct {
	base                                baseFlags
	dataDir, adapterDir, apiAddr, token *string
	listen, boot, rooms                 *[]string
	noMDNS, localOnly, dhtServer        *bool
	shareBase                           *bool
	publicDHT                           *string
	publicBoot                          *[]string
	publicHelper                        *bool
	port                                *int
}

func addNodeFlags(c *cobra.Command, e *env) nodeFlags {
	fs := c.Flags()
	nf := nodeFlags{
		base:         addBaseFlags(c),
		dataDir:      fs.String("data-dir", defaultDataDir(e.getenv), "folder for the node key and the content store ($ORCHMIND_HOME)"),
		adapterDir:   fs.String("adapters-dir", "lora_adapters", "folder of local adapters (trained and pulled; default: <data-dir>/adapters unless ./lora_adapters exists)"),
		apiAddr:      fs.String("api", "127.0.0.1:11435", "address of the local HTTP API and web UI"),
		token:        fs.String("token", "", "let other computers use the API with \"Authorization: Bearer TOKEN\""),
		rooms:        repeatable(c, "room", "join the private room of this code (repeatable; see orchmind room create); \"-\" reads codes from stdin, one per line, and "+RoomEnv+" adds codes (comma-separated), out of the process list"),
		listen:       repeatable(c, "listen", "libp2p listen address (repeatable; default TCP and QUIC on all IPv4 and IPv6 interfaces on --port)"),
		boot:         repeatable(c, "bootstrap", "peer to dial on start, /ip4/…/tcp/…/p2p/ID (repeatable)"),
		noMDNS:       fs.Bool("no-mdns", false, "do not look for peers on the local network"),
		localOnly:    fs.Bool("local-only", false, localOnlyHelp),
		dhtServer:    fs.Bool("dht-server", false, "answer DHT queries at once (for always-on nodes)"),
		publicDHT:    fs.String("public-dht", cmp.Or(e.getenv(PublicDHTEnv), "on"), "find orchmind nodes on the internet through rendezvous records on the public IPFS DHT: on or off (--local-only turns it off; default from $"+PublicDHTEnv+")"),
		publicBoot:   repeatable(c, "public-bootstrap", "bootstrap peer of the public DHT instead of libp2p's defaults, /ip4/…/tcp/…/p2p/ID or /dnsaddr/NAME (repeatable)"),
		publicHelper: fs.Bool("public-helper", false, "help others from a public address: serve the public DHT and relay for nodes behind NAT"),
		port:         fs.Int("port", 0, "libp2p port for TCP and QUIC on IPv4 and IPv6 when --listen is not given (0: 4747, or a free one when taken; -1: any free port)"),
		shareBase:    fs.Bool("share-base", true, "offer the base model's file to peers (imported by reference, not copied), so they can pull it with orchmind model pull fp:FINGERPRINT"),
	}
	completeDirs(c, "data-dir")
	completeDirs(c, "adapters-dir")
	return nf
}

// start runs the node until ctx is done; open opens the web UI.
func (nf nodeFlags) start(ctx context.Context, e *env, fs *pflag.FlagSet, open bool) error {
	if err := nodeConfig(e, fs); err != nil {
		return err
	}
	rooms, err := roomCodes(e, *nf.rooms, true)
	if err != nil {
		return err
	}
	publicDHT, err := config.ParseOnOff(*nf.publicDHT)
	if err != nil {
		return fmt.Errorf("%w: --public-dht %w", errUsage, err)
	}
	for _, a := range *nf.publicBoot {
		if err := config.CheckPublicBootstrap(a); err != nil {
			return fmt.Errorf("%w: --%w", errUsage, err)
		}
	}
	b, err := nf.base.load()
	if err != nil {
		return err
	}
	n, err := node.Start(ctx, node.Config{DataDir: *nf.dataDir, AdapterDir: *nf.adapterDir, Base: b, Listen: *nf.listen, Bootstrap: *nf.boot,
		MDNS: !*nf.noMDNS, LocalOnly: *nf.localOnly, APIAddr: *nf.apiAddr, Token: *nf.token, DHTServer: *nf.dhtServer, Rooms: rooms, Version: e.version, Log: e.log,
		ShareBase: *nf.shareBase, PublicDHT: publicDHT, PublicBootstrap: *nf.publicBoot, PublicHelper: *nf.publicHelper, Port: *nf.port})
	if err != nil {
		return err
	}
	defer n.Close()
	fmt.Fprintf(e.stderr, "orchmind node %s: base %s (%s)\n  peer id %s\n", e.version, b.Name, b.Fingerprint, n.Swarm().ID())
	for _, a := range n.Swarm().Addrs() {
		fmt.Fprintf(e.stderr, "  listening on %s\n", a)
	}
	if st := n.Swarm().Network(); st.PublicDHT {
		fmt.Fprintf(e.stderr, "  finding orchmind nodes through the public IPFS DHT (--public-dht=off to stop)\n")
	}
	fmt.Fprintf(e.stderr, "  API and web UI on %s/ (Ctrl-C to stop)\n", n.URL())
	if open {
		openBrowser(e, n.URL()+"/")
	}
	<-ctx.Done()
	return nil
}
