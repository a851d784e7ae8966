// Package store is orchmind's content store: a badger (v4) database that
// holds blocks keyed by CID, pins, garbage collection, a size quota and
// the signed announcements the node has seen. *Store implements boxo's
// blockstore.Blockstore (and GCLocker), so bitswap and a blockservice use
// it directly.
//
// # Blocks
//
// Blocks are stored under their CIDv1 (a CIDv0 is stored and looked up as
// the CIDv1 with the same multihash); only sha2-256 CIDs are accepted, and
// blocks of at most MaxBlockSize (2 MiB). Blocks under 64 KiB live in
// badger; larger ones are appended to pack files (packs/NNNNNNNN.pack, at
// most 256 MiB each) with write(2) and fsync, and badger keeps a reference
// (pack, offset, length, CRC-32C) to them: badger's memory-mapped value
// log costs several times the CPU per byte written.
//
// Put checks that the bytes hash to the CID (PutManyVerified takes blocks
// the caller has just hash-checked, as a fetch does on arrival, and does
// not hash them again). Get hashes the bytes again on every read, except
// for a block whose bytes were hash-checked (on a read, or before they
// were written) within the last minute and whose record has not been
// rewritten since; every read of a
// packed block checks its CRC-32C, and badger checks the CRC of its value
// log entries, so bytes that rot on disk are caught either way. A block
// that no longer matches is logged, deleted and reported with an error
// wrapping ErrCorrupt instead of being served, so it can be fetched again.
// Writes are synced before they return: a pack's bytes before the badger
// transaction that refers to them (itself opened with SyncWrites), so when
// Put returns the block is on disk and survives a crash or power cut
// (tested by killing a writer process with SIGKILL); a crash in between
// leaves only unreferenced bytes at the end of a pack. A BlockWriter (what
// a fetch stores with) splits a write in two: Add appends a verified
// block's bytes to a pack at once and starts their writeback
// (sync_file_range on Linux) without waiting; Commit syncs the packs and
// commits the records of everything added in one synced transaction. Only
// then are the blocks in the store and acknowledged, with the same
// guarantee as Put, at one fsync per pack per commit instead of per batch.
// Exported files are written the same way, writeback started as each part
// is written, and synced before they are renamed into place.
//
// File packs: when a BlockWriter takes a UnixFS file node of at least
// 1 MiB whose data all lies in raw leaves not stored yet, the leaves go to
// a pack of that file's own (packs/NNNNNNNN.file.pack, never appended
// to), each at its offset in the file; an export of a file whose leaves
// are all there, checked within the last minute, hard-links the pack into
// the exported folder instead of writing the bytes again (and copies
// where it cannot). A pulled adapter's weights are so written and synced
// once, and take their space once. The exported file shares the pack's
// inode: editing it in place (orchmind writes files anew and renames them)
// is caught by the CRC-32C as rot is. Blocks served to peers
// (ReadToServe) are CRC-checked, not hashed again: the receiver hashes
// them.
//
// # Pins, GC and quota
//
// Pin(root) pins a DAG recursively after walking it (every block must be
// present and intact; dag-pb links are followed with boxo's merkledag
// decoder, raw blocks are leaves). GC deletes every block that no pin
// reaches, then gives the space back: pack files nothing refers to are
// deleted, those less than half referred to are rewritten, and badger's
// value log is compacted. PinLock holds GC off during an
// import or a fetch that will end in a pin. With Options.Quota set, a Put
// that would exceed it fails with
//
//	store full: 1.2 GiB of 1.0 GiB used; unpin adapters or raise --quota
//
// (wrapping ErrStoreFull). Usage counts block bytes only.
//
// # Content addressing (IPFS-compatible UnixFS)
//
// ImportFolder turns an adapter folder into a UnixFS directory with exactly
// these parameters, the same as
//
//	ipfs add -r --cid-version=1 --raw-leaves --chunker=size-1048576 <dir>
//
// in kubo:
//
//   - files are cut into fixed 1 MiB chunks (boxo chunker size-1048576);
//   - chunks are raw leaves (codec raw, 0x55); a file of one chunk is just
//     that raw block, an empty file is a raw block of zero bytes;
//   - larger files use boxo's balanced layout with at most 174 links per
//     node (MaxLinks), dag-pb UnixFS File nodes;
//   - every CID is CIDv1 with sha2-256;
//   - folders are UnixFS directories built with boxo's unixfs/io directory
//     builder, entries added in byte order of their names (dag-pb sorts
//     links by name anyway), switching to a HAMT shard only past boxo's
//     default threshold (256 KiB of links), which adapter folders never
//     reach;
//   - file mode and modification time are not stored, so the root CID
//     depends only on names and contents.
//
// The root CID of a fixed folder is pinned in the tests, so any change of
// these parameters is caught. It was checked against kubo 0.44.0-dev
// (`ipfs add -r --only-hash` with the flags above): same root CIDs for that
// folder, for nested folders with an empty file, and for a 180 MiB file
// (two-level balanced tree); TestKuboCrossCheck repeats the check when
// ORCHMIND_IPFS names an ipfs binary. HashFolder computes a folder's root CID
// without storing it. ExportFolder writes a DAG back into a new folder via a
// temporary folder, from blocks read with Get (so checked against their
// CIDs), checks each file's length against its UnixFS size, syncs, and
// renames it into place; entry names that are empty, ".", "..", or contain
// a path separator or NUL are refused. Before writing anything it reads
// the folders and file nodes and checks names, counts and the total the
// files declare against WithMaxBytes and the free disk space; while
// writing it counts every byte per reference (a block linked many times
// counts each time) and stops at the first byte past a file's declared
// size or the cap (ErrExportTooLarge).
//
// # Saved announcements
//
// SaveAnnouncements keeps the node's catalogue of signed announcements
// (the bytes as received and the peer that delivered each) so that a
// restarted node still knows what it had seen; Announcements reads them
// back. The store does not interpret them: the node verifies each again
// when it loads it. A save replaces the whole list atomically (a new
// generation of keys, then the pointer to it) and is bounded
// (MaxSavedAnnouncements entries of at most MaxSavedAnnouncementSize).
//
// # Opening
//
// Only one process can open a store folder; a second gets an error wrapping
// ErrLocked that says another orchmind node holds it. Close releases the
// lock.
package store
