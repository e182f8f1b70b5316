package blocks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/k2v"
)

// Config configures a Manager. Zero fields take the defaults noted.
type Config struct {
	Cluster    *cluster.Cluster
	DB         *k2v.DB
	Replicator *k2v.Replicator // the block-reference table replicates through it
	Store      *Store

	// BlockSize is block_size: streams are cut into blocks of this many
	// bytes; 0 means DefaultBlockSize (1 MiB), at most MaxBlockSize.
	BlockSize int
	// CompressionLevel is compression_level, the zstd level: 0 means 1,
	// a negative value stores blocks uncompressed.
	CompressionLevel int
	// RAMBufferMax is block_ram_buffer_max: the bytes of block buffers
	// all streams of this node may hold at once (reads and writes); 0
	// means 256 MiB. A stream waits for room rather than allocating more.
	RAMBufferMax int64
	// GCDelay is how long a block nobody references is kept before it is
	// deleted; 0 means 10 minutes. Storing a block again restarts it.
	GCDelay time.Duration
	// RequestTimeout bounds one block transfer to or from another node;
	// 0 means 60 seconds.
	RequestTimeout time.Duration
	// ResyncRetryMax caps the backoff between retries of a block whose
	// resync failed; 0 means 1 hour.
	ResyncRetryMax time.Duration
	// ScrubInterval is how often a full scrub starts by itself; 0 means
	// 25 days, as Garage. ScrubRate caps its read rate in bytes per
	// second; 0 means 64 MiB/s.
	ScrubInterval time.Duration
	ScrubRate     int64
	// Now is the node's clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Manager stores blocks on the nodes of their partitions and reads them
// back: the write and read paths, the RPC endpoints other nodes call, the
// block-reference table with its local reference counts, and the
// resync, garbage collection and scrub workers (rc.go, resync.go,
// scrub.go).
type Manager struct {
	cfg   Config
	c     *cluster.Cluster
	db    *k2v.DB
	store *Store
	codec *Codec
	log   *slog.Logger
	now   func() time.Time

	// budget holds the bytes of block buffers in use (block_ram_buffer_max).
	budget *semaphore.Weighted
	// ahead is the part of the budget held by blocks that readers fetched
	// ahead of their clients (streamReader.reserve), at most aheadMax.
	ahead    atomic.Int64
	aheadMax int64
	// stripes serialise, per block, storing it and deleting it: a block is
	// never deleted between a put's check of its reference count and the
	// write of its file.
	stripes [256]sync.Mutex

	refs   *k2v.Replicated[Ref]
	resync *resyncer
	scrub  *scrubber

	stats counters

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// counters are the manager's own metrics (Metrics adds the store's).
type counters struct {
	readErrors, writeErrors, corruptions atomic.Int64
	bytesWritten, bytesRead              atomic.Int64 // raw bytes through the API
}

// RPC endpoints of the block layer.
const (
	epPut  = "block/put"  // hash ‖ stored form → stored on this node
	epGet  = "block/get"  // hash → stored form
	epNeed = "block/need" // hash → one status byte (needStatus)
)

// New builds a manager and registers its endpoints and its
// block-reference table; call it before the cluster and the replicator
// start.
func New(cfg Config) (*Manager, error) {
	if cfg.Cluster == nil || cfg.DB == nil || cfg.Replicator == nil || cfg.Store == nil {
		return nil, errors.New("blocks: Cluster, DB, Replicator and Store are required")
	}
	if cfg.BlockSize == 0 {
		cfg.BlockSize = DefaultBlockSize
	}
	if cfg.BlockSize < 4<<10 || cfg.BlockSize > MaxBlockSize {
		return nil, fmt.Errorf("blocks: block_size %d: want 4 KiB to %d MiB", cfg.BlockSize, MaxBlockSize>>20)
	}
	if cfg.CompressionLevel == 0 {
		cfg.CompressionLevel = 1
	}
	if cfg.RAMBufferMax == 0 {
		cfg.RAMBufferMax = 256 << 20
	}
	// Each stream needs room for one block, raw and encoded, to progress.
	cfg.RAMBufferMax = max(cfg.RAMBufferMax, int64(4*cfg.BlockSize))
	if cfg.GCDelay == 0 {
		cfg.GCDelay = 10 * time.Minute
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	if cfg.ResyncRetryMax == 0 {
		cfg.ResyncRetryMax = time.Hour
	}
	if cfg.ScrubInterval == 0 {
		cfg.ScrubInterval = 25 * 24 * time.Hour
	}
	if cfg.ScrubRate == 0 {
		cfg.ScrubRate = 64 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	level := cfg.CompressionLevel
	if level < 0 {
		level = 0
	}
	codec, err := newBlockCodec(level, cfg.BlockSize)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg: cfg, c: cfg.Cluster, db: cfg.DB, store: cfg.Store, codec: codec,
		log: cfg.Logger.With("layer", "blocks"), now: cfg.Now,
		budget:   semaphore.NewWeighted(cfg.RAMBufferMax),
		aheadMax: cfg.RAMBufferMax / 2,
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if err := m.initRefs(); err != nil {
		return nil, err
	}
	m.resync = newResyncer(m)
	m.scrub = newScrubber(m)
	m.c.Handle(epPut, cluster.HandlerFunc(m.servePut))
	m.c.Handle(epGet, cluster.HandlerFunc(m.serveGet))
	m.c.Handle(epNeed, cluster.HandlerFunc(m.serveNeed))
	m.c.OnLayoutChange(m.resync.layoutChanged)
	return m, nil
}

// Start launches the resync, garbage collection and scrub workers, and a
// rebalance of the data directories when their list changed.
func (m *Manager) Start() {
	m.wg.Go(func() { m.resync.run(m.ctx) })
	m.wg.Go(func() { m.scrub.run(m.ctx) })
	if m.store.NeedsRebalance() {
		m.wg.Go(m.rebalance)
	}
}

// rebalance moves blocks to their primary data directory, retrying after
// a failure.
func (m *Manager) rebalance() {
	for delay := time.Second; m.ctx.Err() == nil; delay = min(2*delay, 10*time.Minute) {
		start := time.Now()
		moved, err := m.store.Rebalance(m.ctx)
		if err == nil {
			m.log.Info("data directories rebalanced", "moved", moved, "dur", time.Since(start))
			return
		}
		if m.ctx.Err() != nil {
			return
		}
		m.log.Error("rebalancing the data directories failed; will retry", "moved", moved, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-m.ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// Close stops the workers and waits for them. The store stays open: its
// owner closes it.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

// BlockSize returns the size streams are cut at.
func (m *Manager) BlockSize() int { return m.cfg.BlockSize }

// ---- placement ----

// PartitionOf returns the partition a block lives in. Blocks and their
// references share it (the reference table's partition key is the block
// hash), so the nodes that count a block's references are the nodes that
// store it.
func PartitionOf(h Hash) cluster.Partition { return cluster.PartitionOf(k2v.Hash(h[:])) }

// writeSets returns the nodes of h's partition in every active layout
// version; a block write must reach a quorum of each.
func (m *Manager) writeSets(hist *layout.History, h Hash) [][]cluster.NodeID {
	p := PartitionOf(h)
	var sets [][]cluster.NodeID
	for _, l := range hist.Versions {
		if nodes := l.Replicas(p); len(nodes) > 0 && !slices.ContainsFunc(sets, func(s []cluster.NodeID) bool { return slices.Equal(s, nodes) }) {
			sets = append(sets, nodes)
		}
	}
	return sets
}

// storageNodes returns every node that should hold h in some active
// layout version, this node's own view.
func (m *Manager) storageNodes(h Hash) []cluster.NodeID {
	var out []cluster.NodeID
	for _, s := range m.writeSets(m.c.HistoryView(), h) {
		for _, id := range s {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// isStorageNode reports whether this node should hold h.
func (m *Manager) isStorageNode(h Hash) bool {
	return slices.Contains(m.storageNodes(h), m.c.ID())
}

func (m *Manager) writeQuorum(n int) int {
	if m.cfg.Replicator.Consistency() == k2v.Dangerous {
		return 1
	}
	return (n + 2) / 2 // ⌈(n+1)/2⌉
}

// ---- writing one block ----

// PutBlock stores a block, given in stored form (Codec.Encode of data
// whose Sum is h), on a write quorum of the nodes of its partition in
// every active layout version, and on the others in the background. A
// node that already has the block does not write it again. A stored form
// that does not decode (DecodeHeader) is refused with an error wrapping
// ErrCorrupt.
func (m *Manager) PutBlock(ctx context.Context, h Hash, stored []byte) error {
	if _, _, err := DecodeHeader(stored); err != nil {
		return fmt.Errorf("blocks: refusing to store %s: %w", h, err)
	}
	body := make([]byte, 0, len(h)+len(stored))
	return m.putBlock(ctx, h, append(append(body, h[:]...), stored...), nil)
}

// putBlock is PutBlock with the RPC body built: h ‖ stored form, a stored
// form known to decode (made here by Encode, or checked). The calls still
// running when the quorum is reached go on in the background and read
// body; release, if not nil, is called once none does.
func (m *Manager) putBlock(ctx context.Context, h Hash, body []byte, release func()) error {
	hist, done := m.c.BeginWrite()
	defer done()
	sets := m.writeSets(hist, h)
	if len(sets) == 0 {
		if release != nil {
			release()
		}
		return k2v.ErrNoLayout
	}
	quorums := make([]int, len(sets))
	for i, s := range sets {
		quorums[i] = m.writeQuorum(len(s))
	}
	self := m.c.ID()
	// One reference per call (CallSets calls each node of the union of
	// sets once) and one held until CallSets returns.
	var union []cluster.NodeID
	for _, s := range sets {
		for _, id := range s {
			if !slices.Contains(union, id) {
				union = append(union, id)
			}
		}
	}
	var refs atomic.Int32
	refs.Store(int32(len(union)) + 1)
	unref := func() {
		if refs.Add(-1) == 0 && release != nil {
			release()
		}
	}
	err := cluster.CallSets(ctx, m.c, sets, quorums, nil, cluster.QuorumOptions{BackgroundTimeout: m.cfg.RequestTimeout},
		func(ctx context.Context, to cluster.NodeID) error {
			defer unref()
			if to == self {
				return m.storeSound(h, body[len(h):])
			}
			return m.putRemote(ctx, to, body, cluster.PrioNormal)
		},
		func(to cluster.NodeID, err error) {
			// A replica that missed the write fetches the block through
			// resync once its reference reaches it.
			if err != nil {
				m.log.Debug("block write to a replica failed", "block", h, "node", to, "err", err)
			}
		})
	unref()
	if err != nil {
		m.stats.writeErrors.Add(1)
		return fmt.Errorf("blocks: write %s: %w", h, err)
	}
	return nil
}

// storeLocal checks a stored form that came from elsewhere (another
// node) with DecodeHeader and stores it on this node (storeSound).
func (m *Manager) storeLocal(h Hash, stored []byte) error {
	if _, _, err := DecodeHeader(stored); err != nil {
		return fmt.Errorf("blocks: refusing to store %s: %w", h, err)
	}
	return m.storeSound(h, stored)
}

// storeSound stores a block whose stored form is known to decode on this
// node: it (re)starts the block's grace period when nothing references
// it, and writes the file unless it is already there, both under the
// block's stripe lock so that garbage collection cannot delete the block
// in between. The stored form is checked once per node that receives it,
// not at every layer: a CRC pass over a block costs about a tenth of a
// millisecond per MiB, and the write path made three of them.
//
// The grace period's record (notePut, a synced batch) commits while the
// block's temporary file is written and synced, and the file is renamed
// into place only once the record committed: no block file exists
// without a record that will collect it, and a put waits for the slower
// of the two syncs rather than for both in turn (with 1 MiB blocks on
// the development VM, each took 5-10 ms under load).
func (m *Manager) storeSound(h Hash, stored []byte) error {
	mu := m.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	noted := make(chan error, 1)
	go func() { noted <- m.notePut(h) }()
	var noteErr error
	waited := false
	waitNote := func() error {
		if !waited {
			noteErr, waited = <-noted, true
		}
		return noteErr
	}
	_, err := m.store.putSound(h, stored, waitNote)
	if nerr := waitNote(); err == nil {
		err = nerr
	}
	if err != nil {
		return err
	}
	return nil
}

// putRemote sends body (hash ‖ stored form) to node id's block/put.
func (m *Manager) putRemote(ctx context.Context, id cluster.NodeID, body []byte, prio cluster.Priority) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	_, err := m.c.Call(ctx, id, &cluster.Request{Endpoint: epPut, Priority: prio, Body: body})
	return err
}

func (m *Manager) stripe(h Hash) *sync.Mutex { return &m.stripes[h[31]] }

func (m *Manager) servePut(ctx context.Context, from cluster.NodeID, req *cluster.Incoming) (*cluster.Response, error) {
	if len(req.Body) < len(Hash{}) {
		return nil, errors.New("blocks: put: short body")
	}
	var h Hash
	copy(h[:], req.Body)
	if err := m.storeLocal(h, req.Body[len(h):]); err != nil {
		return nil, err // a full disk names its directory
	}
	return &cluster.Response{}, nil
}

// ---- reading one block ----

// GetBlock returns the raw bytes of block h, appended to dst: from this
// node when it has a sound copy, else from the other nodes that should
// hold it, closest first. Every copy is checked against h; a corrupt local
// copy is quarantined and fetched again in the background.
func (m *Manager) GetBlock(ctx context.Context, dst []byte, h Hash) ([]byte, error) {
	raw, err := m.getLocal(dst, h)
	if err == nil {
		return raw, nil
	}
	return m.getElsewhere(ctx, dst, h, err)
}

// getBlockIn is GetBlock for a caller that gives a buffer of its own,
// whose raw bytes need not start it: a local copy is read into buf
// (getLocalIn) and an uncompressed one is then used where it lies, not
// copied. buf's capacity must hold a stored block and the raw bytes after
// it (bufSize).
func (m *Manager) getBlockIn(ctx context.Context, buf []byte, h Hash) ([]byte, error) {
	raw, err := m.getLocalIn(buf[:0], h)
	if err == nil {
		return raw, nil
	}
	return m.getElsewhere(ctx, buf[:0], h, err)
}

// getElsewhere is GetBlock once the local copy failed with localErr.
func (m *Manager) getElsewhere(ctx context.Context, dst []byte, h Hash, localErr error) ([]byte, error) {
	err := localErr
	var errs []error
	if !errors.Is(err, ErrNotFound) {
		errs = append(errs, fmt.Errorf("local copy: %w", err))
	}
	nodes := m.storageNodes(h)
	for _, id := range m.c.Preferred(nodes) {
		if id == m.c.ID() {
			continue
		}
		raw, err := m.getRemote(ctx, dst, id, h)
		if err == nil {
			return raw, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, &cluster.NodeError{Node: id, Err: err})
	}
	m.stats.readErrors.Add(1)
	if len(errs) == 0 {
		return nil, fmt.Errorf("blocks: read %s: %w (no node holds it)", h, ErrNotFound)
	}
	return nil, fmt.Errorf("blocks: read %s: %w", h, errors.Join(errs...))
}

// CheckLocal reads this node's copy of h and checks it against h: nil
// when sound, an error wrapping ErrNotFound when absent, one wrapping
// ErrCorrupt when corrupt (the copy is then quarantined and fetched
// again from another node).
func (m *Manager) CheckLocal(h Hash) error {
	_, err := m.getLocal(nil, h)
	return err
}

// Store returns the node's local block store.
func (m *Manager) Store() *Store { return m.store }

// getLocal reads and checks this node's copy of h. The stored form is
// read into a pooled buffer, not a new one per read: a fresh 1 MiB buffer
// costs its zeroing, and its garbage a collection every few hundred
// blocks read (measured: about 0.3 s of CPU per GiB read).
func (m *Manager) getLocal(dst []byte, h Hash) ([]byte, error) {
	sb := getBuf(HeaderLen + m.cfg.BlockSize + directAlign)
	defer putBuf(sb)
	stored, err := m.store.GetInto((*sb)[:0], h)
	if err != nil {
		return nil, err
	}
	raw, err := m.decode(dst, h, stored)
	if err != nil {
		m.corrupt(h, err)
		return nil, err
	}
	return raw, nil
}

// getLocalIn reads this node's copy of h into buf's spare capacity and
// checks it. It returns the raw bytes within buf: the payload itself when
// the block is stored uncompressed, which saves copying it (about 0.1 s
// of CPU per GiB read), else decompressed after the stored form.
func (m *Manager) getLocalIn(buf []byte, h Hash) ([]byte, error) {
	stored, err := m.store.GetInto(buf, h)
	if err != nil {
		return nil, err
	}
	hd, raw, err := DecodeHeader(stored)
	if err == nil && hd.Compression != None {
		raw, err = m.codec.Decode(stored[len(stored):len(stored)], stored)
	}
	if err == nil {
		err = Verify(h, raw)
	}
	if err != nil {
		m.corrupt(h, err)
		return nil, err
	}
	return raw, nil
}

// decode turns a stored form into raw bytes and checks them against h.
func (m *Manager) decode(dst []byte, h Hash, stored []byte) ([]byte, error) {
	raw, err := m.codec.Decode(dst, stored)
	if err != nil {
		return nil, err
	}
	if err := Verify(h, raw[len(dst):]); err != nil {
		return nil, err
	}
	return raw, nil
}

// corrupt quarantines this node's bad copy of h and queues its resync,
// which fetches a sound copy from another node.
func (m *Manager) corrupt(h Hash, cause error) {
	m.stats.corruptions.Add(1)
	m.log.Error("corrupt block quarantined; a sound copy will be fetched", "block", h, "err", cause)
	mu := m.stripe(h)
	mu.Lock()
	err := m.store.Quarantine(h)
	mu.Unlock()
	if err != nil {
		m.log.Error("quarantining a corrupt block failed", "block", h, "err", err)
	}
	m.resync.enqueueNow(h)
}

func (m *Manager) getRemote(ctx context.Context, dst []byte, id cluster.NodeID, h Hash) ([]byte, error) {
	_, raw, err := m.fetchRemote(ctx, dst, id, h, cluster.PrioInteractive)
	return raw, err
}

// fetchRemote gets node id's copy of h and checks it: its stored form,
// and its raw bytes appended to dst.
func (m *Manager) fetchRemote(ctx context.Context, dst []byte, id cluster.NodeID, h Hash, prio cluster.Priority) (stored, raw []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	resp, err := m.c.Call(ctx, id, &cluster.Request{Endpoint: epGet, Priority: prio, Body: h[:]})
	if err != nil {
		return nil, nil, err
	}
	raw, err = m.decode(dst, h, resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp.Body, raw, nil
}

// serveGet sends this node's copy of a block as stored. The caller checks
// it; the header's checksum is checked here, so that a node notices its
// own corrupt copies when they are read.
func (m *Manager) serveGet(ctx context.Context, from cluster.NodeID, req *cluster.Incoming) (*cluster.Response, error) {
	h, err := hashBody(req.Body)
	if err != nil {
		return nil, err
	}
	stored, err := m.store.Get(h)
	if err != nil {
		return nil, err
	}
	if _, _, err := DecodeHeader(stored); err != nil {
		m.corrupt(h, err)
		return nil, err
	}
	return &cluster.Response{Body: stored}, nil
}

func hashBody(b []byte) (Hash, error) {
	var h Hash
	if len(b) != len(h) {
		return h, fmt.Errorf("blocks: expected a %d-byte block hash, got %d bytes", len(h), len(b))
	}
	copy(h[:], b)
	return h, nil
}

// needStatus is a node's answer to block/need.
type needStatus byte

const (
	statusHave   needStatus = 1 // the node has the block
	statusNeed   needStatus = 2 // the node should have it and lacks it
	statusNoNeed needStatus = 3 // the node lacks it and has no use for it
)

func (m *Manager) serveNeed(ctx context.Context, from cluster.NodeID, req *cluster.Incoming) (*cluster.Response, error) {
	h, err := hashBody(req.Body)
	if err != nil {
		return nil, err
	}
	st, err := m.needStatus(h)
	if err != nil {
		return nil, err
	}
	return &cluster.Response{Body: []byte{byte(st)}}, nil
}

// needStatus says whether this node has h, or should have it: it is a
// storage node of h's partition and h is referenced here.
func (m *Manager) needStatus(h Hash) (needStatus, error) {
	has, err := m.store.Has(h)
	if err != nil {
		return 0, err
	}
	if has {
		return statusHave, nil
	}
	if !m.isStorageNode(h) {
		return statusNoNeed, nil
	}
	rc, err := m.refCount(h)
	if err != nil {
		return 0, err
	}
	if rc.count > 0 {
		return statusNeed, nil
	}
	return statusNoNeed, nil
}

// askNeed asks node id for its needStatus of h.
func (m *Manager) askNeed(ctx context.Context, id cluster.NodeID, h Hash) (needStatus, error) {
	if id == m.c.ID() {
		return m.needStatus(h)
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
	defer cancel()
	resp, err := m.c.Call(ctx, id, &cluster.Request{Endpoint: epNeed, Priority: cluster.PrioBackground, Body: h[:]})
	if err != nil {
		return 0, err
	}
	if len(resp.Body) != 1 || resp.Body[0] < byte(statusHave) || resp.Body[0] > byte(statusNoNeed) {
		return 0, fmt.Errorf("blocks: need: bad answer %x", resp.Body)
	}
	return needStatus(resp.Body[0]), nil
}

// ---- buffers ----

// acquire reserves n bytes of the RAM budget.
func (m *Manager) acquire(ctx context.Context, n int) error {
	return m.budget.Acquire(ctx, int64(n))
}

func (m *Manager) release(n int) { m.budget.Release(int64(n)) }

// reserveAhead takes n bytes of the budget for a block fetched ahead of a
// reader, if the budget has them now and blocks fetched ahead would still
// hold at most aheadMax; it reports whether it did.
func (m *Manager) reserveAhead(n int) bool {
	if m.ahead.Add(int64(n)) > m.aheadMax {
		m.ahead.Add(-int64(n))
		return false
	}
	if !m.budget.TryAcquire(int64(n)) {
		m.ahead.Add(-int64(n))
		return false
	}
	return true
}

// bufSize is the room one block in flight needs: the raw bytes, then the
// hash and the stored form (never longer than the raw bytes and a header),
// which bodyOffset may move by up to directAlign bytes.
func (m *Manager) bufSize() int {
	bs := m.cfg.BlockSize
	return 2*bs + len(Hash{}) + HeaderLen + zstdSlack(bs) + decodeSlack + directAlign
}

// bodyOffset returns where the body of a block put (hash ‖ stored form)
// goes in buf, after the n raw bytes at its start: the first offset from
// which the stored form starts on a directAlign boundary in memory, so
// that the store writes it with direct I/O as it is rather than through
// an aligned copy (Store.writeData).
func bodyOffset(buf []byte, n int) int {
	p := addr(buf) + uintptr(n+len(Hash{}))
	return n + int(-p&(directAlign-1))
}

var bufPools sync.Map // capacity → *sync.Pool of *[]byte

func getBuf(n int) *[]byte {
	p, _ := bufPools.LoadOrStore(n, &sync.Pool{New: func() any { b := make([]byte, 0, n); return &b }})
	b := p.(*sync.Pool).Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

func putBuf(b *[]byte) {
	if p, ok := bufPools.Load(cap(*b)); ok {
		p.(*sync.Pool).Put(b)
	}
}

// inFlight is how many blocks of one stream are hashed, compressed and
// sent at once.
func inFlight() int { return max(4, 2*runtime.GOMAXPROCS(0)) }
