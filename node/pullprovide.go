package node

import (
	"math/rand/v2"
	"time"

	"github.com/ipfs/go-cid"
)

// pullProvideSpread bounds the random pause before a node that has just
// pulled an adapter provides it in the DHT. When an adapter is announced,
// many nodes pull it at once and would all walk the DHT to the same few
// peers closest to its CID in the same second; the pause spreads that
// burst. Nodes pulling at the same time find each other sooner, through
// the author's list of holders (swarm.HoldersProtocol), so the record is
// for those that come later.
const pullProvideSpread = 3 * time.Second

// provideAfterPull provides root in the DHT after a random pause of up to
// pullProvideSpread (see provide), unless the node closes first.
func (n *Node) provideAfterPull(root cid.Cid) {
	pause := rand.N(pullProvideSpread)
	n.bg.Go(func() {
		select {
		case <-time.After(pause):
			n.provide(root)
		case <-n.done:
		}
	})
}
