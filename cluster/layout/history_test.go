package layout

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func role(zone string, tib uint64) *Role { return &Role{Zone: zone, CapacityBytes: tib << 40} }

// applied returns a history with version 1 holding nodes 1..n, node i in
// zone z(i%zones).
func applied(t *testing.T, rf, n, zones int) *History {
	t.Helper()
	h := NewHistory(rf)
	for i := range n {
		if err := h.StageRole(NodeID{byte(i + 1)}, role(fmt.Sprintf("z%d", i%zones), uint64(i+1)), 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Apply(1, 2); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNewHistory(t *testing.T) {
	h := NewHistory(3)
	cur := h.Current()
	if cur.Version != 0 || cur.ReplicationFactor != 3 || len(cur.Roles) != 0 || len(cur.Replicas(0)) != 0 || cur.ZoneRedundancy != 0 || cur.PartitionSize != 0 {
		t.Errorf("version 0 = %+v", cur)
	}
	if h.HasStagedChanges() || len(h.AllNodes()) != 0 || h.MinAck() != 0 {
		t.Errorf("new history: staged %v, nodes %v, min ack %d", h.HasStagedChanges(), h.AllNodes(), h.MinAck())
	}
	if _, err := h.Preview(); !errors.Is(err, ErrNoChanges) {
		t.Errorf("Preview of nothing: %v", err)
	}
	for _, rf := range []int{0, -1, MaxReplicationFactor + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewHistory(%d) did not panic", rf)
				}
			}()
			NewHistory(rf)
		}()
	}
}

func TestApply(t *testing.T) {
	h := NewHistory(2)
	a, b, c, g := NodeID{1}, NodeID{2}, NodeID{3}, NodeID{4}
	for _, s := range []struct {
		id NodeID
		r  *Role
	}{{a, role("z1", 1)}, {b, role("z2", 2)}, {c, role("z2", 1)}, {g, &Role{Zone: "z1"}}} {
		if err := h.StageRole(s.id, s.r, 10); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.AllNodes(); !slices.Equal(got, []NodeID{a, b, c, g}) {
		t.Errorf("AllNodes with staged nodes = %v", got)
	}
	before := h.Encode(nil)
	pv, err := h.Preview()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, h.Encode(nil)) {
		t.Fatal("Preview changed the history")
	}
	// A wrong version is refused and changes nothing.
	for _, v := range []uint64{0, 2, 7} {
		_, err := h.Apply(v, 11)
		var ve *VersionError
		if !errors.Is(err, ErrVersionMismatch) || !errors.As(err, &ve) || ve.Current != 0 || ve.Requested != v {
			t.Errorf("Apply(%d) = %v", v, err)
		}
		if !bytes.Equal(before, h.Encode(nil)) {
			t.Fatalf("failed Apply(%d) changed the history", v)
		}
	}
	pv2, err := h.Apply(1, 11)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pv.Layout.Encode(nil), pv2.Layout.Encode(nil)) || pv2.Moved != 2*NumPartitions {
		t.Errorf("Apply differs from Preview, or moved %d", pv2.Moved)
	}
	cur := h.Current()
	if cur != pv2.Layout || cur.Version != 1 || h.HasStagedChanges() || len(h.Staging.Roles) != 0 || h.Staging.Stamp != 11 {
		t.Fatalf("after Apply: version %d, staging %+v", cur.Version, h.Staging)
	}
	checkAssignment(t, cur)
	if cur.ZoneRedundancy != 2 || !slices.Equal(cur.Zones(), []string{"z1", "z2"}) || !slices.Equal(cur.Nodes(), []NodeID{a, b, c, g}) || cur.Partitions(g) != 0 {
		t.Errorf("version 1: zr %d zones %v nodes %v", cur.ZoneRedundancy, cur.Zones(), cur.Nodes())
	}
	// Version 0 has no assignment: it retires at once.
	if len(h.Versions) != 1 || len(h.OldVersions) != 1 || h.OldVersions[0].Version != 0 {
		t.Errorf("versions %d, old %d", len(h.Versions), len(h.OldVersions))
	}
	if _, err := h.Apply(2, 12); !errors.Is(err, ErrNoChanges) {
		t.Errorf("Apply with nothing staged: %v", err)
	}
	// Staging a role equal to the current one, or removing an absent
	// node, changes nothing.
	h.StageRole(a, role("z1", 1), 13)
	h.StageRole(NodeID{9}, nil, 13)
	if h.HasStagedChanges() {
		t.Error("no-op staging counts as a change")
	}
	if _, err := h.Apply(2, 14); !errors.Is(err, ErrNoChanges) {
		t.Errorf("Apply with no-op staging: %v", err)
	}
	// Parameters alone are a change, as in Garage.
	if err := h.StageParameters(Parameters{ZoneRedundancy: 1}, 15); err != nil {
		t.Fatal(err)
	}
	if !h.HasStagedChanges() {
		t.Fatal("parameter change not seen")
	}
	pv, err = h.Apply(2, 16)
	if err != nil {
		t.Fatal(err)
	}
	if cur := h.Current(); cur.Version != 2 || cur.ZoneRedundancy != 1 || cur.Parameters.ZoneRedundancy != 1 || len(h.Versions) != 2 {
		t.Errorf("version 2: %+v, %d active", cur, len(h.Versions))
	}
	// Removing a node, with a staged role that admits no assignment.
	h.StageRole(b, nil, 17)
	h.StageRole(c, nil, 17)
	var ae *AssignError
	if _, err := h.Apply(3, 18); !errors.As(err, &ae) {
		t.Errorf("Apply leaving 1 storage node for rf 2: %v", err)
	}
	if h.Current().Version != 2 || !h.HasStagedChanges() {
		t.Error("a failed Apply changed the history")
	}
	if err := h.Revert(19); err != nil {
		t.Fatal(err)
	}
	h.StageRole(c, nil, 20)
	h.StageRole(NodeID{5}, role("z3", 3), 20)
	pv, err = h.Apply(3, 21)
	if err != nil {
		t.Fatal(err)
	}
	if h.Current().IsStorageNode(c) || h.Current().Roles[c].Zone != "" || pv.Moved != Moved(h.Versions[len(h.Versions)-2], h.Current()) {
		t.Errorf("node removed: roles %v, moved %d", h.Current().Roles, pv.Moved)
	}
	checkAssignment(t, h.Current())
	if len(pv.Messages) == 0 {
		t.Error("no messages")
	}
}

func TestStageValidation(t *testing.T) {
	h := NewHistory(2)
	for _, bad := range []*Role{{}, {Zone: "z", Tags: []string{"a", ""}}} {
		if err := h.StageRole(NodeID{1}, bad, 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("StageRole(%+v) = %v", bad, err)
		}
	}
	if err := h.StageRole(NodeID{}, role("z", 1), 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("StageRole(zero id) = %v", err)
	}
	for _, zr := range []int{-1, 3} {
		if err := h.StageParameters(Parameters{ZoneRedundancy: zr}, 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("StageParameters(%d) = %v", zr, err)
		}
	}
	if h.HasStagedChanges() || !h.Staging.empty() {
		t.Error("a refused change was staged")
	}
	// The staged role is a copy.
	r := &Role{Zone: "z", CapacityBytes: 1, Tags: []string{"a"}}
	h.StageRole(NodeID{1}, r, 1)
	r.Tags[0], r.Zone = "b", "y"
	if got := h.Staging.Roles[NodeID{1}].Role; got.Zone != "z" || got.Tags[0] != "a" {
		t.Errorf("staged role aliased: %+v", got)
	}
}

// TestStageStamps: a later call wins even when the clock goes back.
func TestStageStamps(t *testing.T) {
	h := NewHistory(1)
	id := NodeID{1}
	h.StageRole(id, role("a", 1), 100)
	h.StageRole(id, role("b", 1), 50)
	if sr := h.Staging.Roles[id]; sr.Stamp != 101 || sr.Role.Zone != "b" {
		t.Errorf("staged %+v", sr)
	}
	h.StageParameters(Parameters{ZoneRedundancy: 1}, 7)
	h.StageParameters(Parameters{ZoneRedundancy: 0}, 3)
	if h.Staging.ParamStamp != 8 || h.Staging.Parameters.ZoneRedundancy != 0 {
		t.Errorf("staged parameters %+v at %d", h.Staging.Parameters, h.Staging.ParamStamp)
	}
	// Another node merges in an older role: ours stays.
	o := NewHistory(1)
	o.StageRole(id, role("c", 1), 90)
	h.Merge(o)
	if h.Staging.Roles[id].Role.Zone != "b" {
		t.Errorf("older staged role won: %+v", h.Staging.Roles[id])
	}
	// Concurrent changes stamped alike: both sides pick the same.
	x, y := NewHistory(1), NewHistory(1)
	x.StageRole(id, role("x", 1), 5)
	y.StageRole(id, role("y", 1), 5)
	x.Merge(y)
	y.Merge(x)
	if !bytes.Equal(x.Encode(nil), y.Encode(nil)) || x.Staging.Roles[id].Role.Zone != "y" {
		t.Errorf("tie: %+v vs %+v", x.Staging.Roles[id].Role, y.Staging.Roles[id].Role)
	}
	// Likewise for parameters, and for a removal against a role.
	x, y = NewHistory(2), NewHistory(2)
	x.StageParameters(Parameters{ZoneRedundancy: 2}, 5)
	y.StageParameters(Parameters{ZoneRedundancy: 1}, 5)
	x.StageRole(id, nil, 5)
	y.StageRole(id, role("y", 1), 5)
	x.Merge(y)
	y.Merge(x)
	if !bytes.Equal(x.Encode(nil), y.Encode(nil)) || x.Staging.Parameters.ZoneRedundancy != 2 || x.Staging.Roles[id].Role == nil {
		t.Errorf("tie: %+v vs %+v", x.Staging, y.Staging)
	}
}

func TestRevert(t *testing.T) {
	h := applied(t, 1, 2, 1)
	if err := h.Revert(5); !errors.Is(err, ErrNoChanges) {
		t.Errorf("Revert of nothing: %v", err)
	}
	stale := h.Clone()
	h.StageRole(NodeID{7}, role("z", 1), 10)
	stale.StageRole(NodeID{8}, role("z", 1), 10)
	h.Merge(stale)
	if len(h.Staging.Roles) != 2 {
		t.Fatalf("staged %v", h.Staging.Roles)
	}
	if err := h.Revert(11); err != nil {
		t.Fatal(err)
	}
	if h.HasStagedChanges() || !h.Staging.empty() {
		t.Errorf("after Revert: %+v", h.Staging)
	}
	// The revert wins over the stale staging wherever they meet.
	if h.Merge(stale) {
		t.Error("stale staging changed a reverted history")
	}
	if stale.Merge(h); !stale.Staging.empty() {
		t.Errorf("revert did not propagate: %+v", stale.Staging)
	}
}

func TestTrackersAndPrune(t *testing.T) {
	h := applied(t, 2, 3, 3) // nodes 1, 2, 3; version 1
	a, b, c, d, g := NodeID{1}, NodeID{2}, NodeID{3}, NodeID{4}, NodeID{5}
	if h.MinAck() != 1 || h.MinSync() != 1 || h.MinSyncAck() != 1 {
		t.Errorf("min trackers %d %d %d, want the first active version 1", h.MinAck(), h.MinSync(), h.MinSyncAck())
	}
	// Replace c by d, and add a gateway.
	h.StageRole(c, nil, 3)
	h.StageRole(d, role("z2", 4), 3)
	h.StageRole(g, &Role{Zone: "z0"}, 3)
	if _, err := h.Apply(2, 4); err != nil {
		t.Fatal(err)
	}
	if len(h.Versions) != 2 {
		t.Fatalf("%d active versions", len(h.Versions))
	}
	if !slices.Equal(h.AllNodes(), []NodeID{a, b, c, d, g}) {
		t.Errorf("AllNodes = %v", h.AllNodes())
	}
	if !h.SetAck(a, 2) || h.SetAck(a, 1) || h.SetAck(a, 2) || h.Trackers.Ack[a] != 2 {
		t.Error("SetAck is not a monotone max")
	}
	for _, id := range []NodeID{a, b, d} {
		h.SetAck(id, 2)
	}
	// c is a storage node of version 1, still active: it holds MinAck back.
	if h.MinAck() != 1 {
		t.Errorf("MinAck = %d without c", h.MinAck())
	}
	h.SetAck(c, 2)
	if h.MinAck() != 2 {
		t.Errorf("MinAck = %d", h.MinAck())
	}
	for _, id := range []NodeID{a, b, c, d} {
		h.SetSync(id, 2)
	}
	if h.MinSync() != 2 || h.MinSyncAck() != 1 {
		t.Errorf("MinSync %d MinSyncAck %d", h.MinSync(), h.MinSyncAck())
	}
	// Version 1 retires once every node of version 2 — the gateway too,
	// but not the removed c — sync-acknowledged version 2.
	for _, id := range []NodeID{a, b, d} {
		h.SetSyncAck(id, 2)
	}
	if h.Prune() || len(h.Versions) != 2 {
		t.Fatal("pruned before the gateway sync-acknowledged")
	}
	h.SetSyncAck(g, 2)
	if !h.Prune() || len(h.Versions) != 1 || h.Current().Version != 2 {
		t.Fatalf("Prune kept %d versions", len(h.Versions))
	}
	if h.Prune() {
		t.Error("second Prune changed something")
	}
	if got := []uint64{h.OldVersions[0].Version, h.OldVersions[1].Version}; !slices.Equal(got, []uint64{0, 1}) {
		t.Errorf("old versions %v", got)
	}
	// At most 10 old versions are kept.
	for v := uint64(3); v < 20; v++ {
		h.StageRole(NodeID{byte(v)}, role("z1", 1), 10*v)
		if _, err := h.Apply(v, 10*v+1); err != nil {
			t.Fatal(err)
		}
		for _, id := range h.Current().Nodes() {
			h.SetSyncAck(id, v)
		}
		h.Prune()
	}
	if len(h.OldVersions) != maxOldVersions || h.OldVersions[9].Version != 18 || len(h.Versions) != 1 {
		t.Errorf("%d old versions, newest %d, %d active", len(h.OldVersions), h.OldVersions[len(h.OldVersions)-1].Version, len(h.Versions))
	}
}

func TestHistoryFromSingleNode(t *testing.T) {
	id := NodeID{1}
	l := SingleNode(id, Role{Zone: "dc1", CapacityBytes: 1 << 40})
	if l.PartitionSize != (1<<40)/NumPartitions || l.ZoneRedundancy != 1 || l.Version != 1 {
		t.Errorf("SingleNode = %+v", l)
	}
	checkAssignment(t, l)
	h := HistoryFrom(l)
	if h.Current() != l || h.MinAck() != 1 || h.MinSync() != 1 || h.MinSyncAck() != 1 {
		t.Errorf("HistoryFrom: trackers %+v", h.Trackers)
	}
	// It grows like any history.
	h.StageRole(NodeID{2}, role("dc2", 1), 5)
	pv, err := h.Apply(2, 6)
	if err != nil {
		t.Fatal(err)
	}
	checkAssignment(t, pv.Layout)
	// A gateway or a tiny node still gets every partition.
	for _, c := range []uint64{0, 100} {
		l := SingleNode(id, Role{Zone: "z", CapacityBytes: c})
		if r := l.Replicas(255); len(r) != 1 || r[0] != id {
			t.Errorf("SingleNode of %d bytes: %v", c, r)
		}
	}
}

func TestClone(t *testing.T) {
	h := applied(t, 1, 2, 1)
	h.StageRole(NodeID{9}, &Role{Zone: "z", Tags: []string{"t"}}, 5)
	h.SetAck(NodeID{1}, 1)
	before := h.Encode(nil)
	c := h.Clone()
	c.StageRole(NodeID{9}, nil, 6)
	c.Staging.Roles[NodeID{8}] = StagedRole{}
	c.SetAck(NodeID{1}, 5)
	c.Trackers.Sync[NodeID{3}] = 1
	c.Versions = append(c.Versions, c.Current())
	c.OldVersions[0] = nil
	if !bytes.Equal(before, h.Encode(nil)) {
		t.Error("mutating a clone changed the original")
	}
}

// randomHistories runs random concurrent operations — staging, apply,
// revert, tracker updates, pruning, merges — on replicas of one history
// and returns snapshots of every replica along the way.
func randomHistories(t testing.TB, seed uint64, ops int) []*History {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	rf := 1 + rng.IntN(3)
	ids := make([]NodeID, 8)
	for i := range ids {
		ids[i] = NodeID{byte(i + 1), byte(seed)}
	}
	base := NewHistory(rf)
	for i := range rf + 1 {
		base.StageRole(ids[i], role(fmt.Sprintf("z%d", i%3), uint64(1+i)), 1)
	}
	if _, err := base.Apply(1, 2); err != nil {
		t.Fatal(err)
	}
	replicas := []*History{NewHistory(rf), base.Clone(), base.Clone(), base.Clone()}
	var snaps []*History
	clock := uint64(10)
	for range ops {
		clock += uint64(rng.IntN(3))
		now := clock - uint64(rng.IntN(5)) // clocks disagree
		h := replicas[rng.IntN(len(replicas))]
		id := ids[rng.IntN(len(ids))]
		switch rng.IntN(13) {
		case 0, 1, 2:
			var r *Role
			if rng.IntN(4) > 0 {
				r = &Role{Zone: fmt.Sprintf("z%d", rng.IntN(4)), CapacityBytes: uint64(rng.IntN(4)) << 40}
				if rng.IntN(3) == 0 {
					r.Tags = []string{"t", fmt.Sprint(rng.IntN(3))}
				}
			}
			h.StageRole(id, r, now)
		case 3:
			h.StageParameters(Parameters{ZoneRedundancy: rng.IntN(rf + 1)}, now)
		case 4:
			h.Apply(h.Current().Version+1, now)
		case 5:
			h.Revert(now)
		case 6:
			v := h.Current().Version - uint64(rng.IntN(2))
			switch rng.IntN(3) {
			case 0:
				h.SetAck(id, v)
			case 1:
				h.SetSync(id, v)
			case 2:
				h.SetSyncAck(id, v)
			}
		case 7:
			h.Prune()
		case 8:
			// every node of the current version caught up
			for _, n := range h.Current().Nodes() {
				h.SetSyncAck(n, h.Current().Version)
			}
			h.Prune()
		default:
			h.Merge(replicas[rng.IntN(len(replicas))])
		}
		snaps = append(snaps, h.Clone())
	}
	return snaps
}

func merged(a, b *History) *History {
	c := a.Clone()
	c.Merge(b)
	return c
}

// TestMergeLaws checks that Merge is a join: commutative, associative,
// idempotent, and that it reports exactly when it changes something.
func TestMergeLaws(t *testing.T) {
	seeds, ops, triples := 6, 150, 300
	if testing.Short() {
		seeds, ops, triples = 2, 80, 100
	}
	for seed := range uint64(seeds) {
		snaps := randomHistories(t, seed, ops)
		rng := rand.New(rand.NewPCG(seed, 99))
		pick := func() *History { return snaps[rng.IntN(len(snaps))] }
		enc := func(h *History) string { return string(h.Encode(nil)) }
		for range triples {
			a, b, c := pick(), pick(), pick()
			ab, ba := merged(a, b), merged(b, a)
			if enc(ab) != enc(ba) {
				t.Fatalf("seed %d: merge is not commutative", seed)
			}
			if enc(merged(ab, c)) != enc(merged(a, merged(b, c))) {
				t.Fatalf("seed %d: merge is not associative", seed)
			}
			if enc(merged(a, a)) != enc(a) {
				t.Fatalf("seed %d: merge is not idempotent", seed)
			}
			x := a.Clone()
			if changed := x.Merge(b); changed != (enc(x) != enc(a)) {
				t.Fatalf("seed %d: Merge reported changed=%v wrongly", seed, changed)
			}
			if x.Merge(b) {
				t.Fatalf("seed %d: merging twice changed something", seed)
			}
			// b merged into a dominates both.
			if enc(merged(ab, a)) != enc(ab) || enc(merged(ab, b)) != enc(ab) {
				t.Fatalf("seed %d: merge result is not an upper bound", seed)
			}
			if err := ab.check(); err != nil {
				t.Fatalf("seed %d: merged history invalid: %v", seed, err)
			}
		}
	}
}

// TestConcurrentApply: two nodes apply different version 2s; once merged
// everywhere they agree on one.
func TestConcurrentApply(t *testing.T) {
	base := applied(t, 1, 2, 2)
	x, y := base.Clone(), base.Clone()
	x.StageRole(NodeID{7}, role("z0", 1), 10)
	y.StageRole(NodeID{8}, role("z1", 1), 10)
	if _, err := x.Apply(2, 11); err != nil {
		t.Fatal(err)
	}
	if _, err := y.Apply(2, 11); err != nil {
		t.Fatal(err)
	}
	x2, y2 := x.Clone(), y.Clone()
	x2.Merge(y)
	y2.Merge(x)
	if !bytes.Equal(x2.Encode(nil), y2.Encode(nil)) || x2.Current().Version != 2 {
		t.Error("replicas did not converge")
	}
}

// TestMergeAdoptsNewer: a node far behind adopts the newer versions, and
// the versions another node retired retire here too.
func TestMergeAdoptsNewer(t *testing.T) {
	old := applied(t, 1, 2, 1)
	h := old.Clone()
	for v := uint64(2); v <= 4; v++ {
		h.StageRole(NodeID{byte(10 + v)}, role("z0", 1), 10*v)
		if _, err := h.Apply(v, 10*v+1); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range h.Current().Nodes() {
		h.SetSyncAck(id, 4)
	}
	h.Prune()
	if len(h.Versions) != 1 {
		t.Fatalf("%d active", len(h.Versions))
	}
	if !old.Merge(h) || old.Current().Version != 4 || len(old.Versions) != 1 || len(old.OldVersions) != 4 {
		t.Errorf("after merge: current %d, %d active, %d old", old.Current().Version, len(old.Versions), len(old.OldVersions))
	}
}

func TestMergeOtherReplicationFactor(t *testing.T) {
	h, o := NewHistory(3), applied(t, 1, 2, 1)
	before := h.Encode(nil)
	if h.Merge(o) || !bytes.Equal(before, h.Encode(nil)) {
		t.Error("a history of another replication factor was merged")
	}
}

// TestStagingAcrossSkewedNodes: node A's clock is an hour ahead of node
// B's. Whatever B stages, reverts or applies after merging A's history
// replaces A's changes everywhere, as each stamp is above the one it
// replaces rather than B's clock.
func TestStagingAcrossSkewedNodes(t *testing.T) {
	const hour = 3600_000
	nowB := uint64(1_700_000_000_000)
	nowA := nowB + hour
	id1, id2 := NodeID{1}, NodeID{2}
	a := NewHistory(1)
	if err := a.StageRole(id1, role("a", 1), nowA); err != nil {
		t.Fatal(err)
	}
	if err := a.StageParameters(Parameters{ZoneRedundancy: 1}, nowA); err != nil {
		t.Fatal(err)
	}
	b := a.Clone()
	if err := b.StageRole(id1, role("b", 1), nowB); err != nil {
		t.Fatal(err)
	}
	if err := b.StageParameters(Parameters{ZoneRedundancy: 0}, nowB); err != nil {
		t.Fatal(err)
	}
	a.Merge(b)
	if sr := a.Staging.Roles[id1]; sr.Role.Zone != "b" || a.Staging.ParamStamp <= nowA || a.Staging.Parameters.ZoneRedundancy != 0 {
		t.Errorf("B's staged changes lost to A's older ones: role %+v at %d, parameters %+v at %d", sr.Role, sr.Stamp, a.Staging.Parameters, a.Staging.ParamStamp)
	}

	// B reverts: the empty staging wins over A's, which was stamped ahead.
	a.StageRole(id2, role("a", 1), nowA+1)
	b.Merge(a)
	if err := b.Revert(nowB + 1); err != nil {
		t.Fatal(err)
	}
	a.Merge(b)
	if !a.Staging.empty() {
		t.Errorf("revert by the node behind did not clear the staging: %+v", a.Staging)
	}

	// A stages again ahead; B applies it behind; A then knows the version
	// and has an empty staging.
	a.StageRole(id1, role("a", 1), nowA+2)
	b.Merge(a)
	if _, err := b.Apply(1, nowB+2); err != nil {
		t.Fatal(err)
	}
	a.Merge(b)
	if a.Current().Version != 1 || !a.Staging.empty() {
		t.Errorf("after B applied: A at version %d with staging %+v", a.Current().Version, a.Staging)
	}
	if !bytes.Equal(a.Encode(nil), b.Encode(nil)) {
		t.Errorf("A and B differ after exchanging their histories")
	}
}

func TestSkipDeadNodes(t *testing.T) {
	var ids [4]NodeID
	for i := range ids {
		ids[i][0] = byte(i + 1)
	}
	h := NewHistory(3)
	for _, id := range ids[:3] {
		h.StageRole(id, &Role{Zone: "z" + string(rune('a'+id[0])), CapacityBytes: 1 << 30}, 1)
	}
	if _, err := h.Apply(1, 2); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:3] {
		h.SetAck(id, 1)
		h.SetSync(id, 1)
	}
	// node 3 dies and is replaced by node 4
	h.StageRole(ids[2], nil, 3)
	h.StageRole(ids[3], &Role{Zone: "zd", CapacityBytes: 1 << 30}, 3)
	if _, err := h.Apply(2, 4); err != nil {
		t.Fatal(err)
	}
	up := func(id NodeID) bool { return id != ids[2] }
	if _, _, err := h.SkipDeadNodes(1, up, false); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("old version: %v", err)
	}
	acked, synced, err := h.SkipDeadNodes(2, up, false)
	if err != nil || len(acked) != 1 || acked[0] != ids[2] || len(synced) != 1 || synced[0] != ids[2] {
		t.Fatalf("skipped %v %v, %v", acked, synced, err)
	}
	if h.Trackers.Ack[ids[2]] != 2 || h.Trackers.Sync[ids[2]] != 2 {
		t.Fatalf("trackers of the dead node: %v %v", h.Trackers.Ack[ids[2]], h.Trackers.Sync[ids[2]])
	}
	// a dead node of the current version is acked but not synced, unless
	// missing data is allowed
	down := func(id NodeID) bool { return id != ids[3] }
	h.SkipDeadNodes(2, down, false)
	if h.Trackers.Ack[ids[3]] != 2 || h.Trackers.Sync[ids[3]] == 2 {
		t.Fatalf("current node: ack %d sync %d", h.Trackers.Ack[ids[3]], h.Trackers.Sync[ids[3]])
	}
	h.SkipDeadNodes(2, down, true)
	if h.Trackers.Sync[ids[3]] != 2 {
		t.Fatal("allowMissingData did not mark it synced")
	}
}
