package layout

import (
	"fmt"
	"slices"
	"sort"
)

// AssignError explains why no assignment satisfies a set of roles and
// parameters. It wraps ErrInvalid.
type AssignError struct {
	StorageNodes      int // nodes with a non-zero capacity
	Zones             int // distinct zones of those nodes
	ReplicationFactor int
	ZoneRedundancy    int // the effective value
	Reason            string
}

func (e *AssignError) Error() string { return "layout: " + e.Reason }

// Unwrap returns ErrInvalid.
func (e *AssignError) Unwrap() error { return ErrInvalid }

// problem is the input of the assignment, with storage nodes and zones
// numbered: node i is in zone zone[i] and offers capacity[i] bytes.
type problem struct {
	nPartitions int
	rf, zr      int // zr is the effective zone redundancy, 1 ≤ zr ≤ rf
	nZones      int
	zone        []int
	capacity    []uint64
	// prev[p] lists the nodes that stored partition p in the previous
	// version and still store data; nil when there was no assignment.
	prev [][]int
}

// solution is the output of the assignment: assign[p] lists the nodes
// storing partition p, ascending.
type solution struct {
	size   uint64
	assign [][]int
}

// The flow network, for a partition size S (doc/optimal_layout_report):
//
//	source → up(p)     cap zr        every partition has zr replicas that
//	up(p)  → pz(p,z)   cap 1         go to distinct zones,
//	source → down(p)   cap rf−zr     and rf−zr more that go anywhere;
//	down(p)→ pz(p,z)   cap rf−zr
//	pz(p,z)→ node(n)   cap 1         a node holds a partition at most once,
//	node(n)→ sink      cap ⌊c(n)/S⌋  and at most as many as fit in it.
//
// A flow of value P·rf is exactly an assignment in which each partition
// has rf distinct nodes over at least zr zones and no node holds more than
// ⌊c(n)/S⌋ partitions; integral flows exist whenever fractional ones do.
type network struct {
	pb         *problem
	g          *flowGraph
	source     int
	sink       int
	sinkArcs   []int32 // node(n) → sink, per node
	assignArcs []int32 // pz(p,zone[n]) → node(n), at [p*len(nodes)+n]
}

func newNetwork(pb *problem) *network {
	nNodes := len(pb.zone)
	perP := 2 + pb.nZones
	nv := 2 + pb.nPartitions*perP + nNodes
	b := newFlowBuilder(nv, pb.nPartitions*(2+2*pb.nZones+nNodes)+nNodes)
	nw := &network{pb: pb, source: 0, sink: 1}
	nodeV := func(n int) int { return 2 + pb.nPartitions*perP + n }
	nw.assignArcs = make([]int32, pb.nPartitions*nNodes)
	for p := range pb.nPartitions {
		up, down := 2+p*perP, 3+p*perP
		pz := func(z int) int { return 4 + p*perP + z }
		b.arc(nw.source, up, int32(pb.zr), 0)
		if pb.rf > pb.zr {
			b.arc(nw.source, down, int32(pb.rf-pb.zr), 0)
		}
		for z := range pb.nZones {
			b.arc(up, pz(z), 1, 0)
			if pb.rf > pb.zr {
				b.arc(down, pz(z), int32(pb.rf-pb.zr), 0)
			}
		}
		// Keeping a replica where it was costs nothing, anything else 1:
		// the cost of a flow is the number of replicas to move.
		for n, z := range pb.zone {
			cost := int32(1)
			if pb.prev != nil && slices.Contains(pb.prev[p], n) {
				cost = 0
			}
			nw.assignArcs[p*nNodes+n] = b.arc(pz(z), nodeV(n), 1, cost)
		}
	}
	nw.sinkArcs = make([]int32, nNodes)
	for n := range nNodes {
		nw.sinkArcs[n] = b.arc(nodeV(n), nw.sink, 0, 0)
	}
	nw.g = b.build()
	return nw
}

// setSize sets the node capacities for partition size s and clears the flow.
func (nw *network) setSize(s uint64) {
	for n, c := range nw.pb.capacity {
		nw.g.setCap(nw.sinkArcs[n], int32(min(c/s, uint64(nw.pb.nPartitions))))
	}
	nw.g.reset()
}

// feasible reports whether partitions of s bytes admit an assignment.
func (nw *network) feasible(s uint64) bool {
	slots := uint64(0)
	for _, c := range nw.pb.capacity {
		slots += min(c/s, uint64(nw.pb.nPartitions))
	}
	if slots < uint64(nw.pb.nPartitions*nw.pb.rf) {
		return false
	}
	nw.setSize(s)
	return nw.g.maxFlow(nw.source, nw.sink, nil) == nw.pb.nPartitions*nw.pb.rf
}

// assign computes the optimal assignment of pb: the largest partition size
// any assignment achieves and, among the assignments achieving it, one
// moving the fewest replicas away from pb.prev. pb must have passed check.
func assign(pb *problem) (solution, error) {
	nw := newNetwork(pb)
	// The largest feasible size S* is ⌊c(n)/k⌋ for some node n and
	// 1 ≤ k ≤ P: some node's capacity in partitions, min(P, ⌊c(n)/S⌋),
	// must drop between S* and S*+1, and k is its value at S*. So a binary
	// search over these candidates (feasibility is monotone in S) needs
	// about log2(N·P) maximum flows instead of 64.
	var cands []uint64
	for _, c := range pb.capacity {
		for k := 1; k <= pb.nPartitions; k++ {
			if s := c / uint64(k); s > 0 {
				cands = append(cands, s)
			}
		}
	}
	slices.Sort(cands)
	cands = slices.Compact(cands)
	i := sort.Search(len(cands), func(i int) bool { return !nw.feasible(cands[i]) })
	if i == 0 {
		return solution{}, pb.errorf("the storage nodes are too small: not even partitions of one byte fit")
	}
	size := cands[i-1]
	// Garage reaches the fewest moves by cancelling negative cycles found
	// with Bellman-Ford from an arbitrary maximum flow; a minimum-cost
	// maximum flow computed directly has the same optimum, and the
	// primal-dual method finds it in a few Dijkstra rounds instead of a
	// Bellman-Ford pass per cycle.
	nw.setSize(size)
	var f int
	if pb.prev == nil {
		f = nw.g.maxFlow(nw.source, nw.sink, nil)
	} else {
		f = nw.g.minCostMaxFlow(nw.source, nw.sink)
	}
	if f != pb.nPartitions*pb.rf {
		return solution{}, fmt.Errorf("layout: internal error: flow %d at feasible size %d, want %d", f, size, pb.nPartitions*pb.rf)
	}
	sol := solution{size: size, assign: make([][]int, pb.nPartitions)}
	nNodes := len(pb.zone)
	for p := range sol.assign {
		for n := range nNodes {
			if nw.g.flow(nw.assignArcs[p*nNodes+n]) > 0 {
				sol.assign[p] = append(sol.assign[p], n)
			}
		}
	}
	return sol, nil
}

func (pb *problem) errorf(format string, args ...any) *AssignError {
	return &AssignError{
		StorageNodes:      len(pb.zone),
		Zones:             pb.nZones,
		ReplicationFactor: pb.rf,
		ZoneRedundancy:    pb.zr,
		Reason:            fmt.Sprintf(format, args...),
	}
}

// check validates the sizes of pb before any flow is computed.
func (pb *problem) check() error {
	switch {
	case pb.rf < 1 || pb.rf > MaxReplicationFactor:
		return pb.errorf("replication factor %d is not between 1 and %d", pb.rf, MaxReplicationFactor)
	case len(pb.zone) == 0:
		return pb.errorf("no storage node: give at least one node a non-zero capacity")
	case pb.zr < 1 || pb.zr > pb.rf:
		return pb.errorf("zone redundancy %d is not between 1 and the replication factor %d", pb.zr, pb.rf)
	case len(pb.zone) < pb.rf:
		return pb.errorf("%d storage nodes are fewer than the replication factor %d", len(pb.zone), pb.rf)
	case pb.nZones < pb.zr:
		return pb.errorf("%d zones with storage nodes are fewer than the zone redundancy %d", pb.nZones, pb.zr)
	}
	return nil
}

// compute builds layout version from roles and parameters, moving as few
// replicas as possible from prev (nil, or a version without assignment, for
// a first assignment). It returns the report lines of Preview.Messages.
func compute(version uint64, rf int, params Parameters, roles map[NodeID]Role, prev *Layout) (*Layout, []string, error) {
	nodes := make([]NodeID, 0, len(roles))
	for _, id := range sortedIDs(roles) {
		if roles[id].CapacityBytes > 0 {
			nodes = append(nodes, id)
		}
	}
	var zones []string
	for _, id := range nodes {
		zones = append(zones, roles[id].Zone)
	}
	slices.Sort(zones)
	zones = slices.Compact(zones)

	pb := &problem{nPartitions: NumPartitions, rf: rf, nZones: len(zones)}
	pb.zr = params.ZoneRedundancy
	if pb.zr == 0 {
		pb.zr = min(rf, len(zones))
	}
	index := make(map[NodeID]int, len(nodes))
	for i, id := range nodes {
		index[id] = i
		z, _ := slices.BinarySearch(zones, roles[id].Zone)
		pb.zone = append(pb.zone, z)
		pb.capacity = append(pb.capacity, roles[id].CapacityBytes)
	}
	if params.ZoneRedundancy < 0 {
		return nil, nil, pb.errorf("zone redundancy %d is negative", params.ZoneRedundancy)
	}
	if err := pb.check(); err != nil {
		return nil, nil, err
	}
	if prev != nil && prev.hasAssignment() {
		pb.prev = make([][]int, NumPartitions)
		for p := range pb.prev {
			for _, id := range prev.replicas[p] {
				if i, ok := index[id]; ok {
					pb.prev[p] = append(pb.prev[p], i)
				}
			}
		}
	}
	sol, err := assign(pb)
	if err != nil {
		return nil, nil, err
	}
	l := &Layout{
		Version:           version,
		ReplicationFactor: rf,
		ZoneRedundancy:    pb.zr,
		Parameters:        params,
		PartitionSize:     sol.size,
		Roles:             make(map[NodeID]Role, len(roles)),
	}
	for id, r := range roles {
		l.Roles[id] = r.clone()
	}
	for p, ns := range sol.assign {
		l.replicas[p] = make([]NodeID, len(ns))
		for i, n := range ns {
			l.replicas[p][i] = nodes[n]
		}
	}
	return l, report(l, prev, zones), nil
}
