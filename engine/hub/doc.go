// Package hub finds and downloads base models: it resolves ollama:NAME and
// hf:ORG/REPO names through Ollama's model store, the Hugging Face cache
// and orchmind's own models folder, lists every base it can see, and pulls
// bases from the Ollama registry and Hugging Face with resumable, parallel,
// digest-verified downloads.
package hub
