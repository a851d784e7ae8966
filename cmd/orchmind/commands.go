package main

import (
	"context"
	"fmt"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// commands lists every CLI verb. Each verb lives in its own file.
func commands() []command {
	return []command{
		{"version", "print the version", runVersion},
		{"generate", "answer a prompt with a base model and optional adapters (asked in the adapters' training template; --raw continues the text as it is)", runGenerate},
		{"model", "model info PATH: architecture, size, fingerprint; model convert IN --out X.gguf [--quant q8_0|q4_0|f16|f32]", runModel},
		{"chat", "talk with a model and its adapters in the terminal, turn by turn (/bye leaves)", runChat},
		{"train", "train a LoRA adapter on your own data", runTrain},
		{"serve", "run the local API and web UI on a base model (no swarm)", runServe}, {"ui", "open the web UI in the browser, starting the node (with the swarm) when none runs", runUI},
		{"node", "run the node: base model, content store, libp2p swarm, local API and web UI", runNode},
		{"publish", "publish an adapter folder to the swarm (needs a running node); prints its CID", runPublish},
		{"search", "search adapters announced in the swarm (needs a running node)", runSearch},
		{"pull", "fetch, verify and plug an adapter by CID (needs a running node)", runPull},
		{"peers", "list the node's connected peers", runPeers},
		{"room", "room create: a new private-room code; room join CODE: check a code (then node --room CODE, publish --room CODE)", runRoom},
		{"export", "export ollama ADAPTER --base BASE.gguf (Modelfile); export gguf ADAPTER --model BASE --out X.gguf (adapter baked in)", runExport},
		{"adapters", "list local adapters; merge adapters (adapters merge A B --method cat|svd)", runAdapters},
	}
}

func runVersion(_ context.Context, e *env) error {
	fs := newFlags(e, "version", "")
	if err := parseFlags(fs, e); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "orchmind", version)
	return nil
}
