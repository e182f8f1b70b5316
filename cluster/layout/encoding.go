package layout

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/grangeio/grange/cluster/internal/wire"
)

// The first byte of every encoding says what follows. The formats are
// frozen: a change is a new format byte, and decoding keeps accepting the
// old ones, since nodes persist these bytes.
const (
	// formatLayoutV1 is a single layout as the first version wrote it:
	// version, replication factor, the roles sorted by node ID (ID, zone,
	// capacity, tags), then for each partition its replica count and the
	// indexes of its nodes in the role list.
	formatLayoutV1 = 1
	// formatLayoutV2 is a single layout: as V1 with, after the replication
	// factor, the effective zone redundancy, the zone redundancy asked
	// for and the partition size.
	formatLayoutV2 = 2
	// formatHistoryV1 is a history: the active versions and the retired
	// ones (each a count, then V2 layouts without format byte), the Ack,
	// Sync and SyncAck trackers (each a count, then node ID and version
	// sorted by ID), then the staging: stamp, parameters stamp, zone
	// redundancy, and a count of staged roles sorted by ID, each the ID, its
	// stamp, 0 for a removal or 1 followed by the role as in a layout.
	formatHistoryV1 = 3
)

// Encode appends the binary form of l to dst.
func (l *Layout) Encode(dst []byte) []byte {
	return l.appendBody(append(dst, formatLayoutV2))
}

func (l *Layout) appendBody(dst []byte) []byte {
	ids := sortedIDs(l.Roles)
	index := make(map[NodeID]int, len(ids))
	dst = binary.AppendUvarint(dst, l.Version)
	dst = binary.AppendUvarint(dst, uint64(l.ReplicationFactor))
	dst = binary.AppendUvarint(dst, uint64(l.ZoneRedundancy))
	dst = binary.AppendUvarint(dst, uint64(l.Parameters.ZoneRedundancy))
	dst = binary.AppendUvarint(dst, l.PartitionSize)
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for i, id := range ids {
		index[id] = i
		dst = append(dst, id[:]...)
		dst = appendRole(dst, l.Roles[id])
	}
	for p := range l.replicas {
		dst = binary.AppendUvarint(dst, uint64(len(l.replicas[p])))
		for _, id := range l.replicas[p] {
			dst = binary.AppendUvarint(dst, uint64(index[id]))
		}
	}
	return dst
}

func appendRole(dst []byte, r Role) []byte {
	dst = wire.AppendString(dst, r.Zone)
	dst = binary.AppendUvarint(dst, r.CapacityBytes)
	dst = binary.AppendUvarint(dst, uint64(len(r.Tags)))
	for _, t := range r.Tags {
		dst = wire.AppendString(dst, t)
	}
	return dst
}

// Encode appends the binary form of h to dst. Equal histories encode
// alike, so the encoding can be hashed to compare histories.
func (h *History) Encode(dst []byte) []byte {
	dst = append(dst, formatHistoryV1)
	for _, ls := range [][]*Layout{h.Versions, h.OldVersions} {
		dst = binary.AppendUvarint(dst, uint64(len(ls)))
		for _, l := range ls {
			dst = l.appendBody(dst)
		}
	}
	for _, t := range []map[NodeID]uint64{h.Trackers.Ack, h.Trackers.Sync, h.Trackers.SyncAck} {
		dst = binary.AppendUvarint(dst, uint64(len(t)))
		for _, id := range sortedIDs(t) {
			dst = append(dst, id[:]...)
			dst = binary.AppendUvarint(dst, t[id])
		}
	}
	s := &h.Staging
	dst = binary.AppendUvarint(dst, s.Stamp)
	dst = binary.AppendUvarint(dst, s.ParamStamp)
	dst = binary.AppendUvarint(dst, uint64(s.Parameters.ZoneRedundancy))
	dst = binary.AppendUvarint(dst, uint64(len(s.Roles)))
	for _, id := range sortedIDs(s.Roles) {
		sr := s.Roles[id]
		dst = append(dst, id[:]...)
		dst = binary.AppendUvarint(dst, sr.Stamp)
		if sr.Role == nil {
			dst = append(dst, 0)
		} else {
			dst = appendRole(append(dst, 1), *sr.Role)
		}
	}
	return dst
}

// decoder reads the formats above; wire.Reader checks every length and
// keeps the first error.
type decoder struct{ wire.Reader }

func newDecoder(b []byte) *decoder { return &decoder{wire.Reader{B: b, Invalid: ErrInvalid}} }

func (d *decoder) id() NodeID {
	var id NodeID
	copy(id[:], d.Bytes(32))
	return id
}

// ids reads count node IDs through read, requiring them strictly ascending
// so that an encoding is canonical.
func (d *decoder) ids(n int, read func(id NodeID)) {
	var prev NodeID
	for i := range n {
		id := d.id()
		if d.Err != nil {
			return
		}
		if i > 0 && compareIDs(prev, id) >= 0 {
			d.Fail("node IDs out of order")
			return
		}
		prev = id
		read(id)
	}
}

func (d *decoder) role() Role {
	r := Role{Zone: d.String(), CapacityBytes: d.Uvarint()}
	nt := d.Count("tags", 1)
	for range nt {
		r.Tags = append(r.Tags, d.String())
	}
	return r
}

func (d *decoder) end() {
	if d.Err == nil && len(d.B) != 0 {
		d.Fail("%d trailing bytes", len(d.B))
	}
}

// layout reads a layout body in format formatLayoutV1 or formatLayoutV2.
func (d *decoder) layout(format byte) *Layout {
	l := &Layout{Version: d.Uvarint()}
	l.ReplicationFactor = d.Small("replication factor", MaxReplicationFactor)
	if format == formatLayoutV2 {
		l.ZoneRedundancy = d.Small("zone redundancy", l.ReplicationFactor)
		l.Parameters.ZoneRedundancy = d.Small("zone redundancy", l.ReplicationFactor)
		l.PartitionSize = d.Uvarint()
	}
	if d.Err == nil && l.ReplicationFactor == 0 {
		d.Fail("replication factor 0")
	}
	n := d.Count("roles", 32+3)
	ids := make([]NodeID, 0, n)
	l.Roles = make(map[NodeID]Role, n)
	d.ids(n, func(id NodeID) {
		ids = append(ids, id)
		l.Roles[id] = d.role()
	})
	assigned := false
	for p := range l.replicas {
		nr := d.Uvarint()
		if d.Err != nil {
			return nil
		}
		if p == 0 {
			assigned = nr > 0
		}
		if assigned && nr != uint64(l.ReplicationFactor) || !assigned && nr != 0 {
			d.Fail("partition %d has %d replicas, want %d", p, nr, l.ReplicationFactor)
			return nil
		}
		for range nr {
			j := d.Uvarint()
			if j >= uint64(len(ids)) {
				d.Fail("partition %d: node index %d of %d", p, j, len(ids))
				return nil
			}
			if slices.Contains(l.replicas[p], ids[j]) {
				d.Fail("partition %d: node %s twice", p, ids[j].Short())
				return nil
			}
			l.replicas[p] = append(l.replicas[p], ids[j])
		}
		slices.SortFunc(l.replicas[p], compareIDs)
	}
	if d.Err != nil {
		return nil
	}
	if format == formatLayoutV1 && assigned {
		l.deriveV1()
	}
	return l
}

// deriveV1 fills the fields format V1 lacks from the assignment: the zone
// redundancy it achieves, and the largest partition size its nodes hold
// (Garage's migration of its v0.8 layouts).
func (l *Layout) deriveV1() {
	l.ZoneRedundancy = l.ReplicationFactor
	for _, rs := range l.replicas {
		var zs []string
		for _, id := range rs {
			zs = append(zs, l.Roles[id].Zone)
		}
		slices.Sort(zs)
		l.ZoneRedundancy = min(l.ZoneRedundancy, len(slices.Compact(zs)))
	}
	l.PartitionSize = 0
	for i, id := range l.Nodes() {
		if n := l.Partitions(id); n > 0 {
			s := l.Roles[id].CapacityBytes / uint64(n)
			if i == 0 || s < l.PartitionSize {
				l.PartitionSize = s
			}
		}
	}
}

// Decode parses the output of Encode, or a layout in the first format.
// It returns an error wrapping ErrInvalid for any other input.
func Decode(b []byte) (*Layout, error) {
	if len(b) == 0 || b[0] != formatLayoutV1 && b[0] != formatLayoutV2 {
		return nil, fmt.Errorf("%w: unknown layout format", ErrInvalid)
	}
	d := newDecoder(b[1:])
	l := d.layout(b[0])
	d.End()
	if d.Err != nil {
		return nil, d.Err
	}
	return l, nil
}

// DecodeHistory parses the output of History.Encode. It also accepts a
// single layout encoded by Layout.Encode, in any format a version of this
// package wrote, and returns HistoryFrom of it: nodes persisted a single
// layout before histories existed. It returns an error wrapping ErrInvalid
// for any other input, and checks the invariants of a history: versions
// consecutive, retired ones older, one replication factor, staged roles
// valid.
func DecodeHistory(b []byte) (*History, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty history", ErrInvalid)
	}
	switch b[0] {
	case formatLayoutV1, formatLayoutV2:
		l, err := Decode(b)
		if err != nil {
			return nil, err
		}
		return HistoryFrom(l), nil
	case formatHistoryV1:
	default:
		return nil, fmt.Errorf("%w: unknown history format %d", ErrInvalid, b[0])
	}
	d := newDecoder(b[1:])
	h := &History{Trackers: newTrackers(), Staging: Staging{Roles: map[NodeID]StagedRole{}}}
	const minLayout = 6 + NumPartitions
	if n := d.Count("versions", minLayout); n == 0 {
		d.Fail("no version")
	} else {
		for range n {
			h.Versions = append(h.Versions, d.layout(formatLayoutV2))
		}
	}
	for range d.Count("old versions", minLayout) {
		h.OldVersions = append(h.OldVersions, d.layout(formatLayoutV2))
	}
	for _, t := range []map[NodeID]uint64{h.Trackers.Ack, h.Trackers.Sync, h.Trackers.SyncAck} {
		d.ids(d.Count("trackers", 33), func(id NodeID) { t[id] = d.Uvarint() })
	}
	s := &h.Staging
	s.Stamp = d.Uvarint()
	s.ParamStamp = d.Uvarint()
	s.Parameters.ZoneRedundancy = d.Small("zone redundancy", MaxReplicationFactor)
	d.ids(d.Count("staged roles", 34), func(id NodeID) {
		sr := StagedRole{Stamp: d.Uvarint()}
		switch d.Byte() {
		case 0:
		case 1:
			r := d.role()
			sr.Role = &r
			if err := validateRole(&r); err != nil && d.Err == nil {
				d.Err = err
			}
		default:
			d.Fail("staged role flag")
		}
		s.Roles[id] = sr
	})
	d.End()
	if d.Err != nil {
		return nil, d.Err
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	return h, nil
}

// check verifies the invariants of a decoded history.
func (h *History) check() error {
	rf := h.Versions[0].ReplicationFactor
	for i, l := range h.Versions {
		if i > 0 && l.Version != h.Versions[i-1].Version+1 {
			return fmt.Errorf("%w: active versions %d and %d are not consecutive", ErrInvalid, h.Versions[i-1].Version, l.Version)
		}
	}
	if len(h.OldVersions) > maxOldVersions {
		return fmt.Errorf("%w: %d old versions", ErrInvalid, len(h.OldVersions))
	}
	for i, l := range h.OldVersions {
		next := h.Versions[0].Version
		if i+1 < len(h.OldVersions) {
			next = h.OldVersions[i+1].Version
		}
		if l.Version >= next {
			return fmt.Errorf("%w: old version %d is not before version %d", ErrInvalid, l.Version, next)
		}
	}
	for _, ls := range [][]*Layout{h.Versions, h.OldVersions} {
		for _, l := range ls {
			if l.ReplicationFactor != rf {
				return fmt.Errorf("%w: version %d has replication factor %d, not %d", ErrInvalid, l.Version, l.ReplicationFactor, rf)
			}
		}
	}
	if h.Staging.Parameters.ZoneRedundancy > rf {
		return fmt.Errorf("%w: staged zone redundancy %d exceeds the replication factor %d", ErrInvalid, h.Staging.Parameters.ZoneRedundancy, rf)
	}
	for id := range h.Staging.Roles {
		if id.IsZero() {
			return fmt.Errorf("%w: staged role for the zero node id", ErrInvalid)
		}
	}
	return nil
}
