// Package layout is the pure part of cluster placement: which nodes exist,
// in which zone and with which capacity, and which of them store each of the
// 256 partitions. It does no I/O and starts no goroutines, so that placement
// can be tested exhaustively on its own.
//
// This first version knows a single kind of layout: every partition on the
// nodes given, which is what a single-node cluster needs. The optimal
// zone-aware assignment, staged changes and the version history arrive with
// the cluster issue and extend these types rather than replace them.
package layout

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// NumPartitions is the number of partitions of the ring: a partition is the
// first byte of a 32-byte hash.
const NumPartitions = 256

// Partition is one of the 256 partitions of the hash ring.
type Partition uint8

// PartitionOf returns the partition a 32-byte hash belongs to.
func PartitionOf(h [32]byte) Partition { return Partition(h[0]) }

// NodeID identifies a node: its 32-byte public key.
type NodeID [32]byte

// String returns the 64 lowercase hex digits of the ID.
func (id NodeID) String() string { return hex.EncodeToString(id[:]) }

// Short is the 16-hex-digit form used in logs and tables.
func (id NodeID) Short() string { return hex.EncodeToString(id[:8]) }

// IsZero reports whether id is the zero value.
func (id NodeID) IsZero() bool { return id == NodeID{} }

// Uint64 is the first 8 bytes read as a big-endian integer: the node's
// identity inside K2V causality tokens (k2v-api.md §4.1).
func (id NodeID) Uint64() uint64 { return binary.BigEndian.Uint64(id[:8]) }

// LogValue logs the short form.
func (id NodeID) LogValue() slog.Value { return slog.StringValue(id.Short()) }

// MarshalText implements encoding.TextMarshaler.
func (id NodeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *NodeID) UnmarshalText(b []byte) error {
	v, err := ParseNodeID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseNodeID parses 64 hex digits.
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	if len(s) != 64 {
		return id, fmt.Errorf("layout: node id %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("layout: node id %q: %w", s, err)
	}
	return id, nil
}

// Role is what a node does in the cluster.
type Role struct {
	Zone string
	// CapacityBytes is the storage the node offers; 0 means a gateway node
	// that stores nothing.
	CapacityBytes uint64
	Tags          []string
}

// Layout is one version of the cluster layout. It is immutable once built:
// share it by pointer, never modify it.
type Layout struct {
	Version           uint64
	ReplicationFactor int
	Roles             map[NodeID]Role
	// replicas[p] lists the nodes storing partition p, in preference order.
	replicas [NumPartitions][]NodeID
}

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("layout: invalid")

// SingleNode returns version 1 of a layout that assigns every partition to
// one node, with replication factor 1.
func SingleNode(id NodeID, role Role) *Layout {
	l := &Layout{Version: 1, ReplicationFactor: 1, Roles: map[NodeID]Role{id: role}}
	for p := range l.replicas {
		l.replicas[p] = []NodeID{id}
	}
	return l
}

// Replicas returns the nodes that store partition p. The caller must not
// modify the returned slice.
func (l *Layout) Replicas(p Partition) []NodeID { return l.replicas[p] }

// StorageNodes returns the nodes with a non-zero capacity, sorted.
func (l *Layout) StorageNodes() []NodeID {
	var out []NodeID
	for id, r := range l.Roles {
		if r.CapacityBytes > 0 {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b NodeID) int { return strings.Compare(string(a[:]), string(b[:])) })
	return out
}

// IsStorageNode reports whether id stores data in this layout.
func (l *Layout) IsStorageNode(id NodeID) bool {
	r, ok := l.Roles[id]
	return ok && r.CapacityBytes > 0
}
