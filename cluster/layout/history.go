package layout

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
)

// maxOldVersions is how many retired versions a history keeps, for the
// block store to find data that has not moved yet.
const maxOldVersions = 10

// ErrVersionMismatch is wrapped by the *VersionError of Apply.
var ErrVersionMismatch = errors.New("layout: version mismatch")

// VersionError is returned by Apply when the version asked for is not the
// one after the current version: the operator previewed a history that has
// changed since.
type VersionError struct {
	Current   uint64 // the current version; Apply wants Current+1
	Requested uint64
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("layout: cannot apply version %d: the current version is %d, so the next one is %d", e.Requested, e.Current, e.Current+1)
}

// Unwrap returns ErrVersionMismatch.
func (e *VersionError) Unwrap() error { return ErrVersionMismatch }

// Trackers record, per node, the highest layout version it has reached in
// each step of a layout change (Garage's UpdateTrackers): Ack, it has
// seen the version and writes to its replica sets; Sync, it holds all the
// data the version assigns it; SyncAck, it knows every storage node has
// synced the version. Each merges by per-node maximum.
type Trackers struct{ Ack, Sync, SyncAck map[NodeID]uint64 }

func newTrackers() Trackers {
	return Trackers{Ack: map[NodeID]uint64{}, Sync: map[NodeID]uint64{}, SyncAck: map[NodeID]uint64{}}
}

func (t Trackers) clone() Trackers {
	c := newTrackers()
	maps.Copy(c.Ack, t.Ack)
	maps.Copy(c.Sync, t.Sync)
	maps.Copy(c.SyncAck, t.SyncAck)
	return c
}

func (t *Trackers) merge(o *Trackers) bool {
	changed := false
	for id, v := range o.Ack {
		changed = setMax(&t.Ack, id, v) || changed
	}
	for id, v := range o.Sync {
		changed = setMax(&t.Sync, id, v) || changed
	}
	for id, v := range o.SyncAck {
		changed = setMax(&t.SyncAck, id, v) || changed
	}
	return changed
}

func setMax(m *map[NodeID]uint64, id NodeID, v uint64) bool {
	if *m == nil {
		*m = map[NodeID]uint64{}
	}
	if cur, ok := (*m)[id]; ok && cur >= v {
		return false
	}
	(*m)[id] = v
	return true
}

// History is the cluster layout as nodes exchange it: the versions in use,
// the trackers of how far each node has followed them, and the changes
// staged for the next version. It is a CRDT: Merge is commutative,
// associative and idempotent, and every other method moves a history up
// in the order Merge joins in.
//
// A History is not safe for concurrent use. Its layouts are immutable and
// shared between clones; the rest is copied by Clone. Build one with
// NewHistory, HistoryFrom or DecodeHistory.
type History struct {
	// Versions are the active versions, consecutive and ascending: the
	// last is current; the older ones are still read from or synced from
	// while data moves. Never empty.
	Versions []*Layout
	// OldVersions are retired versions, ascending, at most 10.
	OldVersions []*Layout
	Trackers    Trackers
	Staging     Staging
}

// Preview is a computed next version.
type Preview struct {
	Layout *Layout // the version Apply installs
	// Moved counts the partition replicas the new version places on a
	// node that did not hold them: Moved(current, Layout).
	Moved int
	// Messages report the computation for an operator, line by line.
	Messages []string
}

// NewHistory returns the history of a new cluster: version 0, without
// nodes, and nothing staged. It panics if replicationFactor is not between
// 1 and MaxReplicationFactor.
func NewHistory(replicationFactor int) *History {
	if replicationFactor < 1 || replicationFactor > MaxReplicationFactor {
		panic(fmt.Sprintf("layout: replication factor %d is not between 1 and %d", replicationFactor, MaxReplicationFactor))
	}
	return &History{
		Versions: []*Layout{{ReplicationFactor: replicationFactor, Roles: map[NodeID]Role{}}},
		Trackers: newTrackers(),
		Staging:  Staging{Roles: map[NodeID]StagedRole{}},
	}
}

// HistoryFrom returns a history whose only version is l, as if every
// storage node of l had acknowledged and synced it (Garage's migration of
// a single layout to a history).
func HistoryFrom(l *Layout) *History {
	h := &History{Versions: []*Layout{l}, Trackers: newTrackers(), Staging: Staging{Roles: map[NodeID]StagedRole{}}}
	for _, id := range l.StorageNodes() {
		h.Trackers.Ack[id] = l.Version
		h.Trackers.Sync[id] = l.Version
		h.Trackers.SyncAck[id] = l.Version
	}
	return h
}

// Current returns the newest version.
func (h *History) Current() *Layout { return h.Versions[len(h.Versions)-1] }

// Clone returns a copy of h that shares only the immutable layouts.
func (h *History) Clone() *History {
	return &History{
		Versions:    slices.Clone(h.Versions),
		OldVersions: slices.Clone(h.OldVersions),
		Trackers:    h.Trackers.clone(),
		Staging:     h.Staging.clone(),
	}
}

// Preview computes the version Apply would install, without changing h. It
// returns ErrNoChanges when nothing staged changes the current version, and
// an *AssignError when the staged roles admit no assignment.
func (h *History) Preview() (*Preview, error) {
	if !h.HasStagedChanges() {
		return nil, ErrNoChanges
	}
	cur := h.Current()
	roles := maps.Clone(cur.Roles)
	if roles == nil {
		roles = map[NodeID]Role{}
	}
	for id, sr := range h.Staging.Roles {
		if sr.Role == nil {
			delete(roles, id)
		} else {
			roles[id] = *sr.Role
		}
	}
	params := cur.Parameters
	if h.Staging.ParamStamp != 0 {
		params = h.Staging.Parameters
	}
	l, msg, err := compute(cur.Version+1, cur.ReplicationFactor, params, roles, cur)
	if err != nil {
		return nil, err
	}
	return &Preview{Layout: l, Moved: Moved(cur, l), Messages: msg}, nil
}

// Apply computes the next version from the staged changes, makes it
// current and clears the staging (stamped now, see Revert). version must be
// Current().Version+1, the number the operator saw in a preview; otherwise
// it returns a *VersionError. It returns the errors of Preview too, and
// leaves h unchanged on any error. Versions no longer needed are retired
// as by Prune.
func (h *History) Apply(version, now uint64) (*Preview, error) {
	if cur := h.Current().Version; version != cur+1 {
		return nil, &VersionError{Current: cur, Requested: version}
	}
	pv, err := h.Preview()
	if err != nil {
		return nil, err
	}
	h.Versions = append(slices.Clip(h.Versions), pv.Layout)
	h.clearStaging(now)
	h.Prune()
	return pv, nil
}

// Merge joins o into h and reports whether h changed. o is not modified
// and shares nothing mutable with h afterwards.
//
// Versions: h adopts every version o has that it lacks; the active ones
// become those from the highest first active version of either to the
// highest current one, the others are retired (10 kept). Two different
// layouts with the same number should not exist — Apply checks the
// version — but if two operators applied concurrently, the one with the
// greater encoding wins everywhere, so that the cluster converges.
// Trackers merge by per-node maximum, the staging as described on Staging.
//
// Histories of different replication factors do not mix: Merge ignores o
// then and returns false. Callers should refuse such a peer first (its
// configuration differs), as the laws above hold only within one factor.
func (h *History) Merge(o *History) (changed bool) {
	if h.Current().ReplicationFactor != o.Current().ReplicationFactor {
		return false
	}
	changed = h.mergeVersions(o)
	changed = h.Trackers.merge(&o.Trackers) || changed
	changed = h.Staging.merge(&o.Staging) || changed
	return changed
}

func (h *History) mergeVersions(o *History) bool {
	all := map[uint64]*Layout{}
	for _, ls := range [][]*Layout{h.Versions, h.OldVersions, o.Versions, o.OldVersions} {
		for _, l := range ls {
			if cur, ok := all[l.Version]; !ok {
				all[l.Version] = l
			} else if cur != l {
				all[l.Version] = pickLayout(cur, l)
			}
		}
	}
	lo := max(h.Versions[0].Version, o.Versions[0].Version)
	var active, old []*Layout
	for _, v := range slices.Sorted(maps.Keys(all)) {
		if v < lo {
			old = append(old, all[v])
		} else {
			active = append(active, all[v])
		}
	}
	if len(old) > maxOldVersions {
		old = slices.Clone(old[len(old)-maxOldVersions:])
	}
	if slices.Equal(active, h.Versions) && slices.Equal(old, h.OldVersions) {
		return false
	}
	h.Versions, h.OldVersions = active, old
	return true
}

// pickLayout chooses deterministically between two layouts of the same
// number: the one with the greater encoding, a, if they are equal.
func pickLayout(a, b *Layout) *Layout {
	if bytes.Compare(a.appendBody(nil), b.appendBody(nil)) >= 0 {
		return a
	}
	return b
}

// SetAck records that node id has acknowledged version v. Trackers only
// grow: it reports whether the value changed.
func (h *History) SetAck(id NodeID, v uint64) bool { return setMax(&h.Trackers.Ack, id, v) }

// SetSync records that node id holds all the data of version v.
func (h *History) SetSync(id NodeID, v uint64) bool { return setMax(&h.Trackers.Sync, id, v) }

// SetSyncAck records that node id knows every storage node synced version v.
func (h *History) SetSyncAck(id NodeID, v uint64) bool { return setMax(&h.Trackers.SyncAck, id, v) }

// MinAck is the highest version every storage node of every active version
// has acknowledged: the minimum of their Ack trackers, where a tracker
// below the first active version (or missing) counts as that version.
func (h *History) MinAck() uint64 { return h.minAmongStorage(h.Trackers.Ack) }

// ReadVersion is the layout version reads use: the newest active version
// every storage node has synced (MinSync), so that it holds every
// acknowledged write; the oldest active version when none is.
func (h *History) ReadVersion() *Layout {
	m := h.MinSync()
	for i := len(h.Versions) - 1; i > 0; i-- {
		if h.Versions[i].Version <= m {
			return h.Versions[i]
		}
	}
	return h.Versions[0]
}

// MinSync is the highest version every storage node of every active
// version has synced, counted as in MinAck.
func (h *History) MinSync() uint64 { return h.minAmongStorage(h.Trackers.Sync) }

// MinSyncAck is the highest version every storage node of every active
// version has sync-acknowledged, counted as in MinAck.
func (h *History) MinSyncAck() uint64 { return h.minAmongStorage(h.Trackers.SyncAck) }

func (h *History) minAmongStorage(t map[NodeID]uint64) uint64 {
	first := h.Versions[0].Version
	m := uint64(math.MaxUint64)
	for _, l := range h.Versions {
		for id, r := range l.Roles {
			if r.CapacityBytes > 0 {
				m = min(m, max(t[id], first))
			}
		}
	}
	if m == math.MaxUint64 {
		return first
	}
	return m
}

// Prune retires the active versions no node reads any more, keeping at
// least the current one, and reports whether it retired any:
//   - versions without an assignment (version 0) once a later one has one;
//   - versions older than the newest version every node with a role in the
//     current version — gateways included, as they route reads — has
//     sync-acknowledged (SyncAck, counted as in MinAck).
//
// As in Garage, only the current version's nodes count: nodes removed by a
// change are being decommissioned and must not hold the history back
// forever. Retired versions move to OldVersions, of which the 10 newest
// are kept.
func (h *History) Prune() bool {
	changed := false
	retire := func() {
		h.OldVersions = append(slices.Clip(h.OldVersions), h.Versions[0])
		h.Versions = slices.Clone(h.Versions[1:])
		changed = true
	}
	cur := h.Current()
	if cur.hasAssignment() {
		for len(h.Versions) > 1 && !h.Versions[0].hasAssignment() {
			retire()
		}
	}
	for len(h.Versions) > 1 {
		first := h.Versions[0].Version
		m := uint64(math.MaxUint64)
		for id := range cur.Roles {
			m = min(m, max(h.Trackers.SyncAck[id], first))
		}
		if m == math.MaxUint64 || first >= m {
			break
		}
		retire()
	}
	if n := len(h.OldVersions); n > maxOldVersions {
		h.OldVersions = slices.Clone(h.OldVersions[n-maxOldVersions:])
	}
	return changed
}

// AllNodes returns, sorted, every node with a role in an active version or
// with a role staged: the nodes the cluster should stay connected to.
func (h *History) AllNodes() []NodeID {
	set := map[NodeID]bool{}
	for _, l := range h.Versions {
		for id := range l.Roles {
			set[id] = true
		}
	}
	for id, sr := range h.Staging.Roles {
		if sr.Role != nil {
			set[id] = true
		}
	}
	return sortedIDs(set)
}

// SkipDeadNodes advances the trackers of the storage nodes for which up
// is false, as if they had acknowledged and synced the current version
// (Garage's layout skip-dead-nodes): a node that is gone for good would
// otherwise hold every later version back forever. Only nodes that no
// longer hold data in the current version are marked synced, unless
// allowMissingData: their data came from the quorums of the other
// replicas, which sync for them; a dead node of the current version may
// have been the only one to hold some writes that never reached a quorum
// elsewhere. version must be the current version. It returns the nodes
// whose Ack, and whose Sync, trackers it advanced.
func (h *History) SkipDeadNodes(version uint64, up func(NodeID) bool, allowMissingData bool) (acked, synced []NodeID, err error) {
	cur := h.Current()
	if version != cur.Version {
		return nil, nil, fmt.Errorf("%w: version %d is not the current version %d", ErrVersionMismatch, version, cur.Version)
	}
	seen := map[NodeID]bool{}
	for _, l := range h.Versions {
		for id, r := range l.Roles {
			if r.CapacityBytes == 0 || seen[id] || up(id) {
				continue
			}
			seen[id] = true
			if h.SetAck(id, cur.Version) {
				acked = append(acked, id)
			}
			if (allowMissingData || !cur.IsStorageNode(id)) && h.SetSync(id, cur.Version) {
				synced = append(synced, id)
			}
		}
	}
	byID := func(a, b NodeID) int { return bytes.Compare(a[:], b[:]) }
	slices.SortFunc(acked, byID)
	slices.SortFunc(synced, byID)
	return acked, synced, nil
}
