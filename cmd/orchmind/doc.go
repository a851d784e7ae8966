// Command orchmind is a peer-to-peer node that trains LoRA adapters on a
// user's own data over a frozen, quantized base model and shares them with
// other nodes through a Kademlia DHT and gossipsub.
//
// The command line is built on github.com/spf13/cobra, the library Ollama,
// kubectl, Hugo and the GitHub CLI use, chosen over the standard flag
// package and over kong because it gives, with no code of ours: a tree of
// verbs and sub-verbs (model info, adapters merge …) each with its own
// --help; POSIX flags from spf13/pflag that may come before, between or
// after the positional arguments; generated completion scripts for bash,
// zsh, fish and PowerShell (orchmind completion SHELL), which also
// complete flag values such as --quant; and --version. Kong would do the
// same from struct tags, but is less widely used and its completion needs
// another library.
//
// Layout: main.go runs a command line and maps errors to the exit status
// (0 ok, 1 failure, 2 wrong usage; errors are printed "orchmind VERB:
// message"); root.go builds the tree (one line per verb in verbs) and the
// help; flags.go, base.go and client.go are the shared flags (base model,
// node address) so that adding a flag is one line; every verb lives in its
// own file (generate.go, train.go, publish.go …) as a function returning
// its *cobra.Command.
//
// The version comes from the build (runtime/debug.ReadBuildInfo: the
// module version, or the pseudo-version go build derives from the VCS
// commit; "devel" with the VCS revision when there is none), unless
// -ldflags "-X main.version=…" sets one. ORCHMIND_HOST is the node the
// client verbs (publish, search, pull, peers) and ui talk to, written as
// OLLAMA_HOST is (host, host:port, :port or a URL).
package main
