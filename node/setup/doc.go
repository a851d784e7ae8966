// Package setup is the first-run web page of a node that has no base model
// yet: it lists the bases found on this computer and a few recommended
// small ones (size, whether they fit), pulls the chosen one with a progress
// bar (server-sent events) and saves it as the node's model.
package setup
