// Package blocks stores S3 object data as content-addressed blocks:
// hashing, zstd compression, local storage on one or more data
// directories, replication to the RF nodes of a block's partition,
// reference counts, resync, scrub and garbage collection.
//
// The local half, which knows nothing of the cluster:
//
//   - Hash (hash.go) names a block: SHA-256 of its raw bytes. Equal blocks
//     have equal names and are stored once.
//   - Codec (codec.go) turns raw bytes into the stored form, a versioned
//     header with a CRC-32C followed by the raw bytes or a zstd frame, and
//     back. The stored form is the same on disk and on the wire, so a
//     block moves between nodes and disks without being recompressed, and
//     every reader can check it cheaply (DecodeHeader) before trusting it.
//   - Store (store.go) keeps one file per block under one or more data
//     directories, spread by capacity through a data layout (layout.go)
//     that survives changes of the directory list. With DirectIO, block
//     files of 64 KiB or more bypass the page cache (direct.go).
//
// Invariants:
//
//   - A block file is written whole or not at all (temporary file and
//     rename), and only after its stored form decoded; its name is the
//     hash its writer computed. Nothing in the store rehashes: readers call
//     Verify.
//   - Every error about damaged bytes wraps ErrCorrupt, so that repair
//     (resync, scrub) can find it; decoders never panic on bad input and
//     never allocate more than a block (MaxBlockSize) whatever a header
//     claims.
//   - The stored form of version 1 is frozen (codec.go).
//
// blocks may import k2v and cluster (docs/architecture.md); it knows
// nothing of S3: objects, versions and which block belongs to what are
// package s3's.
package blocks
