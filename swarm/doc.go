// Package swarm is orchmind's libp2p networking: one host that speaks TCP and
// QUIC (TLS preferred, or Noise), a Kademlia DHT under the private protocol
// prefix /orchmind (so its protocol id is /orchmind/kad/1.0.0), gossipsub
// topics for signed adapter announcements, a catalogue stream protocol that
// lets a node that just joined learn what was announced before it arrived,
// and two ways of moving blocks: BlocksProtocol between orchmind nodes, and
// bitswap, which serves the node's blockstore to any IPFS node and fetches
// what BlocksProtocol providers cannot give.
//
// # Fetching
//
// Fetch walks an adapter's DAG level by level. The blocks of a level go to
// the peers known to hold the DAG — the authors of its announcements (found
// in the catalogue, reached by peer ID through the DHT if need be), peers
// the caller names, the other holders those name over HoldersProtocol
// (each server of a DAG keeps a short list of the peers that fetch it and
// serve what they hold, so a popular pull spreads over its pullers at
// once), and, only as a fallback — when none of those is usable, or no
// block has arrived for two seconds — DHT providers — over
// BlocksProtocol: each request names up to 16 blocks, which the provider
// streams back in order, and each provider has two requests under way, so
// a transfer is one stream rather than a round trip per block. A provider
// that fails or leaves hands its unanswered blocks to the others; blocks
// none of them has are wanted over bitswap as well; when bitswap brings
// nothing for four seconds, its session is renewed and the connected
// orchmind peers are asked over BlocksProtocol too. Both ends keep the
// stream moving: the provider reads the next blocks from its store while
// one is being sent, and the fetcher takes answers off the stream while it
// hashes the one before. Each block is hash-checked once, on arrival, and
// handed to a writer goroutine, so the disk works while the network does:
// with the orchmind store each block's bytes go to a pack file at once, and
// a synced commit (one fsync per pack and one badger transaction) makes
// them durable every 16 MiB and at the end; only committed blocks are
// reported stored. A fetch that serves while it fetches serves the blocks
// it has verified and not yet committed from memory. The next level is asked for without waiting for the
// writes of the one before.
//
// # Identity
//
// The node's ed25519 key lives in DataDir/identity.key (libp2p's protobuf key
// encoding, mode 0600, written atomically). It is created on first start and
// reused afterwards, so the peer ID survives restarts.
//
// # NAT traversal
//
// The host asks the router for a port mapping (UPnP / NAT-PMP), runs AutoNAT
// (client, and a rate-limited service for others), hole punching (DCUtR) and
// the circuit-relay v2 client, and the relay service while AutoNAT finds
// the node publicly reachable (Config.PublicHelper: always), with libp2p's
// default resource limits. AutoRelay takes its relay candidates from the
// peers we are connected to (bootstrap, public DHT and orchmind peers);
// only peers that run a relay service are used, and one candidate is enough
// to start. Two nodes behind NAT meet through a relay and then hole punch
// (DCUtR), or directly when both dial each other's NAT address at once
// after finding each other in the rendezvous; behind a symmetric NAT they
// stay relayed (see integration's TestInternetLab).
//
// # Finding peers on the internet
//
// With Config.PublicDHT (DefaultConfig; off in the zero Config and under
// LocalOnly) the node also joins the public IPFS DHT (Amino, protocol
// /ipfs/kad/1.0.0) in client mode (server mode for a PublicHelper),
// bootstrapped from libp2p's default peers or Config.PublicBootstrap, and
// uses it only as a rendezvous (internet.go): it provides, through
// go-libp2p's routing discovery, the CIDs of the namespaces RendezvousAll,
// BaseNamespace(fingerprint) and RoomNamespace(topic) for every joined
// room, and looks them up, dialling the orchmind nodes found; those join the
// /orchmind DHT and gossip as any peer does. The orchmind peers it was
// connected to are saved in PeersFile in the data folder (every minute and
// at Close) and dialled at the next start. Listen addresses default to TCP
// and QUIC on IPv4 and IPv6 on DefaultPort (a free port when it is taken).
// Swarm.Network says how the node is reachable and how it found each peer.
//
// Config.LocalOnly turns all of that off, and mDNS with it: the node talks
// to the peers it is given and the peers they introduce, and to nothing
// else — no router, no multicast group, no relay. Tests, the demo,
// benchmarks and CI run that way. Swarm.Services reports which of these
// services a running node has.
//
// # Private networks
//
// With Config.PrivateNetworkKey (a 32-byte pre-shared key) every connection
// is encrypted a second time with that key and peers without it cannot
// connect. QUIC cannot carry a pre-shared key, so such a node listens and
// dials on TCP only.
//
// # Announcements
//
// Announcements travel on "/orchmind/catalogue/1" (all of them) and on
// "/orchmind/base/<fingerprint>/1" (only those for one base model). Every
// message is checked before it is accepted or forwarded: at most 16 KiB,
// decodes and carries a valid signature, the base fingerprint matches the
// topic, the pubsub author is the announcement's author, not a duplicate of
// one seen in the last few minutes, dated at most MaxClockSkew ahead, and
// within the rate limits: per author (Config.AnnounceRate), per forwarding
// peer (Config.PeerAnnounceRate, so fresh author keys do not get past it)
// and for all peers together (Config.GlobalAnnounceRate). Forgeries and
// future dates are rejected, which lowers the forwarding peer's gossipsub
// score, and so does each announcement a peer forwards past its rate
// limit (FloodPenalty); a peer whose score falls below the graylist
// threshold is ignored altogether.
//
// # Catalogue
//
// Accepted announcements (from gossip and from peers' catalogues) are
// kept in one bounded catalogue, one per (author, root): at most
// Config.CatalogueSize learned from peers, with quotas per author and per
// delivering peer, evicted by arrival (never by the author-chosen date);
// the node's own entries, those of pinned roots, and room entries (kept
// apart, never served) are not evicted by floods. A catalogue request is
// answered fairly: the node's own entries, then one from each delivering
// peer in turn. See docs/security.md ("Peers").
//
// # Base models
//
// With EnableBases, a node also announces the base model files it holds
// (base announcements, signed under their own domain so they are never
// taken for adapter ones) on BasesTopic, answers BasesProtocol requests
// with its own, and asks each peer it identifies for theirs (KnownBases).
// A base file is a UnixFS DAG fetched with Fetch from all its holders at
// once. See bases.go and docs/bases.md.
package swarm
