// Package ui is the node's web page, embedded in the binary: plain HTML,
// CSS and JavaScript with no build step and no network access, in English
// and Portuguese.
package ui
