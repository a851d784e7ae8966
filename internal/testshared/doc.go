// Package testshared locates the read-only ../shared folder (models,
// tokenizers, datasets) that sits beside the repository, for tests that use
// it. Tests skip with a clear message when it is absent.
package testshared
