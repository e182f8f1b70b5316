package k2v

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// Key space of the pebble database. The first byte separates three areas;
// everything after it is frozen once written.
const (
	// spaceMeta holds the database format version.
	spaceMeta = 0x00
	// spaceTable holds table entries: 0x01 ‖ table name ‖ 0x00 ‖ hash(32) ‖ sort key.
	// Since the partition is the first byte of the hash, the entries of a
	// partition, and the sort keys of one partition key, are contiguous and
	// ordered.
	spaceTable = 0x01
	// spaceLocal holds node-local state that is never replicated: the last
	// issued K2V timestamp, local index counters, queues.
	spaceLocal = 0x02
)

// dbFormat is the value of the format key; a database written by a future
// incompatible version is refused rather than misread.
const dbFormat = 1

var formatKey = []byte{spaceMeta, 'f', 'o', 'r', 'm', 'a', 't'}

// ErrClosed is returned by operations on a closed DB.
var ErrClosed = errors.New("k2v: database closed")

// DBConfig configures Open. A zero field means its default.
type DBConfig struct {
	// Dir is the directory of the pebble database.
	Dir string
	// FS is the file system; nil means the operating system's. Tests use
	// vfs.NewMem().
	FS FS
	// NoFsync acknowledges writes once they are in the write-ahead log
	// without waiting for fsync: they survive a process crash but not a
	// power loss or kernel crash. The default (false) syncs every commit;
	// concurrent commits share one fsync.
	NoFsync bool
	// CacheBytes is the block cache size; 0 means 128 MiB.
	CacheBytes int64
	// Logger receives pebble's own messages and the warnings of the
	// tables' background work; nil discards them.
	Logger *slog.Logger
	// Now is the clock that dates tombstones for GC; nil means time.Now.
	Now func() time.Time
}

// DB is the node's metadata store: every table of every kind lives in one
// pebble database. A DB serialises the read-modify-write part of updates
// (see Update) and publishes committed changes to watchers.
type DB struct {
	pdb   *pebble.DB
	cache *pebble.Cache
	wopts *pebble.WriteOptions
	log   *slog.Logger
	now   func() time.Time
	feed  feed

	// applyMu serialises Update callbacks and the application of their
	// batches to the memtable, so that a read inside an update sees every
	// earlier update and the order in which updates become visible is the
	// order in which they ran. It is not held while waiting for fsync.
	applyMu sync.Mutex

	// ops is held shared by every operation on pebble, from its start to
	// its end (an Update until its fsync returned), and exclusively by
	// Close: pebble is never closed under an operation, and operations
	// after Close fail with ErrClosed instead of panicking. Lock order:
	// ops, then applyMu.
	ops struct {
		sync.RWMutex
		closed bool
	}
	// closedC is closed by Close, so that background loops waiting for
	// work exit without being woken.
	closedC chan struct{}

	tables struct {
		sync.Mutex
		names map[string]bool
	}
}

// Open opens or creates the database in cfg.Dir.
func Open(cfg DBConfig) (*DB, error) {
	if cfg.Dir == "" {
		return nil, errors.New("k2v: open: empty directory")
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = 128 << 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache := pebble.NewCache(cfg.CacheBytes)
	opts := &pebble.Options{
		FS:                 cfg.FS,
		Cache:              cache,
		Logger:             pebbleLogger{log},
		MemTableSize:       16 << 20, // larger memtables make the read of every insert slower (measured: 64 MiB -17% inserts/s)
		FormatMajorVersion: pebble.FormatNewest,
	}
	for i := range opts.Levels {
		// Inserts read the entry they update, usually to find nothing:
		// bloom filters answer most of those misses without reading blocks.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	pdb, err := pebble.Open(cfg.Dir, opts)
	cache.Unref() // pebble holds its own reference
	if err != nil {
		return nil, fmt.Errorf("k2v: open %s: %w", cfg.Dir, err)
	}
	db := &DB{pdb: pdb, log: log, now: cfg.Now, wopts: pebble.Sync, closedC: make(chan struct{})}
	if db.now == nil {
		db.now = time.Now
	}
	if cfg.NoFsync {
		db.wopts = pebble.NoSync
	}
	db.tables.names = map[string]bool{}
	if err := db.checkFormat(); err != nil {
		pdb.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) checkFormat() error {
	v, closer, err := db.pdb.Get(formatKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return db.pdb.Set(formatKey, []byte{dbFormat}, pebble.Sync)
	case err != nil:
		return fmt.Errorf("k2v: read format: %w", err)
	}
	defer closer.Close()
	if len(v) != 1 || v[0] != dbFormat {
		return fmt.Errorf("k2v: database format %v is not supported by this version (want %d)", v, dbFormat)
	}
	return nil
}

// Close waits for the operations in progress, then closes pebble (every
// acknowledged write is already in its log). Later operations return
// ErrClosed. It is safe to call twice.
func (db *DB) Close() error {
	db.ops.Lock()
	defer db.ops.Unlock()
	if db.ops.closed {
		return nil
	}
	db.ops.closed = true
	close(db.closedC)
	return db.pdb.Close()
}

// enter starts an operation on pebble; leave ends it.
func (db *DB) enter() error {
	db.ops.RLock()
	if db.ops.closed {
		db.ops.RUnlock()
		return ErrClosed
	}
	return nil
}

func (db *DB) leave() { db.ops.RUnlock() }

// Update runs fn with a fresh batch and commits what it wrote as one atomic
// pebble batch. Updates run one at a time, so fn sees the effects of every
// update that returned before it started and no other update interleaves
// with it; fn must therefore be quick and do no network I/O. Update returns
// once the batch is durable (synced, unless NoFsync), then notifies the
// watchers of the changed partition keys. If fn returns an error nothing is
// written.
func (db *DB) Update(fn func(b *Batch) error) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.leave()
	b := &Batch{db: db}
	db.applyMu.Lock()
	b.pb = db.pdb.NewBatch()
	if err := fn(b); err != nil {
		b.abort()
		db.applyMu.Unlock()
		b.pb.Close()
		return err
	}
	if b.pb.Empty() {
		db.applyMu.Unlock()
		b.pb.Close()
		return nil
	}
	var err error
	if db.wopts.Sync {
		// Apply to the memtable in update order while holding the lock,
		// wait for the shared fsync without it: concurrent updates are
		// then group-committed.
		err = db.pdb.ApplyNoSyncWait(b.pb, db.wopts)
		if err != nil {
			b.abort()
		}
		db.applyMu.Unlock()
		if err == nil {
			err = b.pb.SyncWait()
		}
	} else {
		err = db.pdb.Apply(b.pb, db.wopts)
		if err != nil {
			b.abort()
		}
		db.applyMu.Unlock()
	}
	b.pb.Close()
	if err != nil {
		return fmt.Errorf("k2v: commit: %w", err)
	}
	db.feed.publish(b.changes)
	return nil
}

// GetLocal reads a node-local value written with Batch.SetLocal. It returns
// nil when absent. The returned slice belongs to the caller.
func (db *DB) GetLocal(key []byte) ([]byte, error) {
	if err := db.enter(); err != nil {
		return nil, err
	}
	defer db.leave()
	return getCopy(db.pdb, localKey(key))
}

// ScanLocal calls fn with each node-local key in [lower, upper) (upper
// nil: every key from lower on) and its value, in order, until fn returns
// false or an error. Keys and values are valid only during the call; fn
// must not call the DB. Other layers keep their node-local state (queues,
// counters) under a prefix of their own ("blocks/...").
func (db *DB) ScanLocal(lower, upper []byte, fn func(key, value []byte) (bool, error)) error {
	return db.scanLocalRange(lower, upper, fn)
}

// scanLocal calls fn with each node-local key starting with prefix (the
// key without the space byte) and its value, in order. fn must not call
// the DB.
func (db *DB) scanLocal(prefix []byte, fn func(key, value []byte) error) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.leave()
	lower := localKey(prefix)
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key()[1:], v)
		}
		if err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

func localKey(key []byte) []byte {
	k := make([]byte, 0, 1+len(key))
	return append(append(k, spaceLocal), key...)
}

type getter interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

func getCopy(g getter, key []byte) ([]byte, error) {
	v, closer, err := g.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("k2v: get: %w", err)
	}
	out := make([]byte, len(v))
	copy(out, v)
	closer.Close()
	return out, nil
}

// registerTable reserves a table name; names must be unique per DB and must
// not contain a zero byte (it ends the name in keys).
func (db *DB) registerTable(name string) error {
	for i := 0; i < len(name); i++ {
		if name[i] == 0 {
			return fmt.Errorf("k2v: table name %q contains a zero byte", name)
		}
	}
	if name == "" {
		return errors.New("k2v: empty table name")
	}
	db.tables.Lock()
	defer db.tables.Unlock()
	if db.tables.names[name] {
		return fmt.Errorf("k2v: table %q registered twice", name)
	}
	db.tables.names[name] = true
	return nil
}

// Batch collects the writes of one Update. Reads through a batch see its own
// writes. A Batch is valid only inside the Update callback that received it.
//
// Reads go to the database directly, with the batch's own writes kept in
// an overlay: Update holds the apply lock, so nothing else changes the
// database meanwhile, and a plain Get is much cheaper than a read through
// an indexed pebble batch.
type Batch struct {
	db      *DB
	pb      *pebble.Batch
	written map[string]pending
	changes []change
	aborts  []func()
}

// onAbort registers fn to run, still under the apply lock, if the batch is
// not committed: in-memory state kept in step with the batch rolls back.
func (b *Batch) onAbort(fn func()) { b.aborts = append(b.aborts, fn) }

func (b *Batch) abort() {
	for i := len(b.aborts) - 1; i >= 0; i-- {
		b.aborts[i]()
	}
}

type pending struct {
	value   []byte
	deleted bool
}

// get returns a copy of the value under key, nil when absent.
func (b *Batch) get(key []byte) ([]byte, error) {
	if p, ok := b.written[string(key)]; ok {
		if p.deleted {
			return nil, nil
		}
		return bytes.Clone(p.value), nil
	}
	return getCopy(b.db.pdb, key)
}

func (b *Batch) set(key, value []byte) error {
	if b.written == nil {
		b.written = map[string]pending{}
	}
	b.written[string(key)] = pending{value: bytes.Clone(value)}
	return b.pb.Set(key, value, nil)
}

func (b *Batch) del(key []byte) error {
	if b.written == nil {
		b.written = map[string]pending{}
	}
	b.written[string(key)] = pending{deleted: true}
	return b.pb.Delete(key, nil)
}

// GetLocal reads a node-local value, seeing this batch's writes. It returns
// nil when absent.
func (b *Batch) GetLocal(key []byte) ([]byte, error) {
	return b.get(localKey(key))
}

// SetLocal writes a node-local value: state of this node only, never
// replicated, committed atomically with the rest of the batch.
func (b *Batch) SetLocal(key, value []byte) error {
	return b.set(localKey(key), value)
}

// DeleteLocal removes a node-local value.
func (b *Batch) DeleteLocal(key []byte) error {
	return b.del(localKey(key))
}

// pebbleLogger sends pebble's messages to slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "component", "pebble")
	panic(msg) // pebble's contract: Fatalf does not return
}
