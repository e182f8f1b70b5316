package layout

import "math"

// flowGraph is a directed graph with integer capacities and costs for the
// maximum-flow and minimum-cost-flow computations of assign.go. Arcs come
// in pairs: arc e and its residual reverse e^1, which starts with no
// capacity and the opposite cost. cap holds residual capacities, so the
// flow on a forward arc e is cap0[e] - cap[e].
type flowGraph struct {
	n    int
	to   []int32
	cap  []int32
	cap0 []int32 // capacities before any flow
	cost []int32
	// adj[first[v]:first[v+1]] are the arcs leaving v, in insertion order,
	// so that the result is deterministic.
	first []int32
	adj   []int32

	// scratch, reused across runs
	level []int32
	iter  []int32
	queue []int32
}

// flowBuilder collects arcs before the graph is frozen into adjacency
// arrays.
type flowBuilder struct {
	n    int
	from []int32
	g    flowGraph
}

func newFlowBuilder(n, arcsHint int) *flowBuilder {
	b := &flowBuilder{n: n}
	b.from = make([]int32, 0, 2*arcsHint)
	b.g.to = make([]int32, 0, 2*arcsHint)
	b.g.cap0 = make([]int32, 0, 2*arcsHint)
	b.g.cost = make([]int32, 0, 2*arcsHint)
	return b
}

// arc adds an arc u→v and returns its index.
func (b *flowBuilder) arc(u, v int, capacity, cost int32) int32 {
	e := int32(len(b.g.to))
	b.from = append(b.from, int32(u), int32(v))
	b.g.to = append(b.g.to, int32(v), int32(u))
	b.g.cap0 = append(b.g.cap0, capacity, 0)
	b.g.cost = append(b.g.cost, cost, -cost)
	return e
}

func (b *flowBuilder) build() *flowGraph {
	g := &b.g
	g.n = b.n
	g.first = make([]int32, g.n+1)
	for _, u := range b.from {
		g.first[u+1]++
	}
	for v := range g.n {
		g.first[v+1] += g.first[v]
	}
	g.adj = make([]int32, len(b.from))
	pos := make([]int32, g.n)
	copy(pos, g.first[:g.n])
	for e, u := range b.from {
		g.adj[pos[u]] = int32(e)
		pos[u]++
	}
	g.cap = make([]int32, len(g.cap0))
	g.level = make([]int32, g.n)
	g.iter = make([]int32, g.n)
	g.queue = make([]int32, 0, g.n)
	return g
}

// reset removes all flow.
func (g *flowGraph) reset() { copy(g.cap, g.cap0) }

// setCap sets the capacity of forward arc e; call reset afterwards.
func (g *flowGraph) setCap(e int32, c int32) { g.cap0[e] = c }

// flow returns the flow on forward arc e.
func (g *flowGraph) flow(e int32) int32 { return g.cap0[e] - g.cap[e] }

// usable reports whether arc e, leaving u, may carry more flow: it has
// residual capacity and, when potentials are given, zero reduced cost.
func (g *flowGraph) usable(u int32, e int32, pot []int64) bool {
	if g.cap[e] <= 0 {
		return false
	}
	return pot == nil || int64(g.cost[e])+pot[u]-pot[g.to[e]] == 0
}

// maxFlow pushes as much flow as possible from s to t over usable arcs
// (Dinic's algorithm: shortest augmenting paths, a blocking flow per BFS
// layering) and returns the amount pushed.
func (g *flowGraph) maxFlow(s, t int, pot []int64) int {
	total := 0
	for g.bfs(int32(s), int32(t), pot) {
		copy(g.iter, g.first[:g.n])
		for {
			f := g.dfs(int32(s), int32(t), math.MaxInt32, pot)
			if f == 0 {
				break
			}
			total += int(f)
		}
	}
	return total
}

func (g *flowGraph) bfs(s, t int32, pot []int64) bool {
	for i := range g.level {
		g.level[i] = -1
	}
	g.level[s] = 0
	q := append(g.queue[:0], s)
	for i := 0; i < len(q); i++ {
		u := q[i]
		for _, e := range g.adj[g.first[u]:g.first[u+1]] {
			if v := g.to[e]; g.level[v] < 0 && g.usable(u, e, pot) {
				g.level[v] = g.level[u] + 1
				q = append(q, v)
			}
		}
	}
	g.queue = q
	return g.level[t] >= 0
}

func (g *flowGraph) dfs(u, t int32, limit int32, pot []int64) int32 {
	if u == t {
		return limit
	}
	for ; g.iter[u] < g.first[u+1]; g.iter[u]++ {
		e := g.adj[g.iter[u]]
		v := g.to[e]
		if g.level[v] != g.level[u]+1 || !g.usable(u, e, pot) {
			continue
		}
		if d := g.dfs(v, t, min(limit, g.cap[e]), pot); d > 0 {
			g.cap[e] -= d
			g.cap[e^1] += d
			return d
		}
	}
	return 0
}

// minCostMaxFlow pushes a maximum flow from s to t of minimum total cost
// and returns its value. Every arc must have a non-negative cost and the
// graph must carry no flow yet.
//
// It is the primal-dual method: potentials keep every residual arc's
// reduced cost non-negative; Dijkstra finds the shortest distances under
// them, the potentials absorb the distances, and a maximum flow is pushed
// over the arcs of reduced cost zero — all shortest augmenting paths at
// once — before the next Dijkstra. Reverse arcs of those arcs also have
// reduced cost zero, so the invariant holds throughout. Costs here are 0
// or 1 per replica, so there are few distinct path lengths and few rounds.
func (g *flowGraph) minCostMaxFlow(s, t int) int {
	pot := make([]int64, g.n)
	dist := make([]int64, g.n)
	h := &distHeap{}
	total := 0
	for {
		if !g.dijkstra(int32(s), int32(t), pot, dist, h) {
			return total
		}
		// Vertices not settled before t are at least as far as t; capping
		// their distance at d(t) keeps reduced costs non-negative.
		dt := dist[t]
		for v := range pot {
			pot[v] += min(dist[v], dt)
		}
		total += g.maxFlow(s, t, pot)
	}
}

const infDist = math.MaxInt64 / 4

// dijkstra computes distances from s under reduced costs, stopping once t
// is settled. It reports whether t is reachable.
func (g *flowGraph) dijkstra(s, t int32, pot, dist []int64, h *distHeap) bool {
	for i := range dist {
		dist[i] = infDist
	}
	dist[s] = 0
	h.items = append(h.items[:0], distItem{0, s})
	for len(h.items) > 0 {
		it := h.pop()
		u := it.v
		if it.d > dist[u] {
			continue
		}
		if u == t {
			return true
		}
		for _, e := range g.adj[g.first[u]:g.first[u+1]] {
			if g.cap[e] <= 0 {
				continue
			}
			v := g.to[e]
			if d := it.d + int64(g.cost[e]) + pot[u] - pot[v]; d < dist[v] {
				dist[v] = d
				h.push(distItem{d, v})
			}
		}
	}
	return false
}

type distItem struct {
	d int64
	v int32
}

// distHeap is a binary min-heap on d; ties go to the lower vertex so that
// results do not depend on anything but the graph.
type distHeap struct{ items []distItem }

func (h *distHeap) less(i, j int) bool {
	a, b := h.items[i], h.items[j]
	return a.d < b.d || a.d == b.d && a.v < b.v
}

func (h *distHeap) push(x distItem) {
	h.items = append(h.items, x)
	for i := len(h.items) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.items[i], h.items[p] = h.items[p], h.items[i]
		i = p
	}
}

func (h *distHeap) pop() distItem {
	top := h.items[0]
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && h.less(l, m) {
			m = l
		}
		if r < last && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h.items[i], h.items[m] = h.items[m], h.items[i]
		i = m
	}
	return top
}
