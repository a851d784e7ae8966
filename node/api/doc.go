// Package api is the local HTTP API of an orchmind node: Ollama-style and
// OpenAI-style generation with hot-plugged adapters, the adapter registry,
// training jobs with live progress (server-sent events), and the swarm
// (search, pull, publish, peers) through the SwarmService interface. It is
// a library: the node daemon and `orchmind serve` mount the handler New
// returns. Every route is documented in openapi.yaml (a test keeps the two
// in step).
//
// Requests from non-loopback addresses are refused unless a bearer token is
// configured and given. Without the token, requests must also name this
// computer in Host (DNS rebinding), come from the node's own page when they
// carry an Origin (cross-site requests), change things only with JSON
// bodies (or multipart uploads from the node's own page), and name files
// only inside the adapters and uploads folders; the uploads folder is
// capped and swept. docs/security.md says what is trusted and why. Errors
// are JSON objects {"error": "…"} with a message a person can act on.
package api
