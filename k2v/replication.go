package k2v

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/layout"
)

// ConsistencyMode is the cluster's consistency_mode: how many replicas
// reads and writes wait for.
type ConsistencyMode int

const (
	// Consistent waits for ⌈(RF+1)/2⌉ replicas on reads and on writes:
	// a read sees every acknowledged write.
	Consistent ConsistencyMode = iota
	// Degraded reads from one replica and writes to a quorum: reads may be
	// stale while a replica lags, and keep working when only one is up.
	Degraded
	// Dangerous reads from and writes to one replica: a write acknowledged
	// by one node is lost if that node's disk is.
	Dangerous
)

// ParseConsistencyMode parses "consistent", "degraded" or "dangerous"; ""
// means consistent.
func ParseConsistencyMode(s string) (ConsistencyMode, error) {
	switch s {
	case "", "consistent":
		return Consistent, nil
	case "degraded":
		return Degraded, nil
	case "dangerous":
		return Dangerous, nil
	}
	return 0, fmt.Errorf("k2v: consistency_mode %q: want consistent, degraded or dangerous", s)
}

func (m ConsistencyMode) String() string {
	switch m {
	case Degraded:
		return "degraded"
	case Dangerous:
		return "dangerous"
	}
	return "consistent"
}

// Placement says where the entries of a table live.
type Placement int

const (
	// Sharded tables keep an entry on the RF nodes of its partition.
	Sharded Placement = iota
	// FullCopy tables keep every entry on every node of the layout
	// (gateways included): buckets, access keys, aliases. Writes wait for
	// a majority; reads are served locally.
	FullCopy
)

// ErrNoLayout is returned by operations on sharded tables while the
// cluster layout assigns no storage node.
var ErrNoLayout = errors.New("k2v: the cluster layout has no storage node yet (grange layout assign, then grange layout apply)")

// ReplicatorConfig configures NewReplicator.
type ReplicatorConfig struct {
	Cluster     *cluster.Cluster
	DB          *DB
	Consistency ConsistencyMode
	// SyncInterval is the period of the full anti-entropy pass; 0 means
	// 10 minutes. A layout change starts one at once.
	SyncInterval time.Duration
	// RetryInterval is how often writes that missed a replica are retried
	// from the queue; 0 means 2 seconds.
	RetryInterval time.Duration
	// GCDelay is how long a tombstone waits before it is collected; 0
	// means 24 hours. It is raised to twice RequestTimeout if shorter: a
	// write still in flight when its entry's tombstone is collected could
	// bring the deleted state back.
	GCDelay time.Duration
	// RequestTimeout bounds one replica call, and how long a write goes on
	// in the background for the replicas that missed its quorum; 0 means
	// 30 seconds.
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

// Replicator holds what the replicated tables of a node share: the
// cluster, the consistency mode, and the background workers (retry queue,
// anti-entropy, tombstone collection).
type Replicator struct {
	cfg    ReplicatorConfig
	c      *cluster.Cluster
	db     *DB
	log    *slog.Logger
	tables map[string]replicatedTable
	order  []replicatedTable

	sync *syncer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // pokes the retry worker
}

// replicatedTable is a Replicated[E] seen without its entry type, by the
// workers that serve every table.
type replicatedTable interface {
	name() string
	retryQueued(ctx context.Context) (remaining int, err error)
	syncTable(ctx context.Context, h *layout.History, progress func()) []error
	collectGarbage(ctx context.Context) error
	pushLocal(ctx context.Context, h *layout.History, chs []change, written map[string]pending) error
	runMerkle(ctx context.Context)
}

// NewReplicator prepares replication for the tables registered with
// Replicate; Start launches its workers.
func NewReplicator(cfg ReplicatorConfig) *Replicator {
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = 10 * time.Minute
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 2 * time.Second
	}
	if cfg.GCDelay == 0 {
		cfg.GCDelay = 24 * time.Hour
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	cfg.GCDelay = max(cfg.GCDelay, 2*cfg.RequestTimeout)
	r := &Replicator{cfg: cfg, c: cfg.Cluster, db: cfg.DB, log: cfg.Logger, tables: map[string]replicatedTable{}, wake: make(chan struct{}, 1)}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.sync = newSyncer(r)
	return r
}

// Consistency returns the configured consistency mode.
func (r *Replicator) Consistency() ConsistencyMode { return r.cfg.Consistency }

// Cluster returns the cluster the tables replicate over.
func (r *Replicator) Cluster() *cluster.Cluster { return r.c }

// Start launches the retry, anti-entropy and tombstone workers.
func (r *Replicator) Start() {
	r.wg.Go(r.retryLoop)
	r.wg.Go(r.sync.loop)
	r.wg.Go(r.gcLoop)
	for _, t := range r.order {
		if m, ok := t.(interface {
			startMerkle(context.Context, *sync.WaitGroup)
		}); ok {
			m.startMerkle(r.ctx, &r.wg)
		}
	}
}

// Close stops the workers and waits for them.
func (r *Replicator) Close() {
	r.cancel()
	r.wg.Wait()
}

// Replicated is a table whose entries live on several nodes: reads and
// writes go to quorums of replicas, and background workers keep the
// replicas identical.
type Replicated[E any] struct {
	r         *Replicator
	t         *Table[E]
	placement Placement
	ep        string // endpoint prefix: "table/<name>/"
}

// Replicate makes t a replicated table with the given placement and
// registers its RPC endpoints; call it before the cluster starts.
func Replicate[E any](r *Replicator, t *Table[E], placement Placement) *Replicated[E] {
	rt := &Replicated[E]{r: r, t: t, placement: placement, ep: "table/" + t.Name() + "/"}
	r.tables[t.Name()] = rt
	r.order = append(r.order, rt)
	rt.registerHandlers()
	return rt
}

// Table returns the local half of the table.
func (rt *Replicated[E]) Table() *Table[E] { return rt.t }

func (rt *Replicated[E]) name() string { return rt.t.Name() }

func (rt *Replicated[E]) runMerkle(ctx context.Context) { rt.t.RunMerkle(ctx) }

// ---- placement ----

func (rt *Replicated[E]) nodesOf(l *layout.Layout, p cluster.Partition) []cluster.NodeID {
	if rt.placement == FullCopy {
		nodes := l.Nodes()
		if len(nodes) == 0 {
			// no layout yet: this node is the whole cluster it knows
			return []cluster.NodeID{rt.r.c.ID()}
		}
		return nodes
	}
	return l.Replicas(p)
}

// writeSets returns the replica set of p in every active layout version
// that has one: a write must reach a quorum of each.
func (rt *Replicated[E]) writeSets(h *layout.History, p cluster.Partition) ([][]cluster.NodeID, error) {
	var sets [][]cluster.NodeID
	for _, l := range h.Versions {
		if nodes := rt.nodesOf(l, p); len(nodes) > 0 && !slices.ContainsFunc(sets, func(s []cluster.NodeID) bool { return slices.Equal(s, nodes) }) {
			sets = append(sets, nodes)
		}
	}
	if len(sets) == 0 {
		return nil, ErrNoLayout
	}
	return sets, nil
}

// readSet returns the replicas reads of p ask: those of the newest
// version every storage node has synced.
func (rt *Replicated[E]) readSet(h *layout.History, p cluster.Partition) ([]cluster.NodeID, error) {
	if nodes := rt.nodesOf(h.ReadVersion(), p); len(nodes) > 0 {
		return nodes, nil
	}
	for _, l := range h.Versions {
		if nodes := rt.nodesOf(l, p); len(nodes) > 0 {
			return nodes, nil
		}
	}
	return nil, ErrNoLayout
}

// storageSetUnion returns every node that holds p in an active version.
func (rt *Replicated[E]) storageSetUnion(h *layout.History, p cluster.Partition) []cluster.NodeID {
	var out []cluster.NodeID
	for _, l := range h.Versions {
		for _, id := range rt.nodesOf(l, p) {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

func (rt *Replicated[E]) writeQuorum(n int) int {
	if rt.r.cfg.Consistency == Dangerous {
		return 1
	}
	return (n + 2) / 2 // ⌈(n+1)/2⌉
}

func (rt *Replicated[E]) readQuorum(n int) int {
	if rt.r.cfg.Consistency != Consistent {
		return 1
	}
	return (n + 2) / 2
}

// IsReplica reports whether this node stores partitionKey in the current
// layout version.
func (rt *Replicated[E]) IsReplica(partitionKey []byte) bool {
	p := cluster.PartitionOf(Hash(partitionKey))
	return slices.Contains(rt.nodesOf(rt.r.c.Layout(), p), rt.r.c.ID())
}

// PreferredReplica returns the replica of partitionKey in the current
// version a request should go to: this node, else the closest that is up.
func (rt *Replicated[E]) PreferredReplica(partitionKey []byte) (cluster.NodeID, error) {
	p := cluster.PartitionOf(Hash(partitionKey))
	nodes := rt.nodesOf(rt.r.c.Layout(), p)
	if len(nodes) == 0 {
		return cluster.NodeID{}, ErrNoLayout
	}
	return rt.r.c.Preferred(nodes)[0], nil
}

// ---- writes ----

// Insert merges entries into the table on a write quorum of every active
// replica set of their partitions. This node need not be a replica: the
// entries are sent as they are.
func (rt *Replicated[E]) Insert(ctx context.Context, entries ...*E) error {
	h, done := rt.r.c.BeginWrite()
	defer done()
	values := make([][]byte, len(entries))
	keys := make([][]byte, len(entries))
	for i, e := range entries {
		pk, sk := rt.t.schema.Keys(e)
		keys[i] = storeKey(Hash(pk), sk)
		values[i] = rt.t.schema.Encode(nil, e)
	}
	return rt.send(ctx, h, keys, values, false)
}

// Update runs fn on the local database and then sends every entry of a
// replicated table that the batch changed to its replicas, counting this
// node's copy for the replica sets it belongs to: the write path of
// entries this node computes from its own state (K2V inserts stamped
// here, the catalog).
func (r *Replicator) Update(ctx context.Context, fn func(b *Batch) error) error {
	h, done := r.c.BeginWrite()
	defer done()
	var written map[string]pending
	var changes []change
	err := r.db.Update(func(b *Batch) error {
		if err := fn(b); err != nil {
			return err
		}
		written, changes = b.written, b.changes
		return nil
	})
	if err != nil || len(changes) == 0 {
		return err
	}
	byTable := map[string][]change{}
	for _, ch := range changes {
		if _, ok := r.tables[ch.table]; ok {
			byTable[ch.table] = append(byTable[ch.table], ch)
		}
	}
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, chs := range byTable {
		rt := r.tables[name]
		wg.Go(func() {
			if err := rt.pushLocal(ctx, h, chs, written); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (rt *Replicated[E]) pushLocal(ctx context.Context, h *layout.History, chs []change, written map[string]pending) error {
	keys := make([][]byte, 0, len(chs))
	values := make([][]byte, 0, len(chs))
	seen := map[string]bool{}
	for _, ch := range chs {
		sk := storeKey(ch.hash, ch.sort)
		if seen[string(sk)] {
			continue
		}
		seen[string(sk)] = true
		w, ok := written[string(rt.t.key(ch.hash, ch.sort))]
		if !ok || w.deleted {
			continue
		}
		keys = append(keys, sk)
		values = append(values, w.value)
	}
	return rt.send(ctx, h, keys, values, true)
}

func storeKey(hash [32]byte, sort []byte) []byte {
	k := make([]byte, 0, 32+len(sort))
	k = append(k, hash[:]...)
	return append(k, sort...)
}

// send writes encoded entries to their replica sets, in parallel. With
// local, this node already holds them. Entries whose partitions have the
// same replica sets (every partition, when the cluster has RF nodes) go in
// one call per replica: a call merges its entries in one atomic batch, so
// a replica that acknowledged it holds all of them, and the quorums are
// those of each partition.
func (rt *Replicated[E]) send(ctx context.Context, h *layout.History, keys, values [][]byte, local bool) error {
	type group struct {
		sets         [][]cluster.NodeID
		keys, values [][]byte
	}
	var groups []*group
	byPartition := map[cluster.Partition]*group{}
	for i, k := range keys {
		p := cluster.Partition(k[0])
		g := byPartition[p]
		if g == nil {
			sets, err := rt.writeSets(h, p)
			if err != nil {
				return err
			}
			for _, o := range groups {
				if slices.EqualFunc(o.sets, sets, slices.Equal) {
					g = o
					break
				}
			}
			if g == nil {
				g = &group{sets: sets}
				groups = append(groups, g)
			}
			byPartition[p] = g
		}
		g.keys = append(g.keys, k)
		g.values = append(g.values, values[i])
	}
	if len(groups) == 1 {
		return rt.sendGroup(ctx, groups[0].sets, groups[0].keys, groups[0].values, local)
	}
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() { errs[i] = rt.sendGroup(ctx, g.sets, g.keys, g.values, local) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sendGroup writes encoded entries whose partitions all have the replica
// sets sets.
func (rt *Replicated[E]) sendGroup(ctx context.Context, sets [][]cluster.NodeID, keys, values [][]byte, local bool) error {
	quorums := make([]int, len(sets))
	for i, s := range sets {
		quorums[i] = rt.writeQuorum(len(s))
		if rt.placement == FullCopy && rt.r.cfg.Consistency != Dangerous {
			quorums[i] = len(s)/2 + 1
		}
	}
	self := rt.r.c.ID()
	var done []cluster.NodeID
	if local {
		done = []cluster.NodeID{self}
	}
	body := encodeValues(values)
	err := cluster.CallSets(ctx, rt.r.c, sets, quorums, done, cluster.QuorumOptions{BackgroundTimeout: rt.r.cfg.RequestTimeout},
		func(ctx context.Context, to cluster.NodeID) error {
			if to == self {
				return rt.t.MergeRaw(values)
			}
			ctx, cancel := context.WithTimeout(ctx, rt.r.cfg.RequestTimeout)
			defer cancel()
			_, err := rt.r.c.Call(ctx, to, &cluster.Request{Endpoint: rt.ep + "merge", Priority: cluster.PrioInteractive, Body: body})
			return err
		},
		func(to cluster.NodeID, err error) {
			if err != nil && !errors.Is(err, ErrClosed) {
				rt.enqueueRetry(to, keys, values)
			}
		})
	if err != nil {
		return fmt.Errorf("table %s: write: %w", rt.t.Name(), err)
	}
	return nil
}

// ---- reads ----

// Get reads the entry under (partition, sort) from a read quorum of
// replicas. When they disagree, the replicas that answered with less get
// the merge before Get returns (blocking read repair, see settle), so
// that a later read never sees less. It returns nil when no replica has
// the entry.
func (rt *Replicated[E]) Get(ctx context.Context, partition, sort []byte) (*E, error) {
	if rt.placement == FullCopy {
		return rt.t.Get(partition, sort)
	}
	hash := Hash(partition)
	nodes, err := rt.readSet(rt.r.c.HistoryView(), cluster.PartitionOf(hash))
	if err != nil {
		return nil, err
	}
	if len(nodes) == 1 && nodes[0] == rt.r.c.ID() {
		return rt.t.Get(partition, sort) // a single-node cluster
	}
	key := storeKey(hash, sort)
	res, err := cluster.CallQuorum(ctx, rt.r.c, nodes, cluster.QuorumOptions{Quorum: rt.readQuorum(len(nodes))},
		func(ctx context.Context, to cluster.NodeID) ([]byte, error) {
			if to == rt.r.c.ID() {
				v, err := rt.t.GetRaw([][]byte{key})
				if err != nil {
					return nil, err
				}
				return v[0], nil
			}
			ctx, cancel := context.WithTimeout(ctx, rt.r.cfg.RequestTimeout)
			defer cancel()
			resp, err := rt.r.c.Call(ctx, to, &cluster.Request{Endpoint: rt.ep + "get", Priority: cluster.PrioInteractive, Body: key})
			if err != nil {
				return nil, err
			}
			return decodeOptional(resp.Body)
		})
	if err != nil {
		return nil, fmt.Errorf("table %s: read: %w", rt.t.Name(), err)
	}
	copies := make([][]byte, len(res))
	for j, r := range res {
		copies[j] = r.Value
	}
	if agree(copies) {
		// the common case, replicas that agree: one decode, nothing more
		if copies[0] == nil {
			return nil, nil
		}
		e, err := rt.t.schema.Decode(copies[0])
		if err != nil {
			return nil, fmt.Errorf("table %s: read from %s: %w", rt.t.Name(), res[0].From.Short(), err)
		}
		return e, nil
	}
	from := make([]cluster.NodeID, len(res))
	for j, r := range res {
		from[j] = r.From
	}
	out, err := rt.settle(ctx, from, [][][]byte{copies})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// readRounds bounds the rounds of read repair of one read (see settle).
const readRounds = 4

// settle returns the entries a read quorum of replicas answered with:
// copies[i][j] is nodes[j]'s encoded copy of entry i, nil when it has
// none. An entry is returned only once every node of the quorum has been
// seen holding it byte for byte. Merging copies read at different moments
// is not enough: a copy read before a write reached its node, merged with
// a copy read after another write whose node had not yet received the
// first, yields a state that no replica ever held and that a later write
// had already replaced (found by the porcupine check of the fault
// workload). Agreement rules that out: a write that completed before a
// write in the agreed state began is on a node of every read quorum, and
// that node was read holding the agreed state after it began.
//
// So when copies differ, the merge goes to every node that answered
// with something else (blocking read repair), each returns what it then
// holds, and the comparison starts again. Common case: one round, nodes
// that lacked a write take it and answer with the merge. Writes that keep
// reaching the quorum between rounds could go on forever: after
// readRounds rounds the merge is returned as it is.
func (rt *Replicated[E]) settle(ctx context.Context, nodes []cluster.NodeID, copies [][][]byte) ([]*E, error) {
	out := make([]*E, len(copies))
	done := make([]bool, len(copies))
	decode := func(v []byte, j int) (*E, error) {
		e, err := rt.t.schema.Decode(v)
		if err != nil {
			return nil, fmt.Errorf("table %s: read from %s: %w", rt.t.Name(), nodes[j].Short(), err)
		}
		return e, nil
	}
	for round := 1; ; round++ {
		var fix [][]int // per node, the entries it answered differently
		var encs [][]byte
		for i, cs := range copies {
			if done[i] {
				continue
			}
			if agree(cs) {
				done[i] = true
				if cs[0] != nil {
					e, err := decode(cs[0], 0)
					if err != nil {
						return nil, err
					}
					out[i] = e
				}
				continue
			}
			var merged *E
			for j, c := range cs {
				if c == nil {
					continue
				}
				e, err := decode(c, j)
				if err != nil {
					return nil, err
				}
				if merged == nil {
					merged = e
				} else {
					rt.t.schema.Merge(merged, e)
				}
			}
			out[i] = merged
			if encs == nil {
				encs = make([][]byte, len(copies))
				fix = make([][]int, len(nodes))
			}
			encs[i] = rt.t.schema.Encode(nil, merged)
			for j, c := range cs {
				if !bytes.Equal(c, encs[i]) {
					fix[j] = append(fix[j], i)
				}
			}
		}
		if encs == nil {
			return out, nil
		}
		if round > readRounds {
			rt.r.log.Debug("replicas kept changing during a read; returning the merge", "table", rt.t.Name(), "rounds", readRounds)
			return out, nil
		}
		if err := rt.repair(ctx, nodes, fix, encs, copies); err != nil {
			return nil, err
		}
	}
}

// agree reports whether copies of an entry are all the same bytes (or
// all absent).
func agree(copies [][]byte) bool {
	for _, c := range copies[1:] {
		if !bytes.Equal(c, copies[0]) || (c == nil) != (copies[0] == nil) {
			return false
		}
	}
	return true
}

// repair sends nodes[j] the merged entries encs[i] for i in fix[j],
// all nodes at once, and waits for all of them: each merges them and
// answers with what it then holds, which replaces copies[i][j].
func (rt *Replicated[E]) repair(ctx context.Context, nodes []cluster.NodeID, fix [][]int, encs [][]byte, copies [][][]byte) error {
	var targets []cluster.NodeID
	index := map[cluster.NodeID]int{}
	for j, f := range fix {
		if len(f) > 0 {
			targets = append(targets, nodes[j])
			index[nodes[j]] = j
		}
	}
	res, err := cluster.CallQuorum(ctx, rt.r.c, targets, cluster.QuorumOptions{SendAll: true},
		func(ctx context.Context, to cluster.NodeID) ([][]byte, error) {
			f := fix[index[to]]
			values := make([][]byte, len(f))
			for k, i := range f {
				values[k] = encs[i]
			}
			if to == rt.r.c.ID() {
				return rt.mergeAndGet(values, nil)
			}
			ctx, cancel := context.WithTimeout(ctx, rt.r.cfg.RequestTimeout)
			defer cancel()
			resp, err := rt.r.c.Call(ctx, to, &cluster.Request{Endpoint: rt.ep + "repair", Priority: cluster.PrioInteractive, Body: encodeValues(values)})
			if err != nil {
				return nil, err
			}
			held, err := decodeOptionals(resp.Body)
			if err == nil && len(held) != len(values) {
				err = fmt.Errorf("%w: %d entries for %d", ErrCorrupt, len(held), len(values))
			}
			return held, err
		})
	if err != nil {
		return fmt.Errorf("table %s: read repair: %w", rt.t.Name(), err)
	}
	for _, r := range res {
		j := index[r.From]
		for k, i := range fix[j] {
			copies[i][j] = r.Value[k]
		}
	}
	return nil
}

// scanPage is one replica's answer to a range request: the entries it
// scanned in order (filters are applied after the merge, so that a
// replica's stale copy is never hidden from the merge), and whether it
// stopped before the end of the range.
type scanPage struct {
	sorts, values [][]byte
	more          bool
}

// scanPageMax is the number of entries one replica returns per range call.
const scanPageMax = 1000

// Scan calls fn with the merged entries of one partition key in the range
// o, in order, until fn returns false or an error: each page comes from a
// read quorum of replicas, merged, with blocking read repair of the
// replicas that answered with less (see settle).
func (rt *Replicated[E]) Scan(ctx context.Context, partition []byte, o ScanOptions, fn func(sort []byte, e *E) (bool, error)) error {
	if rt.placement == FullCopy {
		return rt.t.Scan(partition, o, fn)
	}
	nodes, err := rt.readSet(rt.r.c.HistoryView(), cluster.PartitionOf(Hash(partition)))
	if err != nil {
		return err
	}
	if len(nodes) == 1 && nodes[0] == rt.r.c.ID() {
		return rt.t.Scan(partition, o, fn)
	}
	for {
		req := appendScanRequest(nil, partition, o, scanPageMax)
		res, err := cluster.CallQuorum(ctx, rt.r.c, nodes, cluster.QuorumOptions{Quorum: rt.readQuorum(len(nodes))},
			func(ctx context.Context, to cluster.NodeID) (*scanPage, error) {
				if to == rt.r.c.ID() {
					return rt.localScan(partition, o, scanPageMax)
				}
				ctx, cancel := context.WithTimeout(ctx, rt.r.cfg.RequestTimeout)
				defer cancel()
				resp, err := rt.r.c.Call(ctx, to, &cluster.Request{Endpoint: rt.ep + "scan", Priority: cluster.PrioInteractive, Body: req})
				if err != nil {
					return nil, err
				}
				return decodeScanPage(resp.Body)
			})
		if err != nil {
			return fmt.Errorf("table %s: range read: %w", rt.t.Name(), err)
		}
		// Entries past the first cut of a replica that has more are left
		// for the next page: that replica has not shown what it holds there.
		var cut []byte
		more := false
		for _, r := range res {
			if r.Value.more && len(r.Value.sorts) > 0 {
				last := r.Value.sorts[len(r.Value.sorts)-1]
				if !more || before(last, cut, o.Reverse) {
					cut = last
				}
				more = true
			}
		}
		// the copies of each entry of the page, by node
		from := make([]cluster.NodeID, len(res))
		for j, r := range res {
			from[j] = r.From
		}
		slots := map[string][][]byte{}
		var order []string
		for j, r := range res {
			for i, s := range r.Value.sorts {
				if more && before(cut, s, o.Reverse) {
					break
				}
				cs := slots[string(s)]
				if cs == nil {
					cs = make([][]byte, len(res))
					slots[string(s)] = cs
					order = append(order, string(s))
				}
				cs[j] = r.Value.values[i]
			}
		}
		slices.SortFunc(order, func(a, b string) int {
			if o.Reverse {
				return -bytes.Compare([]byte(a), []byte(b))
			}
			return bytes.Compare([]byte(a), []byte(b))
		})
		copies := make([][][]byte, len(order))
		for i, s := range order {
			copies[i] = slots[s]
		}
		entries, err := rt.settle(ctx, from, copies)
		if err != nil {
			return err
		}
		for i, s := range order {
			if entries[i] == nil {
				continue // collected while the read repaired it
			}
			goOn, err := fn([]byte(s), entries[i])
			if err != nil || !goOn {
				return err
			}
		}
		if !more {
			return nil
		}
		if o.Reverse {
			o.Upper = []byte(string(cut))
		} else {
			o.Lower = append([]byte(string(cut)), 0)
		}
	}
}

// before reports whether sort key a comes before b in the scan order.
func before(a, b []byte, reverse bool) bool {
	if reverse {
		return bytes.Compare(a, b) > 0
	}
	return bytes.Compare(a, b) < 0
}

func (rt *Replicated[E]) localScan(partition []byte, o ScanOptions, max int) (*scanPage, error) {
	page := &scanPage{}
	base := rt.t.key(Hash(partition), nil)
	iopts := scanIterOptions(base, o)
	err := rt.t.iterate(iopts, o.Reverse, func(key, value []byte) (bool, error) {
		if len(page.sorts) == max {
			page.more = true
			return false, nil
		}
		page.sorts = append(page.sorts, bytes.Clone(key[len(base):]))
		page.values = append(page.values, bytes.Clone(value))
		return true, nil
	})
	return page, err
}
