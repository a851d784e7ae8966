package swarm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// BlocksProtocol is orchmind's bulk block transfer between orchmind nodes.
// A request names up to MaxBlocksPerRequest CIDs; the answer streams, in
// the same order, each block the server holds (or a byte saying it does
// not), with no round trip per block. Fetch uses it with peers known to
// hold the DAG (the announcement's author, DHT providers) and bitswap for
// whatever they cannot give; bitswap still serves every block to stock IPFS
// nodes.
//
// Wire format: the request is a uvarint count n (1 to MaxBlocksPerRequest)
// and n frames, each a CID's binary form; the client then closes its side.
// The answer holds, for each CID in order, one byte, 1 if the block follows
// as a frame of its bytes (at most 2 MiB) or 0 if the server does not have
// it. A frame is a uvarint length and that many bytes.
const BlocksProtocol protocol.ID = "/orchmind/blocks/1.0.0"

// MaxBlocksPerRequest bounds the CIDs of one BlocksProtocol request.
const MaxBlocksPerRequest = 1024

const (
	// maxBlockSize is the largest block sent or accepted (bitswap's limit).
	maxBlockSize = 2 << 20
	// maxCIDBytes bounds a CID on the wire (bitswap's limit).
	maxCIDBytes = 168
	// blockIdleTimeout is the longest an exchange waits for the peer to
	// send or take the next part of a request or answer.
	blockIdleTimeout = 20 * time.Second
	// maxServing bounds the answers this node streams at once; further
	// requests wait for a free slot.
	maxServing = 64
	// maxServingPerPeer bounds the answers streamed to one peer at once.
	maxServingPerPeer = 8
	// serveReadAhead is how many blocks an answer reads from the store
	// ahead of the one it is sending.
	serveReadAhead = 2
	// fetchReadAhead is how many answers a request reads off the stream
	// ahead of the one it is hashing.
	fetchReadAhead = 2
)

// errBadBlock is returned by requestBlocks when the peer sent bytes that
// do not hash to the CID they were sent for.
var errBadBlock = errors.New("peer sent a block whose bytes do not match its CID")

func writeBlockRequest(w io.Writer, cs []cid.Cid) error {
	var buf []byte
	buf = binary.AppendUvarint(buf, uint64(len(cs)))
	for _, c := range cs {
		b := c.Bytes()
		buf = binary.AppendUvarint(buf, uint64(len(b)))
		buf = append(buf, b...)
	}
	_, err := w.Write(buf)
	return err
}

func readBlockRequest(r *bufio.Reader) ([]cid.Cid, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n == 0 || n > MaxBlocksPerRequest {
		return nil, fmt.Errorf("request for %d blocks; 1 to %d are allowed", n, MaxBlocksPerRequest)
	}
	cs := make([]cid.Cid, 0, n)
	for range n {
		b, err := readFrame(r, maxCIDBytes)
		if err != nil {
			return nil, err
		}
		c, err := cid.Cast(b)
		if err != nil {
			return nil, fmt.Errorf("bad CID in request: %w", err)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// writeBlockAnswer writes one answer: data, or "not here" when data is nil.
func writeBlockAnswer(w *bufio.Writer, data []byte) error {
	if data == nil {
		return w.WriteByte(0)
	}
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = 1
	n := binary.PutUvarint(hdr[1:], uint64(len(data)))
	if _, err := w.Write(hdr[:1+n]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// readBlockAnswer reads one answer; nil data (and no error) means "not here".
func readBlockAnswer(r *bufio.Reader) ([]byte, error) {
	flag, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	switch flag {
	case 0:
		return nil, nil
	case 1:
		b, err := readFrame(r, maxBlockSize)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return b, err
	}
	return nil, fmt.Errorf("bad answer flag %d", flag)
}

// serveBlocks answers one BlocksProtocol request from the blockstore.
// Blocks it does not hold (or that fail the store's integrity check) are
// answered "not here".
func (s *Swarm) serveBlocks(st network.Stream) {
	defer st.Close()
	p := st.Conn().RemotePeer()
	_ = st.SetReadDeadline(time.Now().Add(blockIdleTimeout))
	cs, err := readBlockRequest(bufio.NewReader(st))
	if err != nil {
		s.log.Debug("bad blocks request", "peer", p.String(), "err", err)
		_ = st.Reset()
		return
	}
	// One peer gets at most maxServingPerPeer answers at once (a fetch
	// uses two): more are refused, and it asks elsewhere.
	s.servingMu.Lock()
	if s.servingPeer[p] >= maxServingPerPeer {
		s.servingMu.Unlock()
		s.log.Debug("refusing a blocks request: too many from this peer", "peer", p.String())
		_ = st.Reset()
		return
	}
	s.servingPeer[p]++
	s.servingMu.Unlock()
	defer func() {
		s.servingMu.Lock()
		if s.servingPeer[p]--; s.servingPeer[p] <= 0 {
			delete(s.servingPeer, p)
		}
		s.servingMu.Unlock()
	}()
	select {
	case s.serving <- struct{}{}:
		defer func() { <-s.serving }()
	case <-s.ctx.Done():
		_ = st.Reset()
		return
	}
	// The next blocks are read from the store while one is being sent, so
	// the stream does not wait for each read (up to serveReadAhead blocks,
	// each at most maxBlockSize, are held).
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// A block read from a pack goes into a buffer from serveBufs, which
	// returns there once the block is written (a Write does not keep it).
	type answer struct {
		data []byte
		buf  *[]byte
	}
	next := make(chan answer, serveReadAhead)
	go func() {
		defer close(next)
		rs, _ := s.cfg.Blockstore.(servingReader)
		for _, c := range cs {
			var a answer
			var err error
			if d := s.fetchingBlks.get(c); d != nil {
				a.data = d // verified, not yet stored (WithServeWhileFetching)
			} else if rs != nil {
				a.buf = s.serveBufs.Get().(*[]byte)
				a.data, err = rs.ReadToServe(ctx, c, *a.buf)
			} else {
				var b blocks.Block
				if b, err = s.cfg.Blockstore.Get(ctx, c); err == nil {
					a.data = b.RawData()
				}
			}
			if err != nil {
				a.data = nil // "not here"
			} else if a.data == nil {
				a.data = []byte{} // an empty block
			}
			select {
			case next <- a:
			case <-ctx.Done():
				return
			}
		}
	}()
	w := bufio.NewWriterSize(st, 32<<10)
	for a := range next {
		_ = st.SetWriteDeadline(time.Now().Add(blockIdleTimeout))
		err := writeBlockAnswer(w, a.data)
		if a.buf != nil {
			s.serveBufs.Put(a.buf)
		}
		if err == nil && len(next) == 0 {
			err = w.Flush() // nothing else ready: send what is buffered
		}
		if err != nil {
			s.log.Debug("blocks answer broke off", "peer", p.String(), "err", err)
			_ = st.Reset()
			return
		}
	}
	if err := w.Flush(); err != nil {
		s.log.Debug("blocks answer broke off", "peer", p.String(), "err", err)
		_ = st.Reset()
	}
}

// servingReader is implemented by blockstores that can read a block to
// serve into a caller's buffer and without hashing it again where a
// cheaper check guards it against rot on disk (store.Store: the CRC-32C
// of a packed block): the peer that receives it hashes it anyway. It
// returns the block's bytes (in buf when they fit), an error wrapping
// ipld.ErrNotFound when it is not stored.
type servingReader interface {
	ReadToServe(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error)
}

// blockAnswer is one answer read off a stream, or the error that ended it.
type blockAnswer struct {
	data []byte
	err  error
}

// requestBlocks asks p for cs over one BlocksProtocol stream and hands each
// block whose bytes hash to its CID to got, in order, as it arrives. It
// returns the CIDs p answered "not here" and how many of cs were answered
// (a block or "not here"). A non-nil error means the exchange stopped after
// answered of them: the stream failed, ctx ended, got failed, or p sent a
// block that does not match its CID (errBadBlock; p is then reported to the
// audit, which bans it).
func (s *Swarm) requestBlocks(ctx context.Context, p peer.ID, cs []cid.Cid, got func(blocks.Block) error) (missing []cid.Cid, answered int, err error) {
	if !s.isConnected(p) {
		if err := s.ConnectPeer(ctx, p); err != nil {
			return nil, 0, err
		}
	}
	st, err := s.host.NewStream(ctx, p, BlocksProtocol)
	if err != nil {
		return nil, 0, fmt.Errorf("opening a blocks stream to %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()
	_ = st.SetWriteDeadline(time.Now().Add(blockIdleTimeout))
	if err := writeBlockRequest(st, cs); err != nil {
		_ = st.Reset()
		return nil, 0, fmt.Errorf("sending a blocks request to %s: %w", p, err)
	}
	_ = st.CloseWrite()
	// A reader goroutine keeps taking answers off the stream (up to
	// fetchReadAhead ahead) while this one hashes and hands them on, so
	// the sender is not held up by the hashing.
	answers := make(chan blockAnswer, fetchReadAhead)
	quit := make(chan struct{})
	readerDone := make(chan struct{})
	defer func() { close(quit); <-readerDone }()
	go func() {
		defer close(readerDone)
		r := bufio.NewReaderSize(st, 64<<10)
		for range cs {
			_ = st.SetReadDeadline(time.Now().Add(blockIdleTimeout))
			data, err := readBlockAnswer(r)
			select {
			case answers <- blockAnswer{data, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for i, c := range cs {
		a := <-answers
		data, err := a.data, a.err
		if err != nil {
			_ = st.Reset()
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return missing, i, fmt.Errorf("reading blocks from %s: %w", p, err)
		}
		if data == nil {
			missing = append(missing, c)
			continue
		}
		if err := verifyBlock(c, data); err != nil {
			_ = st.Reset()
			s.audit.report(p, c)
			return missing, i, fmt.Errorf("%w: %s from %s (%v)", errBadBlock, c, p, err)
		}
		blk, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			_ = st.Reset()
			return missing, i, err
		}
		if err := got(blk); err != nil {
			_ = st.Reset()
			return missing, i, err
		}
	}
	_ = st.Close()
	return missing, len(cs), nil
}

// verifyBlock checks that data hashes to c.
func verifyBlock(c cid.Cid, data []byte) error {
	sum, err := c.Prefix().Sum(data)
	if err != nil {
		return fmt.Errorf("hashing: %w", err)
	}
	if !bytes.Equal(sum.Hash(), c.Hash()) {
		return fmt.Errorf("the bytes hash to %s", sum)
	}
	return nil
}
