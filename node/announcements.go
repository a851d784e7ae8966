package node

import (
	"context"
	"time"

	"orchmind/store"
)

// saveEvery is how often the node saves its catalogue of announcements
// when it has changed (and at Close): a node that crashes forgets at most
// what it learned in the last interval.
const saveEvery = time.Minute

// restoreAnnouncements gives the swarm's catalogue back what the node had
// seen before it stopped (saved in the store): each announcement is
// verified again, and kept under the same bounds and quotas as when it
// first arrived, as delivered by the same peer. Ones that no longer verify
// are dropped.
func (n *Node) restoreAnnouncements(ctx context.Context) {
	saved, err := n.store.Announcements(ctx)
	if err != nil {
		n.log.Warn("the announcements seen before this start could not be read; the node learns them again from its peers", "err", err)
		return
	}
	kept, dropped := 0, 0
	for _, a := range saved {
		if err := n.sw.RememberFrom(ctx, a.From, a.Data); err != nil {
			dropped++
			n.log.Debug("a saved announcement was not restored", "err", err)
			continue
		}
		kept++
	}
	if len(saved) > 0 {
		n.log.Info("restored the announcements seen before this start", "kept", kept, "dropped", dropped)
	}
	_, n.savedSeq = n.sw.Kept()
}

// saveAnnouncements saves the swarm's catalogue (its public entries, in
// arrival order) in the store, when it has changed since the last save.
func (n *Node) saveAnnouncements(ctx context.Context) {
	kept, seq := n.sw.Kept()
	if seq == n.savedSeq {
		return
	}
	list := make([]store.SavedAnnouncement, len(kept))
	for i, r := range kept {
		list[i] = store.SavedAnnouncement{From: r.From, Data: r.Data}
	}
	if err := n.store.SaveAnnouncements(ctx, list); err != nil {
		n.log.Warn("the announcements seen could not be saved; trying again later", "err", err)
		return
	}
	n.savedSeq = seq
}

// keepSaving saves the catalogue every saveEvery while the node runs.
func (n *Node) keepSaving() {
	n.bg.Go(func() {
		t := time.NewTicker(saveEvery)
		defer t.Stop()
		for {
			select {
			case <-n.done:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				n.saveAnnouncements(ctx)
				cancel()
			}
		}
	})
}
