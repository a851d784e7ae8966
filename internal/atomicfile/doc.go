// Package atomicfile writes files so that a crash, a kill or a full disk at
// any moment leaves under the name either the old file or the complete new
// one, never part of one: the bytes go to a temporary file in the same
// folder, which is synced to disk, renamed over the name, and the folder is
// synced so that the rename itself survives a power cut.
package atomicfile
