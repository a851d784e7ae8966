// Package registry is the hot-plug adapter registry of a node: any number of
// LoRA adapters loaded onto ONE frozen base model, checked against it, and
// combined per request into a model.Delta without touching or copying the
// base. Optionally an adapter is baked into a quantized copy of the
// matrices it changes, for speed when it is used alone for long.
//
// The registry is safe for concurrent use. A delta returned by Delta keeps
// its own pointers to the adapter weights, so it stays valid (and unchanged)
// after the adapter is unloaded or rescaled; later requests see the change.
package registry
