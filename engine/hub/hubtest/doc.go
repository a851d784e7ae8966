// Package hubtest runs local HTTP servers that speak the Ollama registry's
// and Hugging Face's download protocols, for tests of engine/hub and of the
// CLI: manifests and blobs behind a CDN-like redirect, the tree API with
// LFS metadata, ranges, gated repositories, dropped connections and
// corrupt bytes on demand.
package hubtest
