package layout

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkAssignment verifies the invariants of every computed layout.
func checkAssignment(t *testing.T, l *Layout) {
	t.Helper()
	load := map[NodeID]int{}
	for p := range NumPartitions {
		rs := l.Replicas(Partition(p))
		if len(rs) != l.ReplicationFactor {
			t.Fatalf("partition %d has %d replicas, want %d", p, len(rs), l.ReplicationFactor)
		}
		zones := map[string]bool{}
		for i, id := range rs {
			if i > 0 && compareIDs(rs[i-1], id) >= 0 {
				t.Fatalf("partition %d: replicas %v not sorted and distinct", p, rs)
			}
			if !l.IsStorageNode(id) {
				t.Fatalf("partition %d on %s, not a storage node (role %+v)", p, id.Short(), l.Roles[id])
			}
			zones[l.Roles[id].Zone] = true
			load[id]++
		}
		if len(zones) < l.ZoneRedundancy {
			t.Fatalf("partition %d over %d zones, want at least %d", p, len(zones), l.ZoneRedundancy)
		}
	}
	if l.PartitionSize == 0 {
		t.Fatalf("partition size 0")
	}
	for id, r := range l.Roles {
		if got := l.Partitions(id); got != load[id] {
			t.Fatalf("Partitions(%s) = %d, want %d", id.Short(), got, load[id])
		}
		if max := r.CapacityBytes / l.PartitionSize; uint64(load[id]) > max {
			t.Fatalf("node %s holds %d partitions of %d bytes in %d bytes", id.Short(), load[id], l.PartitionSize, r.CapacityBytes)
		}
		if l.UsableBytes(id) > r.CapacityBytes {
			t.Fatalf("UsableBytes(%s) = %d > capacity %d", id.Short(), l.UsableBytes(id), r.CapacityBytes)
		}
	}
}

// randomRoles returns 1–30 nodes over 1–6 zones with uneven capacities,
// some of them gateways.
func randomRoles(rng *rand.Rand) map[NodeID]Role {
	roles := map[NodeID]Role{}
	nZones := 1 + rng.IntN(6)
	for range 1 + rng.IntN(30) {
		var id NodeID
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		r := Role{Zone: fmt.Sprintf("z%d", rng.IntN(nZones))}
		if rng.IntN(8) > 0 {
			// from a few hundred GB to tens of TB, some tiny
			r.CapacityBytes = uint64(1+rng.IntN(100)) << (30 + rng.IntN(8))
		}
		roles[id] = r
	}
	return roles
}

// storageZones counts the storage nodes of roles and their zones.
func storageZones(roles map[NodeID]Role) (nodes, zones int) {
	zs := map[string]bool{}
	for _, r := range roles {
		if r.CapacityBytes > 0 {
			nodes++
			zs[r.Zone] = true
		}
	}
	return nodes, len(zs)
}

// TestComputeProperties computes layouts of random clusters, then of a
// random change of each, and checks the invariants of every result, that
// the partition size cannot grow by one byte, and that impossible
// settings are refused with an AssignError.
func TestComputeProperties(t *testing.T) {
	iters := 80
	if testing.Short() {
		iters = 15
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var computed, refused int
	for i := range iters {
		roles := randomRoles(rng)
		rf := 1 + rng.IntN(5)
		var params Parameters
		if rng.IntN(2) == 0 {
			params.ZoneRedundancy = 1 + rng.IntN(rf)
		}
		var prev *Layout
		for step := range 2 {
			l, msg, err := compute(uint64(step+1), rf, params, roles, prev)
			nodes, zones := storageZones(roles)
			zr := params.ZoneRedundancy
			if zr == 0 {
				zr = min(rf, zones)
			}
			possible := nodes >= rf && nodes > 0 && zones >= zr
			if !possible {
				var ae *AssignError
				if !errors.As(err, &ae) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("case %d: %d nodes, %d zones, rf %d, zr %d: err %v, want an AssignError", i, nodes, zones, rf, zr, err)
				}
				refused++
				break
			}
			if err != nil {
				// Only tiny capacities are refused beyond the counts.
				var ae *AssignError
				if !errors.As(err, &ae) {
					t.Fatalf("case %d: %v", i, err)
				}
				refused++
				break
			}
			computed++
			if l.ZoneRedundancy != zr || l.ReplicationFactor != rf || l.Parameters != params {
				t.Fatalf("case %d: zr %d rf %d params %+v, want %d %d %+v", i, l.ZoneRedundancy, l.ReplicationFactor, l.Parameters, zr, rf, params)
			}
			if len(msg) == 0 {
				t.Fatalf("case %d: no report", i)
			}
			checkAssignment(t, l)
			// The size is maximal: one byte more admits no assignment.
			if nw := newNetwork(problemOf(l)); nw.feasible(l.PartitionSize + 1) {
				t.Fatalf("case %d: partition size %d is not maximal", i, l.PartitionSize)
			}
			if prev != nil {
				// Moving nothing is possible only if the previous
				// assignment still fits; the algorithm never moves more
				// than everything.
				if m := Moved(prev, l); m > NumPartitions*rf {
					t.Fatalf("case %d: moved %d", i, m)
				}
			}
			prev = l
			changeOne(rng, roles)
		}
	}
	t.Logf("%d layouts computed, %d refused", computed, refused)
}

// problemOf rebuilds the problem of a computed layout, without previous
// assignment.
func problemOf(l *Layout) *problem {
	zones := l.Zones()
	pb := &problem{nPartitions: NumPartitions, rf: l.ReplicationFactor, zr: l.ZoneRedundancy, nZones: len(zones)}
	for _, id := range l.StorageNodes() {
		z, _ := slices.BinarySearch(zones, l.Roles[id].Zone)
		pb.zone = append(pb.zone, z)
		pb.capacity = append(pb.capacity, l.Roles[id].CapacityBytes)
	}
	return pb
}

// changeOne applies one random operator change to roles.
func changeOne(rng *rand.Rand, roles map[NodeID]Role) {
	ids := sortedIDs(roles)
	id := ids[rng.IntN(len(ids))]
	r := roles[id]
	switch rng.IntN(4) {
	case 0: // add a node
		var nid NodeID
		for i := range nid {
			nid[i] = byte(rng.Uint32())
		}
		roles[nid] = Role{Zone: fmt.Sprintf("z%d", rng.IntN(7)), CapacityBytes: uint64(1+rng.IntN(100)) << 36}
	case 1: // remove one
		delete(roles, id)
	case 2: // change a capacity
		r.CapacityBytes = uint64(rng.IntN(100)) << 36
		roles[id] = r
	case 3: // move a node to another zone
		r.Zone = fmt.Sprintf("z%d", rng.IntN(7))
		roles[id] = r
	}
}

func TestComputeErrors(t *testing.T) {
	a, b, c := NodeID{1}, NodeID{2}, NodeID{3}
	tests := []struct {
		name   string
		rf     int
		params Parameters
		roles  map[NodeID]Role
	}{
		{"no node", 1, Parameters{}, map[NodeID]Role{}},
		{"gateways only", 1, Parameters{}, map[NodeID]Role{a: {Zone: "z"}}},
		{"fewer nodes than rf", 3, Parameters{}, map[NodeID]Role{a: {Zone: "z", CapacityBytes: 1 << 30}, b: {Zone: "y", CapacityBytes: 1 << 30}, c: {Zone: "y"}}},
		{"fewer zones than zr", 2, Parameters{ZoneRedundancy: 2}, map[NodeID]Role{a: {Zone: "z", CapacityBytes: 1 << 30}, b: {Zone: "z", CapacityBytes: 1 << 30}}},
		{"zr above rf", 1, Parameters{ZoneRedundancy: 2}, map[NodeID]Role{a: {Zone: "z", CapacityBytes: 1 << 30}, b: {Zone: "y", CapacityBytes: 1 << 30}}},
		{"negative zr", 1, Parameters{ZoneRedundancy: -1}, map[NodeID]Role{a: {Zone: "z", CapacityBytes: 1 << 30}}},
		{"too small", 1, Parameters{}, map[NodeID]Role{a: {Zone: "z", CapacityBytes: 255}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := compute(1, tt.rf, tt.params, tt.roles, nil)
			var ae *AssignError
			if !errors.As(err, &ae) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("compute: %v, want an AssignError", err)
			}
			t.Log(err)
		})
	}
}

// A small cluster, numbered for brute force.
type smallNode struct {
	name     int // identity across changes
	zone     int
	capacity uint64
}

// smallProblem builds the problem of nodes, with zones renumbered densely,
// and prev (partition → node names) translated to node indices.
func smallProblem(nPartitions, rf, zrParam int, nodes []smallNode, prev [][]int) *problem {
	var zs []int
	for _, n := range nodes {
		zs = append(zs, n.zone)
	}
	slices.Sort(zs)
	zs = slices.Compact(zs)
	pb := &problem{nPartitions: nPartitions, rf: rf, zr: zrParam, nZones: len(zs)}
	if pb.zr == 0 {
		pb.zr = min(rf, len(zs))
	}
	for _, n := range nodes {
		z, _ := slices.BinarySearch(zs, n.zone)
		pb.zone = append(pb.zone, z)
		pb.capacity = append(pb.capacity, n.capacity)
	}
	if prev != nil {
		pb.prev = make([][]int, nPartitions)
		for p := range prev {
			for _, name := range prev[p] {
				if i := slices.IndexFunc(nodes, func(n smallNode) bool { return n.name == name }); i >= 0 {
					pb.prev[p] = append(pb.prev[p], i)
				}
			}
		}
	}
	return pb
}

func randomSmall(rng *rand.Rand, maxNodes int) []smallNode {
	var nodes []smallNode
	nZones := 1 + rng.IntN(4)
	for i := range 1 + rng.IntN(maxNodes) {
		nodes = append(nodes, smallNode{name: i, zone: rng.IntN(nZones), capacity: uint64(1 + rng.IntN(30))})
	}
	return nodes
}

// subsets lists, as bit masks, the sets of rf nodes over at least zr zones.
func subsets(pb *problem) []uint32 {
	var out []uint32
	for m := uint32(0); m < 1<<len(pb.zone); m++ {
		if bits.OnesCount32(m) != pb.rf {
			continue
		}
		zones := map[int]bool{}
		for n := range pb.zone {
			if m&(1<<n) != 0 {
				zones[pb.zone[n]] = true
			}
		}
		if len(zones) >= pb.zr {
			out = append(out, m)
		}
	}
	return out
}

// bruteFeasible reports whether some assignment fits partitions of size s,
// trying every multiset of subsets (partitions are interchangeable here).
func bruteFeasible(pb *problem, s uint64, sets []uint32) bool {
	slots := make([]int, len(pb.zone))
	for n, c := range pb.capacity {
		slots[n] = int(c / s)
	}
	var try func(p, from int) bool
	try = func(p, from int) bool {
		if p == pb.nPartitions {
			return true
		}
		for i := from; i < len(sets); i++ {
			m := sets[i]
			ok := true
			for n := range slots {
				if m&(1<<n) != 0 && slots[n] == 0 {
					ok = false
				}
			}
			if !ok {
				continue
			}
			for n := range slots {
				if m&(1<<n) != 0 {
					slots[n]--
				}
			}
			found := try(p+1, i)
			for n := range slots {
				if m&(1<<n) != 0 {
					slots[n]++
				}
			}
			if found {
				return true
			}
		}
		return false
	}
	return try(0, 0)
}

// bruteSize is the largest partition size admitting an assignment, trying
// every size; 0 if none does.
func bruteSize(pb *problem) uint64 {
	sets := subsets(pb)
	for s := slices.Max(pb.capacity); s >= 1; s-- {
		if bruteFeasible(pb, s, sets) {
			return s
		}
	}
	return 0
}

// bruteMoves is the fewest replicas any assignment with partitions of size
// s moves from pb.prev, trying every assignment (with pruning).
func bruteMoves(pb *problem, s uint64) int {
	sets := subsets(pb)
	slots := make([]int, len(pb.zone))
	for n, c := range pb.capacity {
		slots[n] = int(c / s)
	}
	prev := make([]uint32, pb.nPartitions)
	for p := range prev {
		for _, n := range pb.prev[p] {
			prev[p] |= 1 << n
		}
	}
	best := -1
	var try func(p, moved int)
	try = func(p, moved int) {
		if best >= 0 && moved >= best {
			return
		}
		if p == pb.nPartitions {
			best = moved
			return
		}
		for _, m := range sets {
			ok := true
			for n := range slots {
				if m&(1<<n) != 0 && slots[n] == 0 {
					ok = false
				}
			}
			if !ok {
				continue
			}
			for n := range slots {
				if m&(1<<n) != 0 {
					slots[n]--
				}
			}
			try(p+1, moved+bits.OnesCount32(m&^prev[p]))
			for n := range slots {
				if m&(1<<n) != 0 {
					slots[n]++
				}
			}
		}
	}
	try(0, 0)
	return best
}

func movesOf(pb *problem, sol solution) int {
	moved := 0
	for p, ns := range sol.assign {
		for _, n := range ns {
			if pb.prev == nil || !slices.Contains(pb.prev[p], n) {
				moved++
			}
		}
	}
	return moved
}

// checkSolution verifies the invariants of a solution of pb.
func checkSolution(t *testing.T, pb *problem, sol solution) {
	t.Helper()
	load := make([]int, len(pb.zone))
	for p, ns := range sol.assign {
		zones := map[int]bool{}
		for i, n := range ns {
			if i > 0 && ns[i-1] >= n {
				t.Fatalf("partition %d: %v not sorted and distinct", p, ns)
			}
			zones[pb.zone[n]] = true
			load[n]++
		}
		if len(ns) != pb.rf || len(zones) < pb.zr {
			t.Fatalf("partition %d: nodes %v over %d zones, want %d nodes over %d", p, ns, len(zones), pb.rf, pb.zr)
		}
	}
	for n, c := range pb.capacity {
		if uint64(load[n])*sol.size > c {
			t.Fatalf("node %d holds %d partitions of %d in %d", n, load[n], sol.size, c)
		}
	}
}

// TestPartitionSizeBruteForce compares the partition size with the best
// any assignment achieves, found by trying them all, on small clusters of
// 2–6 partitions.
func TestPartitionSizeBruteForce(t *testing.T) {
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	rng := rand.New(rand.NewPCG(3, 4))
	checked := 0
	defer func() { t.Logf("%d clusters checked", checked) }()
	for i := range iters {
		nodes := randomSmall(rng, 6)
		rf := 1 + rng.IntN(3)
		zr := rng.IntN(rf + 1)
		pb := smallProblem(2+rng.IntN(5), rf, zr, nodes, nil)
		if pb.check() != nil {
			continue
		}
		want := bruteSize(pb)
		sol, err := assign(pb)
		if want == 0 {
			if err == nil {
				t.Fatalf("case %d %+v: size %d, brute force finds no assignment", i, pb, sol.size)
			}
			continue
		}
		if err != nil {
			t.Fatalf("case %d %+v: %v, brute force finds size %d", i, pb, err, want)
		}
		if sol.size != want {
			t.Fatalf("case %d %+v: size %d, brute force %d", i, pb, sol.size, want)
		}
		checkSolution(t, pb, sol)
		checked++
	}
}

// TestMovesBruteForce checks that after one change — a node added,
// removed, resized or moved to another zone — the new assignment moves as
// few replicas as any assignment of the optimal size, found by trying them
// all; and likewise from an arbitrary previous assignment.
func TestMovesBruteForce(t *testing.T) {
	iters := 3000
	if testing.Short() {
		iters = 300
	}
	rng := rand.New(rand.NewPCG(5, 6))
	checked := 0
	for i := range iters {
		nPartitions := 2 + rng.IntN(4)
		rf := 1 + rng.IntN(3)
		zr := rng.IntN(rf + 1)
		nodes := randomSmall(rng, 5)
		pb := smallProblem(nPartitions, rf, zr, nodes, nil)
		if pb.check() != nil {
			continue
		}
		first, err := assign(pb)
		if err != nil {
			continue
		}
		prev := make([][]int, nPartitions)
		for p, ns := range first.assign {
			for _, n := range ns {
				prev[p] = append(prev[p], nodes[n].name)
			}
		}
		if rng.IntN(4) == 0 {
			// an arbitrary previous assignment, not an optimal one
			for p := range prev {
				prev[p] = rng.Perm(len(nodes) + 1)[:rng.IntN(rf+1)]
			}
		}
		var change string
		switch k := rng.IntN(len(nodes)); rng.IntN(4) {
		case 0:
			change = "add"
			nodes = append(nodes, smallNode{name: len(nodes), zone: rng.IntN(5), capacity: uint64(1 + rng.IntN(30))})
		case 1:
			change = "remove"
			nodes = slices.Delete(nodes, k, k+1)
		case 2:
			change = "resize"
			nodes[k].capacity = uint64(1 + rng.IntN(30))
		case 3:
			change = "rezone"
			nodes[k].zone = rng.IntN(5)
		}
		pb = smallProblem(nPartitions, rf, zr, nodes, prev)
		if pb.check() != nil {
			continue
		}
		sol, err := assign(pb)
		wantSize := bruteSize(pb)
		if err != nil || wantSize == 0 {
			if (err == nil) != (wantSize > 0) {
				t.Fatalf("case %d (%s): err %v, brute force size %d", i, change, err, wantSize)
			}
			continue
		}
		checkSolution(t, pb, sol)
		if sol.size != wantSize {
			t.Fatalf("case %d (%s): size %d, brute force %d", i, change, sol.size, wantSize)
		}
		got, want := movesOf(pb, sol), bruteMoves(pb, sol.size)
		if got != want {
			t.Fatalf("case %d (%s) %+v: moved %d, brute force %d; assignment %v", i, change, pb, got, want, sol.assign)
		}
		checked++
	}
	t.Logf("%d changes checked", checked)
}

// TestNoChangeNoMove: recomputing a layout with the same roles, or with a
// gateway more, moves nothing.
func TestNoChangeNoMove(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	roles := map[NodeID]Role{}
	for i := range 12 {
		roles[NodeID{byte(i + 1)}] = Role{Zone: fmt.Sprintf("z%d", i%3), CapacityBytes: uint64(1+rng.IntN(10)) << 40}
	}
	l1, _, err := compute(1, 3, Parameters{}, roles, nil)
	if err != nil {
		t.Fatal(err)
	}
	l2, _, err := compute(2, 3, Parameters{}, roles, l1)
	if err != nil {
		t.Fatal(err)
	}
	if m := Moved(l1, l2); m != 0 {
		t.Errorf("same roles: moved %d", m)
	}
	roles[NodeID{100}] = Role{Zone: "z9"}
	l3, _, err := compute(3, 3, Parameters{}, roles, l2)
	if err != nil {
		t.Fatal(err)
	}
	if m := Moved(l2, l3); m != 0 || l3.PartitionSize != l2.PartitionSize {
		t.Errorf("gateway added: moved %d, partition size %d then %d", m, l2.PartitionSize, l3.PartitionSize)
	}
	checkAssignment(t, l3)
}

func BenchmarkCompute(b *testing.B) {
	for _, prev := range []bool{false, true} {
		b.Run(fmt.Sprintf("30nodes-6zones-rf3/previous=%v", prev), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(9, 10))
			roles := map[NodeID]Role{}
			for i := range 30 {
				roles[NodeID{byte(i + 1)}] = Role{Zone: fmt.Sprintf("z%d", i%6), CapacityBytes: uint64(1+rng.IntN(20)) << 40}
			}
			var old *Layout
			if prev {
				l, _, err := compute(1, 3, Parameters{}, roles, nil)
				if err != nil {
					b.Fatal(err)
				}
				old = l
				delete(roles, NodeID{7})
				roles[NodeID{200}] = Role{Zone: "z2", CapacityBytes: 8 << 40}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := compute(2, 3, Parameters{}, roles, old); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
