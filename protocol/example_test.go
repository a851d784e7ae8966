package protocol_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"

	"orchmind/protocol"
)

// An author signs an announcement; a receiver opens (decodes and verifies)
// the bytes that came over the network.
func Example() {
	key, _, _ := crypto.GenerateEd25519Key(bytes.NewReader(make([]byte, 32)))
	root, _ := cid.Decode("bafybeiczfjiwtqzilxp2wdreptx4vwf2fq2mm7gx7rllkx3tegqh632gba")
	signed, err := protocol.Sign(protocol.Announcement{
		Root: root,
		Manifest: protocol.Manifest{
			Name: "pirate-talk", BaseFingerprint: "sha256:0123", BaseName: "stories260K",
			Rank: 8, Alpha: 16, Tags: []string{"fun"},
		},
		Size:    2109152,
		Created: time.UnixMilli(1_790_000_000_000),
	}, key)
	if err != nil {
		fmt.Println(err)
		return
	}
	a, err := protocol.Open(signed)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.Manifest.Name, a.Manifest.BaseName, a.Root, a.Version)
	fmt.Println("author:", a.Author)

	signed[len(signed)-1] ^= 1 // one bit of the signature flipped in transit
	_, err = protocol.Open(signed)
	fmt.Println(err != nil)
	// Output:
	// pirate-talk stories260K bafybeiczfjiwtqzilxp2wdreptx4vwf2fq2mm7gx7rllkx3tegqh632gba 1.0
	// author: 12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN
	// true
}
