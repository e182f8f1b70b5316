// Package blocks will store S3 object data as content-addressed blocks:
// chunking, hashing, zstd compression, local storage on one or more data
// directories, replication to the RF nodes of a block's partition,
// reference counts, resync, scrub and garbage collection.
//
// Nothing is implemented yet (see the "Blocks" issue). The package exists
// so that the dependency rules of docs/architecture.md are checked from
// the start: blocks may import k2v and cluster, and knows nothing of S3.
package blocks
