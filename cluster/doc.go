// Package cluster owns what makes a set of machines one grange cluster:
// node identity, the cluster layout (which nodes store which of the 256
// partitions) and, as the cluster grows, the encrypted RPC transport,
// peering, failure detection and quorum calls.
//
// Invariants:
//   - A node's identity is its 32-byte X25519 public key, generated once and
//     kept in the metadata directory; it never changes for the life of the
//     data directory, because K2V causality tokens embed it.
//   - The layout is an immutable snapshot; a new version replaces it whole.
//
// cluster imports no other grange package except cluster/layout: tables,
// items, blocks and S3 are built on top of it and speak to it in node IDs and
// bytes.
package cluster

import "github.com/grangeio/grange/cluster/layout"

// NodeID identifies a node: its 32-byte public key.
type NodeID = layout.NodeID

// Partition is one of the 256 partitions of the hash ring.
type Partition = layout.Partition

// NumPartitions is the number of partitions of the ring.
const NumPartitions = layout.NumPartitions

// PartitionOf returns the partition a 32-byte hash belongs to.
func PartitionOf(h [32]byte) Partition { return layout.PartitionOf(h) }

// ParseNodeID parses the 64-hex-digit form of a node ID.
func ParseNodeID(s string) (NodeID, error) { return layout.ParseNodeID(s) }
