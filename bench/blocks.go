package bench

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grangeio/grange/blocks"
	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/cmd/grange/node"
	"github.com/grangeio/grange/k2v"
)

// BlocksConfig configures RunBlocks. A zero field means its default.
type BlocksConfig struct {
	// Nodes is the number of in-process nodes, each in its own zone, and
	// the replication factor; default 1.
	Nodes int
	// ObjectBytes is the size of each stream (object); default 16 MiB.
	ObjectBytes int64
	// Streams is the number of streams written, and then read, at once;
	// default 4. Object k goes through node k mod Nodes.
	Streams int
	// Data is "random" (incompressible, default) or "text" (Go source
	// from GOROOT/src). Every block differs from every other whatever the
	// kind: deduplication never makes a write free.
	Data string
	// TotalBytes is how much the write phase writes, rounded up to whole
	// objects; default 1 GiB, unless Duration is set.
	TotalBytes int64
	// Duration, when set and TotalBytes is not, makes the write phase
	// start objects for this long instead.
	Duration time.Duration
	// BlockSize is block_size; 0 means the node's default (1 MiB).
	BlockSize int
	// CompressionLevel is compression_level; 0 means 1, negative none.
	CompressionLevel int
	// RAMBufferMax is block_ram_buffer_max; 0 means the node's default.
	RAMBufferMax int64
	// Dir holds the nodes' directories (node1, node2…); "" means a
	// temporary directory removed at the end. A given Dir must not hold
	// nodes already: the nodes' directories are removed at the end too.
	Dir string
	// NoFsync turns data_fsync and metadata_fsync off; by default both
	// are on, as in production.
	NoFsync bool
	// DirectIO turns data_direct_io on.
	DirectIO bool
	// NoVerify skips the benchmark's own check of what it reads: the
	// SHA-256 of each object read, compared with that of the bytes
	// written. That hashing runs during the read phase on the same CPUs
	// as the nodes (the written side is hashed between the phases, by
	// generating the same bytes again). The nodes still check every
	// block they read against its hash.
	NoVerify bool
	// Logger receives the nodes' logs; nil discards them.
	Logger *slog.Logger
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

func (c *BlocksConfig) defaults() error {
	if c.Nodes <= 0 {
		c.Nodes = 1
	}
	if c.ObjectBytes <= 0 {
		c.ObjectBytes = 16 << 20
	}
	if c.Streams <= 0 {
		c.Streams = 4
	}
	if c.Data == "" {
		c.Data = "random"
	}
	if c.Data != "random" && c.Data != "text" {
		return fmt.Errorf("bench: data %q: want random or text", c.Data)
	}
	if c.TotalBytes <= 0 && c.Duration <= 0 {
		c.TotalBytes = 1 << 30
	}
	if c.BlockSize <= 0 {
		c.BlockSize = blocks.DefaultBlockSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return nil
}

// BlocksResult holds the figures of one RunBlocks.
type BlocksResult struct {
	Config BlocksConfig // with its defaults filled in
	// Write and Read are the two phases. Read reads every object Write
	// wrote, through the node that wrote it.
	Write, Read BlocksPhase
	// Blocks is the number of blocks written; StoredBytes the size of
	// their files on all nodes, headers included (compressed size ×
	// replication factor).
	Blocks      int
	StoredBytes int64
}

// BlocksPhase is the measurement of one phase.
type BlocksPhase struct {
	Objects int
	Bytes   int64
	Elapsed time.Duration
	// P50 and P99 are per object: one whole WriteStream with its
	// references, or one read to the end.
	P50, P99 time.Duration
	// CPU is the CPU time (user and system) the process used during the
	// phase: every node's and the benchmark's own. Less sensitive than
	// throughput to other work on a shared machine.
	CPU time.Duration
}

// MiBPerSec is the phase's throughput.
func (p BlocksPhase) MiBPerSec() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Bytes) / (1 << 20) / p.Elapsed.Seconds()
}

// CPUPerGiB is the CPU time the phase took per GiB, in seconds; 0 when
// unknown.
func (p BlocksPhase) CPUPerGiB() float64 {
	if p.Bytes == 0 {
		return 0
	}
	return p.CPU.Seconds() / (float64(p.Bytes) / (1 << 30))
}

// StoredRatio is the stored size of a copy over the raw size.
func (r *BlocksResult) StoredRatio() float64 {
	if r.Write.Bytes == 0 {
		return 0
	}
	return float64(r.StoredBytes) / float64(r.Config.Nodes) / float64(r.Write.Bytes)
}

// writtenObject is an object of the write phase.
type writtenObject struct {
	id     uint64
	size   int64
	blocks []blocks.BlockInfo
	sum    [sha256.Size]byte // of the bytes written; zero with NoVerify
}

// RunBlocks starts cfg.Nodes nodes in this process (RPC over TCP on
// 127.0.0.1, replication factor cfg.Nodes), writes objects through their
// block managers with cfg.Streams streams at once, adding a reference per
// block as an upper layer does, then reads every object back and checks
// its size and (unless NoVerify) its SHA-256 against that of the bytes
// written. The nodes and their directories are removed at the end.
//
// Everything runs in one process and on the same CPUs: the nodes, the
// RPC between them, the generation of the data and its hashing.
func RunBlocks(ctx context.Context, cfg BlocksConfig) (*BlocksResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	gen, err := newBlockData(cfg.Data, cfg.BlockSize)
	if err != nil {
		return nil, err
	}
	bc, err := startBlockNodes(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer bc.close()
	res := &BlocksResult{Config: cfg}

	objs, err := writeObjects(ctx, cfg, bc.nodes, gen, &res.Write)
	if err != nil {
		return res, fmt.Errorf("write: %w", err)
	}
	if !cfg.NoVerify {
		hashObjects(gen, objs)
	}
	for _, o := range objs {
		res.Blocks += len(o.blocks)
	}
	for _, n := range bc.nodes {
		res.StoredBytes += n.Blocks().Store().Stats().Bytes
	}
	if err := readObjects(ctx, cfg, bc.nodes, objs, &res.Read); err != nil {
		return res, fmt.Errorf("read: %w", err)
	}
	return res, nil
}

// writeObjects runs the write phase.
func writeObjects(ctx context.Context, cfg BlocksConfig, nodes []*node.Node, gen *blockData, ph *BlocksPhase) ([]*writtenObject, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	count := uint64(0) // objects to write; 0: until the deadline
	if cfg.TotalBytes > 0 {
		count = uint64((cfg.TotalBytes + cfg.ObjectBytes - 1) / cfg.ObjectBytes)
	}
	var (
		next    atomic.Uint64
		mu      sync.Mutex
		objs    []*writtenObject
		lat     []time.Duration
		wg      sync.WaitGroup
		written atomic.Int64
	)
	start, cpu0 := time.Now(), cpuTime()
	deadline := start.Add(cfg.Duration)
	for range cfg.Streams {
		wg.Go(func() {
			for ctx.Err() == nil {
				id := next.Add(1) - 1
				if count > 0 && id >= count || count == 0 && time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				o, err := writeObject(ctx, nodes[id%uint64(len(nodes))], gen, id, cfg.ObjectBytes)
				if err != nil {
					cancel(fmt.Errorf("object %d: %w", id, err))
					return
				}
				d := time.Since(t0)
				mu.Lock()
				objs, lat = append(objs, o), append(lat, d)
				mu.Unlock()
				if n := written.Add(o.size); n/(1<<30) != (n-o.size)/(1<<30) {
					cfg.Logf("written %d GiB", n>>30)
				}
			}
		})
	}
	wg.Wait()
	ph.Elapsed, ph.CPU = time.Since(start), cpuTime()-cpu0
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	ph.Objects, ph.Bytes = len(objs), written.Load()
	ph.P50, ph.P99 = percentiles(lat)
	slices.SortFunc(objs, func(a, b *writtenObject) int { return cmp.Compare(a.id, b.id) })
	return objs, nil
}

// writeObject writes object id of size bytes through n as one stream,
// recording a reference to each block in the block-reference table as
// the block is stored, as S3 would with its version.
func writeObject(ctx context.Context, n *node.Node, gen *blockData, id uint64, size int64) (*writtenObject, error) {
	m := n.Blocks()
	o := &writtenObject{id: id, size: size}
	owner := []byte("bench/object/" + strconv.FormatUint(id, 10))
	src := &objectReader{d: gen, obj: id, size: size}
	got, err := m.WriteStream(ctx, src, func(i int, b blocks.BlockInfo) error {
		o.blocks = append(o.blocks, b)
		return n.Replicator().Update(ctx, func(batch *k2v.Batch) error { return m.AddRef(batch, b.Hash, owner) })
	})
	if err != nil {
		return nil, err
	}
	if got != size {
		return nil, fmt.Errorf("WriteStream read %d bytes of %d", got, size)
	}
	return o, nil
}

// hashObjects sets the SHA-256 of each object's bytes, generated again:
// the generator is deterministic, and hashing between the phases keeps
// the benchmark's own hashing out of the write's figures.
func hashObjects(gen *blockData, objs []*writtenObject) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			buf := make([]byte, 1<<20)
			for {
				i := next.Add(1) - 1
				if i >= int64(len(objs)) {
					return
				}
				o := objs[i]
				h := sha256.New()
				io.CopyBuffer(h, &objectReader{d: gen, obj: o.id, size: o.size}, buf)
				h.Sum(o.sum[:0])
			}
		})
	}
	wg.Wait()
}

// readObjects runs the read phase.
func readObjects(ctx context.Context, cfg BlocksConfig, nodes []*node.Node, objs []*writtenObject, ph *BlocksPhase) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next atomic.Int64
		mu   sync.Mutex
		lat  []time.Duration
		wg   sync.WaitGroup
		read atomic.Int64
	)
	start, cpu0 := time.Now(), cpuTime()
	for range cfg.Streams {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(objs)) {
					return
				}
				o := objs[i]
				t0 := time.Now()
				if err := readObject(ctx, nodes[o.id%uint64(len(nodes))], o, !cfg.NoVerify); err != nil {
					cancel(fmt.Errorf("object %d: %w", o.id, err))
					return
				}
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
				read.Add(o.size)
			}
		})
	}
	wg.Wait()
	ph.Elapsed, ph.CPU = time.Since(start), cpuTime()-cpu0
	if err := context.Cause(ctx); err != nil {
		return err
	}
	ph.Objects, ph.Bytes = len(lat), read.Load()
	ph.P50, ph.P99 = percentiles(lat)
	return nil
}

// readObject reads o through n to its end and checks its size and SHA-256.
// It reads with io.Copy, which the block reader serves from its fetched
// blocks (io.WriterTo), as an HTTP handler sending an object would.
func readObject(ctx context.Context, n *node.Node, o *writtenObject, verify bool) error {
	r, err := n.Blocks().NewReader(ctx, o.blocks, 0, -1)
	if err != nil {
		return err
	}
	defer r.Close()
	var w io.Writer = io.Discard
	var h hash.Hash
	if verify {
		h = sha256.New()
		w = h
	}
	total, err := io.Copy(w, r)
	if err != nil {
		return err
	}
	if total != o.size {
		return fmt.Errorf("read %d bytes, wrote %d", total, o.size)
	}
	if h != nil {
		var sum [sha256.Size]byte
		if h.Sum(sum[:0]); sum != o.sum {
			return fmt.Errorf("read bytes with SHA-256 %x, wrote %x", sum, o.sum)
		}
	}
	return nil
}

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	return pct(lat, 0.50), pct(lat, 0.99)
}

// ---- data ----

// blockData makes the content of the benchmark's objects without holding
// them: chunk c (the bytes [c×chunk, (c+1)×chunk) of an object, a block
// when chunk is the block size) is a stamp naming the object and the
// chunk, then a window of a pool of random bytes or text starting at an
// offset that depends on both. Every block is thus distinct (no two
// share a hash, deduplication saves nothing) and compresses as its pool
// does, and making one costs a copy.
type blockData struct {
	pool  []byte
	chunk int
}

// stampFormat is the stamp that starts every chunk: object, chunk.
const stampFormat = "\n// grange bench %016x %016x\n"

func newBlockData(kind string, chunk int) (*blockData, error) {
	size := max(4<<20, 2*chunk)
	var pool []byte
	switch kind {
	case "random":
		var seed [32]byte
		rand.Read(seed[:])
		pool = make([]byte, size)
		mrand.NewChaCha8(seed).Read(pool)
	case "text":
		var err error
		if pool, err = goSource(max(16<<20, size)); err != nil {
			return nil, err
		}
	}
	return &blockData{pool: pool, chunk: chunk}, nil
}

// fill writes the bytes of object obj from offset off into p.
func (d *blockData) fill(p []byte, obj uint64, off int64) {
	for len(p) > 0 {
		c, j := uint64(off/int64(d.chunk)), int(off%int64(d.chunk))
		k := min(len(p), d.chunk-j)
		// the window: a pseudo-random start from (obj, c), so that
		// neighbouring chunks and objects take different slices
		span := uint64(len(d.pool) - d.chunk)
		start := int((obj*0x9e3779b97f4a7c15 ^ c*0xbf58476d1ce4e5b9) % span)
		copy(p[:k], d.pool[start+j:])
		var buf [64]byte
		if stamp := fmt.Appendf(buf[:0], stampFormat, obj, c); j < len(stamp) {
			copy(p[:k], stamp[j:])
		}
		p, off = p[k:], off+int64(k)
	}
}

// objectReader is the content of one object as a stream.
type objectReader struct {
	d         *blockData
	obj       uint64
	off, size int64
}

func (r *objectReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.size-r.off)]
	r.d.fill(p, r.obj, r.off)
	r.off += int64(len(p))
	return len(p), nil
}

// goSource returns n bytes of Go source files from GOROOT/src.
func goSource(n int) ([]byte, error) {
	root := goroot()
	if root == "" {
		return nil, errors.New("bench: text data: GOROOT not found (install Go or use random data)")
	}
	var buf bytes.Buffer
	buf.Grow(n + 1<<20) // not twice n: the benchmark's memory is counted too
	err := filepath.WalkDir(filepath.Join(root, "src"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || buf.Len() >= n {
			return fs.SkipAll
		}
		if d.Type().IsRegular() && strings.HasSuffix(path, ".go") {
			if b, err := os.ReadFile(path); err == nil {
				buf.Write(b)
			}
		}
		return nil
	})
	if err != nil || buf.Len() < n {
		return nil, fmt.Errorf("bench: text data: %d bytes of Go source under %s, want %d", buf.Len(), root, n)
	}
	return buf.Bytes()[:n:n], nil
}

func goroot() string {
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if s := strings.TrimSpace(string(out)); s != "" {
			return s
		}
	}
	return runtime.GOROOT()
}

// ---- nodes ----

// blockNodes are the in-process nodes of a RunBlocks.
type blockNodes struct {
	nodes   []*node.Node
	dirs    []string
	tempDir string
}

// startBlockNodes starts cfg.Nodes nodes with RPC on 127.0.0.1 and a
// random secret, joins them, gives each a zone and applies the layout,
// and waits until every node has it synced and sees the others up.
func startBlockNodes(ctx context.Context, cfg BlocksConfig) (_ *blockNodes, err error) {
	bn := &blockNodes{}
	defer func() {
		if err != nil {
			bn.close()
		}
	}()
	base := cfg.Dir
	if base == "" {
		if base, err = os.MkdirTemp("", "grange-bench-blocks-"); err != nil {
			return bn, err
		}
		bn.tempDir = base
	}
	var secret [32]byte
	rand.Read(secret[:])
	var first string
	for i := range cfg.Nodes {
		dir := filepath.Join(base, fmt.Sprintf("node%d", i+1))
		if _, err := os.Stat(dir); err == nil {
			return bn, fmt.Errorf("bench: %s exists already", dir)
		}
		bn.dirs = append(bn.dirs, dir)
		ncfg := node.Config{
			MetadataDir:       dir,
			DataDir:           filepath.Join(dir, "data"),
			NoDataFsync:       cfg.NoFsync,
			DataDirectIO:      cfg.DirectIO,
			NoMetadataFsync:   cfg.NoFsync,
			ReplicationFactor: cfg.Nodes,
			RPCSecret:         secret,
			RPCBindAddr:       "127.0.0.1:0",
			Blocks: blocks.Config{
				BlockSize:        cfg.BlockSize,
				CompressionLevel: cfg.CompressionLevel,
				RAMBufferMax:     cfg.RAMBufferMax,
			},
			Logger: cfg.Logger.With("node", i+1),
		}
		if i > 0 {
			ncfg.BootstrapPeers = []string{first}
		}
		n, err := node.New(ncfg)
		if err != nil {
			return bn, err
		}
		if err := n.Start(); err != nil {
			n.Close(context.Background())
			return bn, err
		}
		bn.nodes = append(bn.nodes, n)
		if i == 0 {
			first = n.ID().String() + "@" + n.Cluster().ListenAddr()
		}
	}
	_, err = bn.nodes[0].Cluster().UpdateLayout(func(h *layout.History) error {
		now := uint64(time.Now().UnixMilli())
		for i, n := range bn.nodes {
			if err := h.StageRole(n.ID(), &layout.Role{Zone: fmt.Sprintf("z%d", i+1), CapacityBytes: 1 << 40}, now); err != nil {
				return err
			}
		}
		_, err := h.Apply(h.Current().Version+1, now)
		return err
	})
	if err != nil {
		return bn, err
	}
	err = waitUntil(ctx, time.Minute, func() error {
		for i, n := range bn.nodes {
			h := n.Cluster().History()
			if h.Current().Version != 1 || h.MinSync() != 1 {
				return fmt.Errorf("node %d: layout version %d, synced %d", i+1, h.Current().Version, h.MinSync())
			}
			for j, o := range bn.nodes {
				if j != i && !n.Cluster().IsUp(o.ID()) {
					return fmt.Errorf("node %d does not see node %d up", i+1, j+1)
				}
			}
		}
		return nil
	})
	if err != nil {
		return bn, fmt.Errorf("bench: nodes not ready: %w", err)
	}
	return bn, nil
}

// close stops the nodes and removes their directories.
func (bn *blockNodes) close() {
	for _, n := range bn.nodes {
		n.Close(context.Background())
	}
	bn.nodes = nil
	for _, d := range bn.dirs {
		os.RemoveAll(d)
	}
	if bn.tempDir != "" {
		os.RemoveAll(bn.tempDir)
	}
}

// waitUntil polls cond every 20 ms until it returns nil, for at most d.
func waitUntil(ctx context.Context, d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// PeakRSS returns the peak resident set size of this process (VmHWM in
// /proc/self/status), in bytes; Linux only.
func PeakRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("bench: no VmHWM in /proc/self/status")
}
