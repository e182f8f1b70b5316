package blocks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrNotFound is returned by Get when no data directory holds the
	// block.
	ErrNotFound = errors.New("blocks: block not found")
	// ErrNoSpace is wrapped by the errors of writes that failed because a
	// data directory's file system is full or its quota exceeded.
	ErrNoSpace = errors.New("blocks: no space left")
)

// Names in a data directory. A block lives in <dir>/<hh>/<hh>/<64 hex
// digits>, the two levels being its first two bytes, as in Garage: 65536
// leaf directories keep each one small whatever the number of blocks.
// Anything else in a leaf directory is not a block: files being written
// (tempMarker), quarantined blocks (quarantineSuffix), strangers.
const (
	tempMarker        = ".tmp-"
	quarantineSuffix  = ".corrupted"
	defaultLayoutFile = "data-layout.json"
	dirPerm           = 0o700
)

// Dir is a data directory.
type Dir struct {
	Path string
	// Capacity is the space in bytes the store may use there; it sets
	// the directory's share of the blocks. It may be 0 only when there
	// is a single directory.
	Capacity int64
	// ReadOnly marks a directory being retired: its blocks are read, and
	// moved away by Rebalance; no new block is written there. Deleting
	// or quarantining a block still removes its copy there.
	ReadOnly bool
}

// StoreConfig configures OpenStore.
type StoreConfig struct {
	// Dirs are the data directories, at least one of them writable.
	// Their order does not matter for placement, but the first writable
	// one holds the data layout file unless LayoutFile is set.
	Dirs []Dir
	// Fsync syncs every block file and its directory before Put returns
	// (Garage's data_fsync). Without it a power loss may lose blocks
	// that Put acknowledged; the caller turns it on by default.
	Fsync bool
	// DirectIO, with Fsync, makes blocks of directMin bytes or more
	// bypass the page cache where the file system allows it (direct.go,
	// data_direct_io): faster writes for half the CPU, but a block read
	// soon after its write comes from the disk, not from memory.
	DirectIO bool
	// LayoutFile is where the table of block placement across Dirs is
	// kept (layout.go); empty means data-layout.json in the first
	// writable directory. A node points it into its metadata directory,
	// which does not change when data directories come and go.
	LayoutFile string
	// Logger receives the store's lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// Store is a node's local content-addressed block store: one file per
// block, holding the block's stored form (codec.go) exactly as given to
// Put, spread over one or more data directories by capacity. It knows
// nothing of the cluster: which blocks a node should hold, and whether
// they are referenced, are decided above it. It does not hash: callers
// verify content (Verify) where it matters.
//
// A Store is safe for concurrent use. Writes of one hash (Put, Delete,
// Quarantine, a Rebalance move) are serialised by a lock striped by hash;
// reads take no lock and see a block either absent or whole, since files
// appear by rename.
type Store struct {
	dirs       []*dataDir // in configuration order; layout indices refer to it
	fsync      bool
	directIO   bool
	log        *slog.Logger
	layoutFile string
	layout     atomic.Pointer[dataLayout]

	// locks are held by writers of a hash, indexed by its last byte.
	locks [256]sync.Mutex

	// rebalanceMu lets one Rebalance run at a time.
	rebalanceMu sync.Mutex

	// writeFault, when set, runs before a block file is written, with
	// the path of its temporary file; an error it returns is taken as
	// the write's (InjectWriteError).
	writeFault atomic.Pointer[func(path string) error]
}

// InjectWriteError makes every later block write fail with what fn
// returns for the path of its temporary file (nil: the write proceeds);
// fn == nil removes the fault. It is a fault injection for tests (a full
// disk is syscall.ENOSPC), not for production use.
func (s *Store) InjectWriteError(fn func(path string) error) {
	if fn == nil {
		s.writeFault.Store(nil)
		return
	}
	s.writeFault.Store(&fn)
}

// dataDir is a data directory and what the store knows of it.
type dataDir struct {
	Dir // Path made absolute

	blocks, bytes atomic.Int64 // block files and their bytes
	raw           atomic.Int64 // their bytes before compression (headers' raw lengths)

	// made has a bit per <hh>/<hh> leaf directory known to exist, with
	// its entry durable in its parent when the store syncs: after the
	// first block of a leaf, Put costs no mkdir.
	made [1 << 16 / 64]atomic.Uint64
	// mkdirMu[b] is held while the directories of the blocks whose hash
	// starts with byte b (<hh> and its <hh>/<hh>) are created. One lock
	// per <hh> rather than one per data directory: creating a directory
	// takes a sync or two, and a fresh store creates one for almost every
	// block of its first few hundred thousand, which a single lock made
	// write one block at a time (measured by bench/blocks.go).
	mkdirMu [256]sync.Mutex
	// noDirect is set once the directory's file system refused direct
	// I/O (writeData).
	noDirect atomic.Bool
}

// OpenStore opens the data directories, creating the writable ones,
// removes the temporary files a crash left behind, counts the blocks
// (a walk of every directory), and loads the data layout, updating it when
// the directories or their capacities changed. Read-only directories must
// exist.
func OpenStore(cfg StoreConfig) (*Store, error) {
	dirs, err := checkDirs(cfg.Dirs)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{fsync: cfg.Fsync, directIO: cfg.DirectIO && cfg.Fsync, log: log, layoutFile: cfg.LayoutFile}
	for _, d := range dirs {
		if d.ReadOnly {
			st, err := os.Stat(d.Path)
			if err == nil && !st.IsDir() {
				err = errors.New("not a directory")
			}
			if err != nil {
				return nil, fmt.Errorf("blocks: read-only data directory %s: %w", d.Path, err)
			}
		} else if err := os.MkdirAll(d.Path, dirPerm); err != nil {
			return nil, fmt.Errorf("blocks: data directory: %w", err)
		}
		s.dirs = append(s.dirs, &dataDir{Dir: d})
		if s.layoutFile == "" && !d.ReadOnly {
			s.layoutFile = filepath.Join(d.Path, defaultLayoutFile)
		}
	}

	start := time.Now()
	var temps int
	// The raw size of the blocks found is estimated from the headers of a
	// sample, not read from every file: opening each of millions of
	// block files on a cold disk would delay a node's start by minutes
	// or hours, for a statistic. The walk reaches blocks in hash order,
	// so the first ones of each directory are a fair sample.
	sample := make([]struct{ n, bytes, raw int64 }, len(s.dirs))
	err = s.scan(context.Background(), func(i int, h Hash, size int64) error {
		s.dirs[i].blocks.Add(1)
		s.dirs[i].bytes.Add(size)
		if sm := &sample[i]; sm.n < rawSample {
			sm.n++
			sm.bytes += size
			sm.raw += rawLenOf(s.blockName(i, h, ""))
		}
		return nil
	}, func(i int, path, name string) error {
		if !strings.Contains(name, tempMarker) || s.dirs[i].ReadOnly {
			return nil
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blocks: remove temporary file: %w", err)
		}
		temps++
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, sm := range sample {
		d := s.dirs[i]
		if sm.n == d.blocks.Load() {
			d.raw.Store(sm.raw) // every block read: exact
		} else if sm.bytes > 0 {
			d.raw.Store(int64(float64(d.bytes.Load()) * float64(sm.raw) / float64(sm.bytes)))
		}
	}
	if temps > 0 {
		log.Info("removed temporary block files left by a crash", "count", temps)
	}
	if cfg.Fsync {
		for _, d := range s.dirs {
			if d.ReadOnly {
				continue
			}
			if err := syncDirEntries(d.Path); err != nil {
				return nil, fmt.Errorf("blocks: sync data directory: %w", err)
			}
		}
	}
	if err := s.openLayout(); err != nil {
		return nil, err
	}
	st := s.Stats()
	log.Info("block store open", "dirs", len(s.dirs), "blocks", st.Blocks, "bytes", st.Bytes, "dur", time.Since(start))
	return s, nil
}

// checkDirs validates the directory list and makes paths absolute, so
// that the layout file names directories the same way whatever the
// working directory.
func checkDirs(in []Dir) ([]Dir, error) {
	if len(in) == 0 {
		return nil, errors.New("blocks: no data directory")
	}
	if len(in) > 1<<16 {
		return nil, fmt.Errorf("blocks: %d data directories", len(in))
	}
	out := make([]Dir, len(in))
	writable := false
	for i, d := range in {
		if d.Path == "" {
			return nil, fmt.Errorf("blocks: data directory %d: empty path", i)
		}
		abs, err := filepath.Abs(d.Path)
		if err != nil {
			return nil, fmt.Errorf("blocks: data directory %s: %w", d.Path, err)
		}
		d.Path = abs
		switch {
		case d.Capacity < 0:
			return nil, fmt.Errorf("blocks: data directory %s: negative capacity %d", d.Path, d.Capacity)
		case d.Capacity == 0 && !d.ReadOnly && len(in) > 1:
			return nil, fmt.Errorf("blocks: data directory %s: a capacity is needed when there are several directories", d.Path)
		case slices.ContainsFunc(out[:i], func(o Dir) bool { return o.Path == d.Path }):
			return nil, fmt.Errorf("blocks: data directory %s listed twice", d.Path)
		}
		writable = writable || !d.ReadOnly
		out[i] = d
	}
	if !writable {
		return nil, errors.New("blocks: every data directory is read-only")
	}
	return out, nil
}

// openLayout loads the layout file and replaces it when the directories
// changed.
func (s *Store) openLayout() error {
	matches, _ := filepath.Glob(s.layoutFile + tempMarker + "*")
	for _, m := range matches {
		os.Remove(m) // a crash in saveLayout; a leftover is harmless
	}
	prev, err := loadLayout(s.layoutFile)
	if err != nil {
		return err
	}
	dirs := make([]layoutDir, len(s.dirs))
	for i, d := range s.dirs {
		dirs[i] = layoutDir{Path: d.Path, Capacity: d.Capacity, ReadOnly: d.ReadOnly}
	}
	if prev != nil && slices.Equal(prev.Dirs, dirs) {
		s.layout.Store(prev)
		return nil
	}
	l, moved := newLayout(prev, dirs, func(i int) bool { return s.dirs[i].blocks.Load() > 0 })
	if err := saveLayout(s.layoutFile, l); err != nil {
		return err
	}
	if prev == nil {
		s.log.Info("new data layout", "file", s.layoutFile, "dirs", len(dirs))
	} else {
		s.log.Info("data directories changed: new data layout, run a rebalance to move blocks",
			"file", s.layoutFile, "dirs", len(dirs), "moved_partitions", moved, "partitions", placementPartitions)
	}
	s.layout.Store(l)
	return nil
}

// blockName returns a path in directory i: <dir>/<hh>/<hh>/<hash><suffix>.
func (s *Store) blockName(i int, h Hash, suffix string) string {
	x := h.String()
	sep := string(filepath.Separator)
	return s.dirs[i].Path + sep + x[0:2] + sep + x[2:4] + sep + x + suffix
}

// candidates calls fn with the directories that may hold h, most likely
// first: its primary, its secondaries, then every other one. It stops when
// fn returns false.
func (s *Store) candidates(h Hash, fn func(i int) bool) {
	l := s.layout.Load()
	p := placementOf(h)
	prim, sec := int(l.Primary[p]), l.Secondary[p]
	if !fn(prim) {
		return
	}
	for _, i := range sec {
		if !fn(int(i)) {
			return
		}
	}
	for i := range s.dirs {
		if i != prim && !slices.Contains(sec, uint16(i)) && !fn(i) {
			return
		}
	}
}

// Has reports whether some data directory holds h. An error is returned
// only when h was not found and some directory could not be checked.
func (s *Store) Has(h Hash) (bool, error) {
	found := false
	var firstErr error
	s.candidates(h, func(i int) bool {
		_, err := os.Lstat(s.blockName(i, h, ""))
		switch {
		case err == nil:
			found = true
			return false
		case !errors.Is(err, fs.ErrNotExist) && firstErr == nil:
			firstErr = err
		}
		return true
	})
	if found || firstErr == nil {
		return found, nil
	}
	return false, fmt.Errorf("blocks: has %s: %w", h, firstErr)
}

// Get returns the stored form of h, read from the first directory that
// holds it, in a new buffer. It returns an error wrapping ErrNotFound when
// no directory holds h. It does not check the bytes: Codec.Decode and
// Verify do.
func (s *Store) Get(h Hash) ([]byte, error) { return s.GetInto(nil, h) }

// GetInto is Get appending to dst, so that callers can reuse a buffer. On
// error dst is returned unchanged. A copy that cannot be read (an I/O
// error) is skipped if another directory holds one. With DirectIO, a block
// of directMin bytes or more is read with direct I/O, bypassing the page
// cache, when dst's spare capacity starts on a directAlign boundary in
// memory and holds the file rounded up to directAlign (directRoom).
func (s *Store) GetInto(dst []byte, h Hash) ([]byte, error) {
	out, found := dst, false
	var firstErr error
	s.candidates(h, func(i int) bool {
		b, err := readBlockFile(dst, s.blockName(i, h, ""), s.direct(s.dirs[i]))
		switch {
		case err == nil:
			out, found = b, true
			return false
		case !errors.Is(err, fs.ErrNotExist) && firstErr == nil:
			firstErr = err
		}
		return true
	})
	switch {
	case found:
		return out, nil
	case firstErr != nil:
		return dst, fmt.Errorf("blocks: get %s: %w", h, firstErr)
	default:
		return dst, fmt.Errorf("%w: %s", ErrNotFound, h)
	}
}

// readBlockFile appends the content of a block file to dst. A file larger
// than any stored block is ErrCorrupt, and is not read. With direct, a
// file of directMin bytes or more is read with direct I/O when dst has the
// room (directRoom).
func readBlockFile(dst []byte, path string, direct bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return dst, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return dst, err
	}
	size := st.Size()
	if !st.Mode().IsRegular() {
		return dst, fmt.Errorf("%s: not a regular file", path)
	}
	if size > HeaderLen+MaxBlockSize {
		return dst, fmt.Errorf("%w: %s: %d bytes, more than any block", ErrCorrupt, path, size)
	}
	n := len(dst)
	var out []byte
	if direct && size >= directMin && directRoom(dst, int(size)) && setDirect(f, true) == nil {
		out = dst[:n+int(size)]
		err = readDirect(f, dst[n:n+alignUp(int(size))], int(size))
	} else {
		out = grow(dst, int(size))[:n+int(size)]
		_, err = io.ReadFull(f, out[n:])
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: %s: shorter than its size", ErrCorrupt, path)
		}
		return dst, err
	}
	return out, nil
}

func (s *Store) lock(h Hash) *sync.Mutex { return &s.locks[h[31]] }

// Put stores a block: stored is its stored form, h the hash of its raw
// content, which Put does not check. It returns false, writing nothing,
// when some directory already holds h: blocks are deduplicated. Otherwise
// it writes the block in its primary directory atomically (temporary file,
// sync, rename, sync of the directory; syncs only with Fsync): a crash
// leaves the block whole or absent, never partial. stored is checked with
// DecodeHeader first, so that no garbage is stored; the store keeps no
// reference to it.
//
// A full disk or exceeded quota returns an error wrapping ErrNoSpace that
// names the directory, and leaves no temporary file behind.
func (s *Store) Put(h Hash, stored []byte) (written bool, err error) {
	if _, _, err := DecodeHeader(stored); err != nil {
		return false, fmt.Errorf("blocks: put %s: %w", h, err)
	}
	return s.putSound(h, stored, nil)
}

// putSound is Put of a stored form that the caller checked. When it
// writes the block, it calls beforeRename, if not nil, once the block's
// temporary file is written and synced, and renames the file into place
// only if beforeRename returned nil; it does not call it when the block
// is there already.
func (s *Store) putSound(h Hash, stored []byte, beforeRename func() error) (written bool, err error) {
	mu := s.lock(h)
	mu.Lock()
	defer mu.Unlock()
	if has, err := s.Has(h); err != nil || has {
		return false, err
	}
	i := int(s.layout.Load().Primary[placementOf(h)])
	if err := s.writeBlock(i, h, stored, beforeRename); err != nil {
		return false, fmt.Errorf("blocks: put %s: %w", h, err)
	}
	return true, nil
}

// writeBlock writes a block file in directory i and counts it. The
// caller holds h's lock; stored decodes (DecodeHeader). beforeRename is
// as for putSound.
func (s *Store) writeBlock(i int, h Hash, stored []byte, beforeRename func() error) (err error) {
	d := s.dirs[i]
	defer func() {
		if err != nil && isNoSpace(err) {
			err = fmt.Errorf("%w in data directory %s: %w", ErrNoSpace, d.Path, err)
		}
	}()
	leaf, err := s.leafDir(i, h)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(leaf, h.String()+tempMarker+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if fault := s.writeFault.Load(); fault != nil {
		err = (*fault)(tmp)
	}
	if err == nil {
		err = s.writeData(d, f, stored)
	}
	if err == nil && s.fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && beforeRename != nil {
		err = beforeRename()
	}
	if err == nil {
		err = os.Rename(tmp, s.blockName(i, h, ""))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d.blocks.Add(1)
	d.bytes.Add(int64(len(stored)))
	d.raw.Add(int64(binary.BigEndian.Uint32(stored[8:12]))) // the header's raw length
	if s.fsync {
		// The block is in place even if this fails; the error says
		// that it may not survive a power loss.
		return syncDir(leaf)
	}
	return nil
}

// leafDir returns the <hh>/<hh> directory of h in directory i, creating it
// if needed. With Fsync, a directory created here has its entry synced in
// its parent before any block is renamed into it. Creation runs under
// mkdirMu[h[0]], which covers both directories of h, so a Put that finds a
// directory existing (EEXIST) knows that its entry is durable: it was made
// by this process under the lock and synced, or existed at OpenStore,
// which synced every directory entry.
func (s *Store) leafDir(i int, h Hash) (string, error) {
	d := s.dirs[i]
	x := h.String()
	sep := string(filepath.Separator)
	mid, leaf := d.Path+sep+x[0:2], d.Path+sep+x[0:2]+sep+x[2:4]
	n := int(h[0])<<8 | int(h[1])
	word, bit := &d.made[n/64], uint64(1)<<(n%64)
	if word.Load()&bit != 0 {
		return leaf, nil
	}
	mu := &d.mkdirMu[h[0]]
	mu.Lock()
	defer mu.Unlock()
	for _, dir := range []string{mid, leaf} {
		err := os.Mkdir(dir, dirPerm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if s.fsync {
			if err := syncDir(filepath.Dir(dir)); err != nil {
				return "", err
			}
		}
	}
	word.Or(bit)
	return leaf, nil
}

// syncDirEntries syncs a data directory and its first level of
// subdirectories, so that every leaf directory that exists is durable
// (see leafDir), whatever a crashed process left unsynced.
func syncDirEntries(root string) error {
	if err := syncDir(root); err != nil {
		return err
	}
	subdirs, err := hexSubdirs(root)
	if err != nil {
		return err
	}
	for a, ok := range subdirs {
		if ok {
			if err := syncDir(filepath.Join(root, hexByte(a))); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes every copy of h, in every directory, read-only ones
// included: a copy left anywhere would make the block exist again. A
// block that is absent is not an error. Removals are not synced: a
// deleted block that comes back after a power loss is garbage again, for
// the collector to find.
func (s *Store) Delete(h Hash) error {
	return s.dropAll(h, "delete", os.Remove)
}

// Quarantine sets aside every copy of h, renaming it to <hash>.corrupted
// in its directory, where an operator can inspect it and which no read,
// Walk or Stats sees. A later Put of h stores it anew. It is for blocks
// found corrupt (ErrCorrupt), so that they are fetched again from another
// node instead of being served. An absent block is not an error.
func (s *Store) Quarantine(h Hash) error {
	return s.dropAll(h, "quarantine", s.quarantineFile)
}

// quarantineFile renames a block file aside.
func (s *Store) quarantineFile(path string) error {
	if err := os.Rename(path, path+quarantineSuffix); err != nil {
		return err
	}
	s.log.Warn("block quarantined", "path", path+quarantineSuffix)
	return nil
}

// dropAll applies drop (which removes or renames a path) to h's file in
// every directory, under h's lock.
func (s *Store) dropAll(h Hash, what string, drop func(path string) error) error {
	mu := s.lock(h)
	mu.Lock()
	defer mu.Unlock()
	var errs []error
	for i := range s.dirs {
		if err := s.dropLocked(i, h, drop); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("blocks: %s %s: %w", what, h, err)
	}
	return nil
}

// removeLocked removes h's file in directory i, if any, and uncounts it.
func (s *Store) removeLocked(i int, h Hash) error { return s.dropLocked(i, h, os.Remove) }

// dropLocked applies drop to h's file in directory i, if any, and
// uncounts it. The caller holds h's lock.
func (s *Store) dropLocked(i int, h Hash, drop func(path string) error) error {
	path := s.blockName(i, h, "")
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	raw := rawLenOf(path)
	if err := drop(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	s.dirs[i].blocks.Add(-1)
	s.dirs[i].bytes.Add(-st.Size())
	s.dirs[i].raw.Add(-raw)
	return nil
}

// rawLenOf reads the raw length recorded in a block file's header; 0
// when the file or its header cannot be read (a corrupt block counts as
// empty until it is replaced).
// rawSample is how many block headers per data directory OpenStore reads
// to estimate the raw size of the blocks it finds.
const rawSample = 1024

func rawLenOf(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var head [HeaderLen]byte
	if _, err := io.ReadFull(f, head[:]); err != nil || [4]byte(head[:4]) != blockMagic {
		return 0
	}
	return int64(binary.BigEndian.Uint32(head[8:12]))
}

// Walk calls fn for every block file of every directory with the block's
// hash and the file's size, in the order of hashes, and for a block held
// by several directories (an interrupted rebalance) once per copy, in
// the order of the directories. Temporary and quarantined files, and
// anything whose name is not a block's, are skipped. Walk stops at the
// first error of fn, or when ctx ends, and returns it. Blocks written or
// removed during the walk may or may not be seen.
func (s *Store) Walk(ctx context.Context, fn func(h Hash, size int64) error) error {
	return s.scan(ctx, func(_ int, h Hash, size int64) error { return fn(h, size) }, nil)
}

// scan walks every directory as Walk does, calling onBlock with the index
// of the directory, and onOther (if not nil) for each other file in a leaf
// directory.
func (s *Store) scan(ctx context.Context, onBlock func(i int, h Hash, size int64) error, onOther func(i int, path, name string) error) error {
	sep := string(filepath.Separator)
	top := make([][256]bool, len(s.dirs))
	for i, d := range s.dirs {
		var err error
		if top[i], err = hexSubdirs(d.Path); err != nil {
			return fmt.Errorf("blocks: walk: %w", err)
		}
	}
	mid := make([][256]bool, len(s.dirs))
	type entry struct {
		name string
		dir  int
		de   fs.DirEntry
	}
	var entries []entry
	for a := range 256 {
		if err := ctx.Err(); err != nil {
			return err
		}
		for i, d := range s.dirs {
			mid[i] = [256]bool{}
			if top[i][a] {
				var err error
				if mid[i], err = hexSubdirs(d.Path + sep + hexByte(a)); err != nil {
					return fmt.Errorf("blocks: walk: %w", err)
				}
			}
		}
		for b := range 256 {
			prefix := hexByte(a) + hexByte(b)
			entries = entries[:0]
			for i, d := range s.dirs {
				if !mid[i][b] {
					continue
				}
				leaf := d.Path + sep + hexByte(a) + sep + hexByte(b)
				des, err := os.ReadDir(leaf)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					return fmt.Errorf("blocks: walk: %w", err)
				}
				for _, de := range des {
					name := de.Name()
					if isBlockName(name) && strings.HasPrefix(name, prefix) && de.Type().IsRegular() {
						entries = append(entries, entry{name, i, de})
					} else if onOther != nil {
						if err := onOther(i, leaf+sep+name, name); err != nil {
							return err
						}
					}
				}
			}
			slices.SortFunc(entries, func(x, y entry) int {
				if c := strings.Compare(x.name, y.name); c != 0 {
					return c
				}
				return x.dir - y.dir
			})
			for _, e := range entries {
				if err := ctx.Err(); err != nil {
					return err
				}
				info, err := e.de.Info()
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed since the listing
				}
				if err != nil {
					return fmt.Errorf("blocks: walk: %w", err)
				}
				h, _ := ParseHash(e.name)
				if err := onBlock(e.dir, h, info.Size()); err != nil {
					return err
				}
			}
		}
	}
	return ctx.Err()
}

// hexSubdirs returns which of the 256 subdirectories named by two
// lowercase hex digits exist in dir; a missing dir has none.
func hexSubdirs(dir string) ([256]bool, error) {
	var out [256]bool
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	for _, de := range des {
		if n := de.Name(); len(n) == 2 && isLowerHex(n) && de.IsDir() {
			out[unhex(n[0])<<4|unhex(n[1])] = true
		}
	}
	return out, nil
}

func hexByte(b int) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// isBlockName reports whether name is a block's file name: its hash in
// lowercase hex, nothing more.
func isBlockName(name string) bool { return len(name) == 2*len(Hash{}) && isLowerHex(name) }

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func unhex(c byte) int {
	if c <= '9' {
		return int(c - '0')
	}
	return int(c-'a') + 10
}

// NeedsRebalance reports whether some blocks may sit outside their
// primary directory: the directories changed since the last Rebalance,
// or a read-only directory is configured.
func (s *Store) NeedsRebalance() bool {
	if s.layout.Load().hasSecondaries() {
		return true
	}
	for _, d := range s.dirs {
		if d.ReadOnly {
			return true
		}
	}
	return false
}

// Rebalance moves every block that is not in its primary directory there
// (blocks of partitions that moved when the directories changed, and
// every block of read-only directories): copy to a temporary file in the
// target, sync (with Fsync), rename, then remove the source, so that the
// block is readable at every moment and a crash leaves at most a second
// copy, which the next Rebalance removes. A source that is not a valid
// stored block is quarantined instead. Once every block is in place the
// data layout drops its secondary directories. It returns how many blocks
// it moved; it stops at the first error, or when ctx ends. Concurrent
// reads and writes proceed; one Rebalance runs at a time.
func (s *Store) Rebalance(ctx context.Context) (moved int, err error) {
	s.rebalanceMu.Lock()
	defer s.rebalanceMu.Unlock()
	l := s.layout.Load()
	var buf []byte
	err = s.scan(ctx, func(i int, h Hash, size int64) error {
		to := int(l.Primary[placementOf(h)])
		if i == to {
			return nil
		}
		ok, err := s.move(i, to, h, &buf)
		if err != nil {
			return fmt.Errorf("blocks: rebalance: move %s from %s: %w", h, s.dirs[i].Path, err)
		}
		if ok {
			moved++
		}
		return nil
	}, nil)
	if err != nil {
		return moved, err
	}
	if l.hasSecondaries() {
		nl := l.withoutSecondaries()
		if err := saveLayout(s.layoutFile, nl); err != nil {
			return moved, err
		}
		s.layout.Store(nl)
	}
	s.log.Info("rebalance done", "moved", moved)
	return moved, nil
}

// move moves h from directory from to directory to. It returns false when
// there was nothing to copy: the block was deleted meanwhile, was already
// in to (then the extra copy is removed), or was corrupt (then it is
// quarantined).
func (s *Store) move(from, to int, h Hash, buf *[]byte) (bool, error) {
	mu := s.lock(h)
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Lstat(s.blockName(to, h, "")); err == nil {
		return false, s.removeLocked(from, h)
	}
	b, err := readBlockFile((*buf)[:0], s.blockName(from, h, ""), false)
	*buf = b
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case errors.Is(err, ErrCorrupt):
	case err != nil:
		return false, err
	default:
		_, _, err = DecodeHeader(b)
	}
	if err != nil {
		s.log.Warn("corrupt block found by rebalance", "hash", h, "dir", s.dirs[from].Path, "err", err)
		return false, s.dropLocked(from, h, s.quarantineFile)
	}
	if err := s.writeBlock(to, h, b, nil); err != nil {
		return false, err
	}
	return true, s.removeLocked(from, h)
}

// StoreStats describes a Store. Counts are of block files: a block held by
// two directories (an interrupted rebalance) counts twice.
type StoreStats struct {
	Blocks int64 // block files
	Bytes  int64 // their total size, headers included
	// RawBytes is their content before compression. For blocks found
	// when the store opened, it is estimated from the headers of the
	// first 1,024 blocks of each directory (exact in smaller stores);
	// blocks written and removed since count exactly.
	RawBytes int64
	Dirs     []DirStats
}

// DirStats describes a data directory.
type DirStats struct {
	Path     string
	Capacity int64
	ReadOnly bool
	Blocks   int64
	// Used is the size of the block files in the directory.
	Used int64
	// Available is the free space of its file system for unprivileged
	// writers, or -1 when unknown.
	Available int64
}

// Stats returns the store's counts, kept up to date by every write since
// the walk of OpenStore, and the free space of each directory, read from
// the file system (a statfs call per directory).
func (s *Store) Stats() StoreStats {
	st := StoreStats{Dirs: make([]DirStats, len(s.dirs))}
	for i, d := range s.dirs {
		ds := DirStats{
			Path:      d.Path,
			Capacity:  d.Capacity,
			ReadOnly:  d.ReadOnly,
			Blocks:    d.blocks.Load(),
			Used:      d.bytes.Load(),
			Available: availableBytes(d.Path),
		}
		st.Dirs[i] = ds
		st.Blocks += ds.Blocks
		st.Bytes += ds.Used
		st.RawBytes += max(0, d.raw.Load()) // an estimate less than what was removed
	}
	return st
}
