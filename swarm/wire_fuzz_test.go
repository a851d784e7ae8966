package swarm

import (
	"bufio"
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func oneLine(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}

// FuzzBlockRequest reads BlocksProtocol requests from arbitrary bytes: no
// panic, one-line errors, 1 to MaxBlocksPerRequest CIDs, and the request
// written back reads as the same CIDs.
func FuzzBlockRequest(f *testing.F) {
	var cs []cid.Cid
	for i := range 3 {
		h, _ := mh.Sum([]byte{byte(i)}, mh.SHA2_256, -1)
		cs = append(cs, cid.NewCidV1([]uint64{cid.Raw, cid.DagProtobuf, cid.DagProtobuf}[i], h))
	}
	cs = append(cs, cid.NewCidV0(cs[2].Hash()))
	var buf bytes.Buffer
	_ = writeBlockRequest(&buf, cs)
	f.Add(buf.Bytes())
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readBlockRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			oneLine(t, err)
			return
		}
		if len(got) == 0 || len(got) > MaxBlocksPerRequest {
			t.Fatalf("%d CIDs accepted", len(got))
		}
		var out bytes.Buffer
		if err := writeBlockRequest(&out, got); err != nil {
			t.Fatal(err)
		}
		again, err := readBlockRequest(bufio.NewReader(&out))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("request reads back as %v, %v (was %v)", again, err, got)
		}
	})
}

// FuzzBlockAnswer reads a stream of BlocksProtocol answers from arbitrary
// bytes: no panic, one-line errors, no block over maxBlockSize, io.EOF only
// at the end of the bytes, and the answers written back read the same.
func FuzzBlockAnswer(f *testing.F) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	_ = writeBlockAnswer(w, []byte("block one"))
	_ = writeBlockAnswer(w, nil)
	_ = writeBlockAnswer(w, []byte{})
	_ = writeBlockAnswer(w, bytes.Repeat([]byte{7}, 300))
	_ = w.Flush()
	f.Add(buf.Bytes())
	f.Add([]byte{1, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		src := bytes.NewReader(data)
		r := bufio.NewReader(src)
		var answers [][]byte
		var err error
		for {
			var b []byte
			if b, err = readBlockAnswer(r); err != nil {
				break
			}
			if len(b) > maxBlockSize {
				t.Fatalf("block of %d bytes", len(b))
			}
			answers = append(answers, b)
		}
		oneLine(t, err)
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		for _, a := range answers {
			if err := writeBlockAnswer(w, a); err != nil {
				t.Fatal(err)
			}
		}
		_ = w.Flush()
		rr := bufio.NewReader(&out)
		for i, a := range answers {
			b, err := readBlockAnswer(rr)
			if err != nil || !bytes.Equal(b, a) || (b == nil) != (a == nil) {
				t.Fatalf("answer %d written back reads as %q, %v; was %q", i, b, err, a)
			}
		}
		if err == io.EOF && (src.Len() != 0 || r.Buffered() != 0) {
			t.Fatal("io.EOF with bytes left")
		}
	})
}

// FuzzLinks decodes arbitrary blocks as a fetch does (dag-pb or raw, at the
// root or below): no panic, one-line errors, and only defined CIDs come
// out; verifyBlock accepts the block under its CID and refuses it changed.
func FuzzLinks(f *testing.F) {
	leaf := merkledag.NewRawNode([]byte("leaf data"))
	nd := merkledag.NodeWithData([]byte{0x08, 0x02})
	_ = nd.AddNodeLink("a", leaf)
	_ = nd.AddNodeLink("b", merkledag.NodeWithData(nil))
	f.Add(nd.RawData(), true, false)
	f.Add(nd.RawData(), true, true)
	f.Add(leaf.RawData(), false, false)
	f.Add([]byte{}, true, false)
	f.Fuzz(func(t *testing.T, data []byte, dagpb, atRoot bool) {
		codec := uint64(cid.Raw)
		if dagpb {
			codec = cid.DagProtobuf
		}
		c, err := cid.Prefix{Version: 1, Codec: codec, MhType: mh.SHA2_256, MhLength: -1}.Sum(data)
		if err != nil {
			t.Fatal(err)
		}
		b, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyBlock(c, data); err != nil {
			t.Fatalf("verifyBlock refuses the block under its own CID: %v", err)
		}
		if len(data) > 0 {
			bad := bytes.Clone(data)
			bad[0] ^= 1
			if verifyBlock(c, bad) == nil {
				t.Fatal("verifyBlock accepts changed bytes")
			}
		}
		fe := &fetcher{root: c}
		if !atRoot {
			fe.root = cid.NewCidV1(cid.Raw, c.Hash())
		}
		links, err := fe.links(b)
		if err != nil {
			oneLine(t, err)
			return
		}
		if !dagpb && len(links) != 0 {
			t.Fatalf("raw block with %d links", len(links))
		}
		for _, l := range links {
			if !l.Defined() {
				t.Fatal("undefined link CID")
			}
		}
	})
}
