// Package layout is the pure part of cluster placement: which nodes exist,
// in which zone and with which capacity, and which of them store each of the
// 256 partitions. It does no I/O and starts no goroutines, so that placement
// can be tested exhaustively on its own.
//
// It follows Garage's layout (deuxfleurs-org/garage: src/rpc/layout,
// doc/optimal_layout_report). A [Layout] is one immutable version: roles
// plus an assignment of every partition to ReplicationFactor distinct
// storage nodes spread over at least ZoneRedundancy zones. The assignment is
// computed in two steps (assign.go): the largest partition size any
// assignment can give every replica, found as a maximum flow, then among
// the assignments achieving it one that moves the fewest replicas away from
// the previous version, found as a minimum-cost flow.
//
// A [History] is what the cluster gossips: the active versions (several
// during a change, while data moves), a few retired ones, per-node trackers
// of which versions each node has acknowledged and synced, and the changes
// staged for the next version. Its Merge is a CRDT join, so nodes converge
// whatever order they receive histories in.
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

// MaxReplicationFactor bounds the replication factor a history accepts.
const MaxReplicationFactor = 32

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

func compareIDs(a, b NodeID) int { return strings.Compare(string(a[:]), string(b[:])) }

func sortedIDs[V any](m map[NodeID]V) []NodeID {
	ids := make([]NodeID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	return ids
}

// Role is what a node does in the cluster.
type Role struct {
	Zone string
	// CapacityBytes is the storage the node offers; 0 means a gateway node
	// that stores nothing.
	CapacityBytes uint64
	Tags          []string
}

// clone returns a copy of r sharing nothing with it; empty tags become nil.
func (r Role) clone() Role {
	r.Tags = slices.Clip(slices.Clone(r.Tags))
	if len(r.Tags) == 0 {
		r.Tags = nil
	}
	return r
}

func (r Role) equal(o Role) bool {
	return r.Zone == o.Zone && r.CapacityBytes == o.CapacityBytes && slices.Equal(r.Tags, o.Tags)
}

// compareRoles is a total order on roles, used to break ties between
// concurrent changes stamped alike.
func compareRoles(a, b Role) int {
	if c := strings.Compare(a.Zone, b.Zone); c != 0 {
		return c
	}
	if a.CapacityBytes != b.CapacityBytes {
		if a.CapacityBytes < b.CapacityBytes {
			return -1
		}
		return 1
	}
	return slices.Compare(a.Tags, b.Tags)
}

// Layout is one version of the cluster layout. It is immutable once built:
// share it by pointer, never modify it.
type Layout struct {
	Version           uint64
	ReplicationFactor int
	// ZoneRedundancy is the number of distinct zones every partition was
	// spread over when this version was computed: Parameters.ZoneRedundancy,
	// or the maximum possible when that is 0. It is 0 only for version 0.
	ZoneRedundancy int
	// Parameters are the settings the operator asked for.
	Parameters Parameters
	// PartitionSize is the bytes each partition replica may use: the
	// largest size for which every storage node can hold the partitions
	// assigned to it. 0 for version 0.
	PartitionSize uint64
	// Roles holds the storage nodes and the gateways of this version.
	Roles map[NodeID]Role
	// replicas[p] lists the nodes storing partition p, sorted by ID; every
	// list is empty in version 0.
	replicas [NumPartitions][]NodeID
}

// ErrInvalid is wrapped by every validation error of this package: bad
// input bytes, bad roles or parameters, roles that admit no assignment.
var ErrInvalid = errors.New("layout: invalid")

// SingleNode returns version 1 of a layout that assigns every partition to
// one node, with replication factor 1. Its partition size is the node's
// capacity divided among the 256 partitions, as the general algorithm
// computes it.
func SingleNode(id NodeID, role Role) *Layout {
	role = role.clone()
	l, _, err := compute(1, 1, Parameters{}, map[NodeID]Role{id: role}, nil)
	if err == nil {
		return l
	}
	// A gateway or a node of less than 256 bytes admits no assignment;
	// keep every partition on it anyway, as a single-node cluster has no
	// other choice.
	l = &Layout{Version: 1, ReplicationFactor: 1, ZoneRedundancy: 1, Roles: map[NodeID]Role{id: role}, PartitionSize: role.CapacityBytes / NumPartitions}
	for p := range l.replicas {
		l.replicas[p] = []NodeID{id}
	}
	return l
}

// Replicas returns the nodes that store partition p, sorted by ID; none in
// version 0. The caller must not modify the returned slice.
func (l *Layout) Replicas(p Partition) []NodeID { return l.replicas[p] }

// Nodes returns every node with a role, gateways included, sorted.
func (l *Layout) Nodes() []NodeID { return sortedIDs(l.Roles) }

// StorageNodes returns the nodes with a non-zero capacity, sorted.
func (l *Layout) StorageNodes() []NodeID {
	var out []NodeID
	for id, r := range l.Roles {
		if r.CapacityBytes > 0 {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, compareIDs)
	return out
}

// IsStorageNode reports whether id stores data in this layout.
func (l *Layout) IsStorageNode(id NodeID) bool {
	r, ok := l.Roles[id]
	return ok && r.CapacityBytes > 0
}

// Partitions returns the number of partitions id stores.
func (l *Layout) Partitions(id NodeID) int {
	n := 0
	for _, rs := range l.replicas {
		if slices.Contains(rs, id) {
			n++
		}
	}
	return n
}

// UsableBytes is the storage id offers that this version uses:
// Partitions(id) × PartitionSize.
func (l *Layout) UsableBytes(id NodeID) uint64 {
	return uint64(l.Partitions(id)) * l.PartitionSize
}

// Zones returns the zones of the storage nodes, sorted, without repeats.
func (l *Layout) Zones() []string {
	var zs []string
	for _, r := range l.Roles {
		if r.CapacityBytes > 0 {
			zs = append(zs, r.Zone)
		}
	}
	slices.Sort(zs)
	return slices.Compact(zs)
}

// hasAssignment reports whether the partitions are assigned at all.
func (l *Layout) hasAssignment() bool { return len(l.replicas[0]) > 0 }

// Moved counts the partition replicas of new that old does not have: the
// (partition, node) pairs whose data must be copied to apply new. With old
// nil or version 0 it is every replica of new.
func Moved(old, new *Layout) int {
	n := 0
	for p := range new.replicas {
		for _, id := range new.replicas[p] {
			if old == nil || !slices.Contains(old.replicas[p], id) {
				n++
			}
		}
	}
	return n
}
