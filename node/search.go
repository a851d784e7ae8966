package node

import (
	"context"
	"strings"

	"orchmind/node/api"
	"orchmind/protocol"
)

// Search lists announced adapters matching q, newest first: one listing
// per (publisher, CID), so an adapter announced by several publishers
// (or re-announced by someone under another name) shows each of them
// with their own name and description.
func (n *Node) Search(_ context.Context, q api.SearchQuery) ([]api.Listing, error) {
	words := strings.Fields(strings.ToLower(q.Text))
	var out []api.Listing
	for _, r := range n.sw.Catalogue(q.BaseFingerprint, 0) {
		s, ok := r.Decoded.(*protocol.Signed)
		if !ok {
			continue
		}
		m := s.Manifest
		if q.BaseFingerprint != "" && m.BaseFingerprint != q.BaseFingerprint {
			continue
		}
		hay := strings.ToLower(m.Name + " " + m.Description + " " + strings.Join(m.Tags, " ") + " " + m.Language + " " + m.BaseName)
		match := true
		for _, w := range words {
			if !strings.Contains(hay, w) {
				match = false
			}
		}
		if !match {
			continue
		}
		out = append(out, api.Listing{CID: s.Root.String(), Announced: m, Publisher: s.Author.String(), Size: int64(s.Size),
			BaseWhere: n.BaseWhere(m.BaseFingerprint)})
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out, nil
}
