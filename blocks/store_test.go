package blocks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// testBlock is a block in raw and stored form.
type testBlock struct {
	hash   Hash
	raw    []byte
	stored []byte
}

var testCodec = func() *Codec {
	c, err := NewCodec(1)
	if err != nil {
		panic(err)
	}
	return c
}()

// makeBlock returns a small block, compressible when i is even.
func makeBlock(i int) testBlock {
	raw := randomBytes(uint64(i), 200+i%50)
	if i%2 == 0 {
		raw = textBytes(uint64(i), 300+i%50)
	}
	return testBlock{hash: Sum(raw), raw: raw, stored: testCodec.Encode(nil, raw)}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openStore(t *testing.T, cfg StoreConfig) *Store {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := OpenStore(cfg)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

func oneDir(t *testing.T) StoreConfig {
	return StoreConfig{Dirs: []Dir{{Path: t.TempDir()}}, Fsync: true}
}

func mustPut(t *testing.T, s *Store, b testBlock) {
	t.Helper()
	written, err := s.Put(b.hash, b.stored)
	if err != nil || !written {
		t.Fatalf("Put(%s) = %v, %v; want true, nil", b.hash.Short(), written, err)
	}
}

// mustGet checks that h reads back as b, through the codec and Verify.
func mustGet(t *testing.T, s *Store, b testBlock) {
	t.Helper()
	stored, err := s.Get(b.hash)
	if err != nil {
		t.Fatalf("Get(%s): %v", b.hash.Short(), err)
	}
	raw, err := testCodec.Decode(nil, stored)
	if err != nil {
		t.Fatalf("Decode of %s: %v", b.hash.Short(), err)
	}
	if err := Verify(b.hash, raw); err != nil {
		t.Fatal(err)
	}
}

// filesIn returns the paths of the regular files under root, relative to
// it, sorted.
func filesIn(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func walkAll(t *testing.T, s *Store) []Hash {
	t.Helper()
	var hs []Hash
	if err := s.Walk(t.Context(), func(h Hash, size int64) error {
		hs = append(hs, h)
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return hs
}

func TestStoreRoundTrip(t *testing.T) {
	cfg := oneDir(t)
	s := openStore(t, cfg)
	for i := range 4 {
		b := makeBlock(i)
		mustPut(t, s, b)
		if has, err := s.Has(b.hash); !has || err != nil {
			t.Fatalf("Has after Put = %v, %v", has, err)
		}
		mustGet(t, s, b)
		got, err := s.GetInto([]byte("prefix"), b.hash)
		if err != nil || !bytes.Equal(got, append([]byte("prefix"), b.stored...)) {
			t.Fatalf("GetInto did not append the stored form: %v", err)
		}
		x := b.hash.String()
		path := filepath.Join(cfg.Dirs[0].Path, x[0:2], x[2:4], x)
		onDisk, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(onDisk, b.stored) {
			t.Fatalf("file %s does not hold the stored form: %v", path, err)
		}
	}
	h, _, _ := DecodeHeader(makeBlock(0).stored)
	h1, _, _ := DecodeHeader(makeBlock(1).stored)
	if h.Compression != Zstd || h1.Compression != None {
		t.Fatalf("test blocks do not cover both compressions: %v, %v", h.Compression, h1.Compression)
	}
}

func TestStoreNotFound(t *testing.T) {
	s := openStore(t, oneDir(t))
	b := makeBlock(1)
	if _, err := s.Get(b.hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of an absent block = %v, want ErrNotFound", err)
	}
	dst := []byte("keep")
	if got, err := s.GetInto(dst, b.hash); !errors.Is(err, ErrNotFound) || string(got) != "keep" {
		t.Fatalf("GetInto of an absent block = %q, %v", got, err)
	}
	if has, err := s.Has(b.hash); has || err != nil {
		t.Fatalf("Has of an absent block = %v, %v", has, err)
	}
	if err := s.Delete(b.hash); err != nil {
		t.Fatalf("Delete of an absent block: %v", err)
	}
	if err := s.Quarantine(b.hash); err != nil {
		t.Fatalf("Quarantine of an absent block: %v", err)
	}
}

func TestStoreDedup(t *testing.T) {
	cfg := oneDir(t)
	s := openStore(t, cfg)
	b := makeBlock(2)
	mustPut(t, s, b)
	x := b.hash.String()
	path := filepath.Join(cfg.Dirs[0].Path, x[0:2], x[2:4], x)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Same hash, other bytes (a different compression level would do
	// this): the first copy stays.
	other := newCodec(t, 0).Encode(nil, b.raw)
	written, err := s.Put(b.hash, other)
	if written || err != nil {
		t.Fatalf("second Put = %v, %v; want false, nil", written, err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) || after.Size() != int64(len(b.stored)) {
		t.Fatalf("second Put rewrote the file")
	}
	if st := s.Stats(); st.Blocks != 1 || st.Bytes != int64(len(b.stored)) {
		t.Fatalf("Stats after a duplicate Put: %d blocks, %d bytes", st.Blocks, st.Bytes)
	}
}

func TestStorePutRejectsGarbage(t *testing.T) {
	cfg := oneDir(t)
	s := openStore(t, cfg)
	b := makeBlock(3)
	bad := bytes.Clone(b.stored)
	bad[len(bad)-1] ^= 1
	for _, stored := range [][]byte{nil, []byte("not a block"), bad} {
		if written, err := s.Put(b.hash, stored); written || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Put of garbage = %v, %v; want ErrCorrupt", written, err)
		}
	}
	if files := filesIn(t, cfg.Dirs[0].Path); slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, b.hash.String()) }) {
		t.Fatalf("garbage written: %v", files)
	}
}

func TestCodecCatchesCorruptFile(t *testing.T) {
	cfg := oneDir(t)
	s := openStore(t, cfg)
	for i := range 2 {
		b := makeBlock(i)
		mustPut(t, s, b)
		x := b.hash.String()
		path := filepath.Join(cfg.Dirs[0].Path, x[0:2], x[2:4], x)
		for _, off := range []int{5, HeaderLen + 3} { // header, payload
			onDisk, _ := os.ReadFile(path)
			onDisk[off] ^= 0x10
			if err := os.WriteFile(path, onDisk, 0o600); err != nil {
				t.Fatal(err)
			}
			stored, err := s.Get(b.hash)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := testCodec.Decode(nil, stored); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode of a block with byte %d flipped = %v, want ErrCorrupt", off, err)
			}
			onDisk[off] ^= 0x10
			os.WriteFile(path, onDisk, 0o600)
		}
	}
}

func TestStoreCleansTempFilesAtOpen(t *testing.T) {
	cfg := oneDir(t)
	s := openStore(t, cfg)
	b := makeBlock(4)
	mustPut(t, s, b)
	x := b.hash.String()
	leaf := filepath.Join(cfg.Dirs[0].Path, x[0:2], x[2:4])
	leftovers := []string{
		filepath.Join(leaf, x+tempMarker+"123"),
		filepath.Join(cfg.Dirs[0].Path, "00", "01", strings.Repeat("0", 64)+tempMarker+"9"),
		filepath.Join(cfg.Dirs[0].Path, defaultLayoutFile+tempMarker+"77"),
	}
	for _, p := range leftovers {
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte("half a block"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := walkAll(t, s); !slices.Equal(got, []Hash{b.hash}) {
		t.Fatalf("Walk sees temporary files: %v", got)
	}
	s = openStore(t, cfg)
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived OpenStore: %v", p, err)
		}
	}
	mustGet(t, s, b)
	if st := s.Stats(); st.Blocks != 1 {
		t.Fatalf("Stats after reopen: %d blocks, want 1", st.Blocks)
	}
}

// blocksPerDir returns the number of blocks in each directory.
func blocksPerDir(s *Store) []int64 {
	var n []int64
	for _, d := range s.Stats().Dirs {
		n = append(n, d.Blocks)
	}
	return n
}

func TestStorePlacementByCapacity(t *testing.T) {
	dirs := []Dir{{Path: t.TempDir(), Capacity: 1 << 30}, {Path: t.TempDir(), Capacity: 2 << 30}, {Path: t.TempDir(), Capacity: 1 << 30}}
	s := openStore(t, StoreConfig{Dirs: dirs})
	const n = 4000
	for i := range n {
		mustPut(t, s, makeBlock(i))
	}
	got := blocksPerDir(s)
	for i, share := range []float64{0.25, 0.5, 0.25} {
		want := share * n
		if f := float64(got[i]); f < 0.75*want || f > 1.25*want {
			t.Errorf("directory %d holds %d blocks, want %.0f ± 25 %%", i, got[i], want)
		}
	}
	t.Logf("blocks per directory: %v", got)
}

// checkAllInPrimary checks that every block is in its primary directory
// and nowhere else.
func checkAllInPrimary(t *testing.T, s *Store, blocks []testBlock) {
	t.Helper()
	l := s.layout.Load()
	for _, b := range blocks {
		prim := int(l.Primary[placementOf(b.hash)])
		for i := range s.dirs {
			_, err := os.Stat(s.blockName(i, b.hash, ""))
			if i == prim && err != nil {
				t.Fatalf("block %s not in its primary %d: %v", b.hash.Short(), i, err)
			}
			if i != prim && err == nil {
				t.Fatalf("block %s also in directory %d, primary %d", b.hash.Short(), i, prim)
			}
		}
	}
}

func TestStoreAddDirAndRebalance(t *testing.T) {
	meta := filepath.Join(t.TempDir(), "meta")
	os.Mkdir(meta, 0o700)
	layoutFile := filepath.Join(meta, "blocks-layout.json")
	a, b := Dir{Path: t.TempDir(), Capacity: 100}, Dir{Path: t.TempDir(), Capacity: 100}
	s := openStore(t, StoreConfig{Dirs: []Dir{a, b}, LayoutFile: layoutFile})
	var old []testBlock
	for i := range 600 {
		blk := makeBlock(i)
		mustPut(t, s, blk)
		old = append(old, blk)
	}
	if _, err := os.Stat(layoutFile); err != nil {
		t.Fatalf("layout file not at LayoutFile: %v", err)
	}
	if _, err := os.Stat(filepath.Join(a.Path, defaultLayoutFile)); err == nil {
		t.Fatalf("layout file written in the data directory despite LayoutFile")
	}

	c := Dir{Path: t.TempDir(), Capacity: 200}
	s = openStore(t, StoreConfig{Dirs: []Dir{a, b, c}, LayoutFile: layoutFile})
	if got := blocksPerDir(s); got[2] != 0 || got[0]+got[1] != 600 {
		t.Fatalf("after adding a directory: %v blocks per directory", got)
	}
	for _, blk := range old {
		mustGet(t, s, blk)
		if written, err := s.Put(blk.hash, blk.stored); written || err != nil {
			t.Fatalf("Put of a block in a secondary = %v, %v; want false", written, err)
		}
	}
	var fresh []testBlock
	for i := 1000; i < 1400; i++ {
		blk := makeBlock(i)
		mustPut(t, s, blk)
		fresh = append(fresh, blk)
	}
	checkAllInPrimary(t, s, fresh)
	if !s.NeedsRebalance() {
		t.Fatal("NeedsRebalance false after adding a directory")
	}
	rawBefore := s.Stats().RawBytes

	moved, err := s.Rebalance(t.Context())
	if err != nil {
		t.Fatalf("Rebalance: %v", err)
	}
	// c has half the capacity: about half the old blocks move there.
	if moved < 200 || moved > 400 {
		t.Fatalf("Rebalance moved %d of 600 blocks, want about 300", moved)
	}
	all := append(old, fresh...)
	checkAllInPrimary(t, s, all)
	for _, blk := range all {
		mustGet(t, s, blk)
	}
	if s.layout.Load().hasSecondaries() || s.NeedsRebalance() {
		t.Fatalf("secondaries kept after a complete rebalance")
	}
	st := s.Stats()
	if st.RawBytes != rawBefore || st.RawBytes == 0 {
		t.Fatalf("raw bytes %d after rebalance, %d before", st.RawBytes, rawBefore)
	}
	var raw int64
	for _, blk := range all {
		hd, _, err := DecodeHeader(blk.stored)
		if err != nil {
			t.Fatal(err)
		}
		raw += int64(hd.RawLen)
	}
	if st.RawBytes != raw {
		t.Fatalf("Stats counts %d raw bytes, the blocks hold %d", st.RawBytes, raw)
	}
	if st.Blocks != 1000 {
		t.Fatalf("Stats after rebalance: %d blocks, want 1000", st.Blocks)
	}
	if moved, err := s.Rebalance(t.Context()); moved != 0 || err != nil {
		t.Fatalf("second Rebalance = %d, %v; want 0, nil", moved, err)
	}

	// Reopened, the layout without secondaries is the one in the file.
	s = openStore(t, StoreConfig{Dirs: []Dir{a, b, c}, LayoutFile: layoutFile})
	if s.layout.Load().hasSecondaries() {
		t.Fatalf("reopened layout has secondaries")
	}
	if got := s.Stats(); !equalCounts(got, st) {
		t.Fatalf("Stats after reopen %+v, before %+v", got, st)
	}
}

// equalCounts compares the counts of two Stats, not the free
// space, which other processes change.
func equalCounts(a, b StoreStats) bool {
	if a.Blocks != b.Blocks || a.Bytes != b.Bytes || len(a.Dirs) != len(b.Dirs) {
		return false
	}
	for i := range a.Dirs {
		x, y := a.Dirs[i], b.Dirs[i]
		if x.Path != y.Path || x.Blocks != y.Blocks || x.Used != y.Used || x.Capacity != y.Capacity || x.ReadOnly != y.ReadOnly {
			return false
		}
	}
	return true
}

func TestStoreReadOnlyDir(t *testing.T) {
	a, b := Dir{Path: t.TempDir(), Capacity: 1}, Dir{Path: t.TempDir(), Capacity: 1}
	s := openStore(t, StoreConfig{Dirs: []Dir{a, b}})
	var old []testBlock
	for i := range 200 {
		blk := makeBlock(i)
		mustPut(t, s, blk)
		old = append(old, blk)
	}
	inB := filesIn(t, b.Path)
	if len(inB) < 50 {
		t.Fatalf("only %d blocks in b before it became read-only", len(inB))
	}

	b.ReadOnly = true
	s = openStore(t, StoreConfig{Dirs: []Dir{a, b}})
	for _, blk := range old {
		mustGet(t, s, blk)
	}
	for i := 1000; i < 1200; i++ {
		mustPut(t, s, makeBlock(i))
	}
	if got := filesIn(t, b.Path); !slices.Equal(got, inB) {
		t.Fatalf("read-only directory written: %d files, had %d", len(got), len(inB))
	}

	moved, err := s.Rebalance(t.Context())
	if err != nil {
		t.Fatalf("Rebalance: %v", err)
	}
	if left := filesIn(t, b.Path); len(left) != 0 {
		t.Fatalf("Rebalance left %d files in the read-only directory", len(left))
	}
	if moved != len(inB) {
		t.Fatalf("Rebalance moved %d blocks, want the %d of b", moved, len(inB))
	}
	for _, blk := range old {
		mustGet(t, s, blk)
	}
	if st := s.Stats(); st.Dirs[1].Blocks != 0 || st.Blocks != 400 {
		t.Fatalf("Stats after draining: %+v", st)
	}
}

func TestStoreNoSpace(t *testing.T) {
	cfg := oneDir(t)
	s := openStore(t, cfg)
	var hooked []string
	s.InjectWriteError(func(path string) error {
		hooked = append(hooked, path)
		return &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
	})
	b := makeBlock(5)
	written, err := s.Put(b.hash, b.stored)
	if written || !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Put on a full disk = %v, %v; want ErrNoSpace", written, err)
	}
	if !strings.Contains(err.Error(), s.dirs[0].Path) {
		t.Errorf("error %q does not name the directory %s", err, s.dirs[0].Path)
	}
	if len(hooked) != 1 || !strings.Contains(hooked[0], tempMarker) {
		t.Fatalf("hook saw %v, want one temporary file", hooked)
	}
	if files := filesIn(t, cfg.Dirs[0].Path); slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, b.hash.String()) }) {
		t.Fatalf("files left after a failed Put: %v", files)
	}
	if has, _ := s.Has(b.hash); has {
		t.Fatalf("Has after a failed Put")
	}
	if st := s.Stats(); st.Blocks != 0 || st.Bytes != 0 {
		t.Fatalf("Stats after a failed Put: %+v", st)
	}
	s.InjectWriteError(nil)
	mustPut(t, s, b)
	mustGet(t, s, b)
}

func TestStoreQuarantine(t *testing.T) {
	cfg := oneDir(t)
	s := openStore(t, cfg)
	b, other := makeBlock(6), makeBlock(7)
	mustPut(t, s, b)
	mustPut(t, s, other)
	if err := s.Quarantine(b.hash); err != nil {
		t.Fatal(err)
	}
	x := b.hash.String()
	kept, err := os.ReadFile(filepath.Join(cfg.Dirs[0].Path, x[0:2], x[2:4], x+".corrupted"))
	if err != nil || !bytes.Equal(kept, b.stored) {
		t.Fatalf("quarantined file: %v", err)
	}
	if has, _ := s.Has(b.hash); has {
		t.Fatalf("Has of a quarantined block")
	}
	if _, err := s.Get(b.hash); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a quarantined block = %v, want ErrNotFound", err)
	}
	if got := walkAll(t, s); !slices.Equal(got, []Hash{other.hash}) {
		t.Fatalf("Walk after quarantine = %v", got)
	}
	if st := s.Stats(); st.Blocks != 1 || st.Bytes != int64(len(other.stored)) {
		t.Fatalf("Stats after quarantine: %+v", st)
	}
	mustPut(t, s, b)
	mustGet(t, s, b)
	// Reopened, the quarantined file is still not a block.
	s = openStore(t, cfg)
	if st := s.Stats(); st.Blocks != 2 {
		t.Fatalf("Stats after reopen: %d blocks, want 2", st.Blocks)
	}
}

func TestStoreWalk(t *testing.T) {
	a, b := Dir{Path: t.TempDir(), Capacity: 1}, Dir{Path: t.TempDir(), Capacity: 1}
	s := openStore(t, StoreConfig{Dirs: []Dir{a, b}})
	var want []Hash
	sizes := map[Hash]int64{}
	for i := range 300 {
		blk := makeBlock(i)
		mustPut(t, s, blk)
		want = append(want, blk.hash)
		sizes[blk.hash] = int64(len(blk.stored))
	}
	slices.SortFunc(want, func(x, y Hash) int { return bytes.Compare(x[:], y[:]) })

	// A copy in both directories (an interrupted rebalance) is walked
	// twice, in directory order; strangers are skipped.
	dup := want[10]
	other := 1 - int(s.layout.Load().Primary[placementOf(dup)])
	stored, _ := s.Get(dup)
	leaf := filepath.Dir(s.blockName(other, dup, ""))
	os.MkdirAll(leaf, 0o700)
	os.WriteFile(s.blockName(other, dup, ""), stored, 0o600)
	x := want[20].String()
	strangers := []string{
		filepath.Join(a.Path, x[0:2], x[2:4], strings.ToUpper(x)),                 // not lowercase
		filepath.Join(a.Path, x[0:2], x[2:4], x[:63]),                             // short
		filepath.Join(a.Path, x[0:2], x[2:4], "README"),                           // not hex
		filepath.Join(a.Path, x[0:2], "zz", x),                                    // not a leaf
		filepath.Join(a.Path, "ff", "ff", strings.Repeat("0", 64)),                // wrong leaf
		filepath.Join(a.Path, x[0:2], x[2:4], x+quarantineSuffix),                 // quarantined
		filepath.Join(a.Path, x[0:2], x[2:4], x+tempMarker+"1"),                   // being written
		filepath.Join(b.Path, "notes.txt"),                                        // top level
		filepath.Join(a.Path, x[0:2], x[2:4], x[:4]+strings.Repeat("a", 60), "f"), // a directory
	}
	for _, p := range strangers {
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	var got []Hash
	var dirsOfDup []int64
	err := s.Walk(t.Context(), func(h Hash, size int64) error {
		got = append(got, h)
		if size != sizes[h] {
			t.Errorf("Walk: %s has size %d, want %d", h.Short(), size, sizes[h])
		}
		if h == dup {
			dirsOfDup = append(dirsOfDup, size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantWalk := slices.Insert(slices.Clone(want), 10, dup)
	if !slices.Equal(got, wantWalk) {
		t.Fatalf("Walk returned %d hashes, want %d in hash order", len(got), len(wantWalk))
	}
	if len(dirsOfDup) != 2 {
		t.Fatalf("duplicated block walked %d times, want 2", len(dirsOfDup))
	}

	// Stopping: an error of fn, a cancelled context.
	stop := errors.New("stop")
	n := 0
	if err := s.Walk(t.Context(), func(Hash, int64) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	}); !errors.Is(err, stop) || n != 5 {
		t.Fatalf("Walk stopped by fn: %v after %d", err, n)
	}
	ctx, cancel := context.WithCancel(t.Context())
	n = 0
	if err := s.Walk(ctx, func(Hash, int64) error {
		n++
		if n == 7 {
			cancel()
		}
		return nil
	}); !errors.Is(err, context.Canceled) || n != 7 {
		t.Fatalf("Walk with a cancelled context: %v after %d", err, n)
	}

	// Rebalance removes the extra copy.
	if _, err := s.Rebalance(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := walkAll(t, s); !slices.Equal(got, want) {
		t.Fatalf("after Rebalance, Walk returned %d hashes, want %d", len(got), len(want))
	}
}

func TestStoreStats(t *testing.T) {
	a, b := Dir{Path: t.TempDir(), Capacity: 3 << 20}, Dir{Path: t.TempDir(), Capacity: 1 << 20}
	cfg := StoreConfig{Dirs: []Dir{a, b}}
	s := openStore(t, cfg)
	var blocks []testBlock
	var total int64
	for i := range 100 {
		blk := makeBlock(i)
		mustPut(t, s, blk)
		blocks = append(blocks, blk)
		total += int64(len(blk.stored))
	}
	for _, blk := range blocks[:30] {
		if err := s.Delete(blk.hash); err != nil {
			t.Fatal(err)
		}
		total -= int64(len(blk.stored))
	}
	if err := s.Delete(blocks[0].hash); err != nil { // twice
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Blocks != 70 || st.Bytes != total {
		t.Fatalf("Stats = %d blocks %d bytes, want 70 and %d", st.Blocks, st.Bytes, total)
	}
	for i, d := range st.Dirs {
		if d.Path != s.dirs[i].Path || d.Capacity != cfg.Dirs[i].Capacity || d.Available <= 0 {
			t.Errorf("dir %d: %+v", i, d)
		}
		var used int64
		for _, f := range filesIn(t, d.Path) {
			if isBlockName(filepath.Base(f)) {
				fi, _ := os.Stat(filepath.Join(d.Path, f))
				used += fi.Size()
			}
		}
		if d.Used != used {
			t.Errorf("dir %d: Used %d, files hold %d", i, d.Used, used)
		}
	}
	s = openStore(t, cfg)
	if got := s.Stats(); !equalCounts(got, st) || got.RawBytes != st.RawBytes || st.RawBytes == 0 {
		t.Fatalf("Stats after reopen %+v, before %+v", got, st)
	}
	for _, blk := range blocks[30:] {
		mustGet(t, s, blk)
	}
}

func TestStoreConcurrent(t *testing.T) {
	s := openStore(t, StoreConfig{Dirs: []Dir{{Path: t.TempDir(), Capacity: 1}, {Path: t.TempDir(), Capacity: 2}}})
	blocks := make([]testBlock, 64)
	for i := range blocks {
		blocks[i] = makeBlock(i)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	writes := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				blk := blocks[(g*7+i)%len(blocks)]
				switch i % 4 {
				case 0, 1:
					w, err := s.Put(blk.hash, blk.stored)
					if err != nil {
						t.Error(err)
					}
					if w {
						mu.Lock()
						writes++
						mu.Unlock()
					}
				case 2:
					if stored, err := s.Get(blk.hash); err == nil {
						if _, err := testCodec.Decode(nil, stored); err != nil {
							t.Errorf("Get returned a partial block: %v", err)
						}
					} else if !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
				case 3:
					if g%2 == 0 {
						if err := s.Delete(blk.hash); err != nil {
							t.Error(err)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	var n, bytes int64
	if err := s.Walk(t.Context(), func(h Hash, size int64) error {
		n++
		bytes += size
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Blocks != n || st.Bytes != bytes {
		t.Fatalf("Stats %d blocks %d bytes, Walk finds %d and %d", st.Blocks, st.Bytes, n, bytes)
	}
	t.Logf("%d writes, %d blocks left", writes, n)
}

func TestOpenStoreConfig(t *testing.T) {
	tmp := t.TempDir()
	missing := filepath.Join(tmp, "missing")
	file := filepath.Join(tmp, "file")
	os.WriteFile(file, nil, 0o600)
	d1, d2 := filepath.Join(tmp, "d1"), filepath.Join(tmp, "d2")
	cases := []struct {
		name string
		dirs []Dir
		want string
	}{
		{"none", nil, "no data directory"},
		{"empty path", []Dir{{Path: ""}}, "empty path"},
		{"two without capacity", []Dir{{Path: d1}, {Path: d2, Capacity: 1}}, "capacity is needed"},
		{"negative", []Dir{{Path: d1, Capacity: -1}}, "negative capacity"},
		{"twice", []Dir{{Path: d1, Capacity: 1}, {Path: d1 + "/", Capacity: 1}}, "listed twice"},
		{"all read-only", []Dir{{Path: d1, ReadOnly: true}}, "read-only"},
		{"read-only missing", []Dir{{Path: d1, Capacity: 1}, {Path: missing, ReadOnly: true}}, "missing"},
		{"not a directory", []Dir{{Path: file}}, "file"},
	}
	for _, tc := range cases {
		if _, err := OpenStore(StoreConfig{Dirs: tc.dirs}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: OpenStore error = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}

	// A single directory needs no capacity; the layout file goes into
	// it. A read-only directory needs none either.
	s := openStore(t, StoreConfig{Dirs: []Dir{{Path: d1}}})
	if _, err := os.Stat(filepath.Join(d1, defaultLayoutFile)); err != nil {
		t.Fatalf("default layout file: %v", err)
	}
	mustPut(t, s, makeBlock(1))
	os.Mkdir(d2, 0o700)
	s = openStore(t, StoreConfig{Dirs: []Dir{{Path: d2, ReadOnly: true}, {Path: d1, Capacity: 5}}})
	mustGet(t, s, makeBlock(1))

	// A damaged layout file stops OpenStore with advice.
	os.WriteFile(filepath.Join(d1, defaultLayoutFile), []byte("{"), 0o600)
	if _, err := OpenStore(StoreConfig{Dirs: []Dir{{Path: d1}}}); err == nil || !strings.Contains(err.Error(), "remove the file") {
		t.Fatalf("OpenStore with a damaged layout file = %v", err)
	}
	os.Remove(filepath.Join(d1, defaultLayoutFile))
	s = openStore(t, StoreConfig{Dirs: []Dir{{Path: d1}}})
	mustGet(t, s, makeBlock(1))
}

// TestStoreLostLayout loses the layout file of a store with two
// directories: reopened with a third, every block is still found, and
// Rebalance puts everything in place.
func TestStoreLostLayout(t *testing.T) {
	a, b := Dir{Path: t.TempDir(), Capacity: 1}, Dir{Path: t.TempDir(), Capacity: 1}
	s := openStore(t, StoreConfig{Dirs: []Dir{a, b}})
	var blocks []testBlock
	for i := range 100 {
		blk := makeBlock(i)
		mustPut(t, s, blk)
		blocks = append(blocks, blk)
	}
	if err := os.Remove(filepath.Join(a.Path, defaultLayoutFile)); err != nil {
		t.Fatal(err)
	}
	c := Dir{Path: t.TempDir(), Capacity: 5}
	s = openStore(t, StoreConfig{Dirs: []Dir{c, b, a}})
	var l struct{ Secondary [][]uint16 }
	raw, _ := os.ReadFile(filepath.Join(c.Path, defaultLayoutFile))
	if err := json.Unmarshal(raw, &l); err != nil || len(l.Secondary) != placementPartitions || len(l.Secondary[0]) == 0 {
		t.Fatalf("rebuilt layout does not look into the old directories: %v", err)
	}
	for _, blk := range blocks {
		mustGet(t, s, blk)
	}
	if _, err := s.Rebalance(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkAllInPrimary(t, s, blocks)
}

func TestRebalanceStopsAndQuarantines(t *testing.T) {
	a := Dir{Path: t.TempDir(), Capacity: 1}
	s := openStore(t, StoreConfig{Dirs: []Dir{a}})
	var blocks []testBlock
	for i := range 100 {
		blk := makeBlock(i)
		mustPut(t, s, blk)
		blocks = append(blocks, blk)
	}
	b := Dir{Path: t.TempDir(), Capacity: 3}
	s = openStore(t, StoreConfig{Dirs: []Dir{a, b}})

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if moved, err := s.Rebalance(ctx); !errors.Is(err, context.Canceled) || moved != 0 {
		t.Fatalf("Rebalance with a cancelled context = %d, %v", moved, err)
	}
	if !s.layout.Load().hasSecondaries() {
		t.Fatalf("an interrupted Rebalance dropped the secondaries")
	}

	// Damage a block that has to move: Rebalance sets it aside rather
	// than copying garbage, and moves the rest.
	var bad testBlock
	for _, blk := range blocks {
		if s.layout.Load().Primary[placementOf(blk.hash)] == 1 {
			bad = blk
			break
		}
	}
	path := s.blockName(0, bad.hash, "")
	onDisk, _ := os.ReadFile(path)
	onDisk[len(onDisk)-1] ^= 1
	os.WriteFile(path, onDisk, 0o600)

	moved, err := s.Rebalance(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + quarantineSuffix); err != nil {
		t.Fatalf("corrupt block not quarantined: %v", err)
	}
	if has, _ := s.Has(bad.hash); has {
		t.Fatalf("corrupt block still there after Rebalance")
	}
	good := slices.DeleteFunc(slices.Clone(blocks), func(blk testBlock) bool { return blk.hash == bad.hash })
	checkAllInPrimary(t, s, good)
	if st := s.Stats(); st.Blocks != 99 || moved != int(st.Dirs[1].Blocks) {
		t.Fatalf("after Rebalance: moved %d, stats %+v", moved, st)
	}
}

// OpenStore reads the headers of a sample of the blocks it finds, not of
// all of them: the raw size of a store of more blocks than the sample is
// estimated, here within 10 % (half the blocks are text that compresses
// well, half random data kept raw, in hash order), and blocks written
// after the open count exactly.
func TestOpenStoreEstimatesRawBytes(t *testing.T) {
	cfg := StoreConfig{Dirs: []Dir{{Path: t.TempDir()}}}
	s := openStore(t, cfg)
	var raw int64
	n := rawSample + rawSample/2
	for i := range n {
		b := makeBlock(i)
		mustPut(t, s, b)
		raw += int64(len(b.raw))
	}
	if got := s.Stats().RawBytes; got != raw {
		t.Fatalf("RawBytes %d while writing, want %d", got, raw)
	}
	s2 := openStore(t, cfg)
	st := s2.Stats()
	if st.Blocks != int64(n) {
		t.Fatalf("%d blocks found, want %d", st.Blocks, n)
	}
	if d := float64(st.RawBytes-raw) / float64(raw); d < -0.1 || d > 0.1 {
		t.Fatalf("estimated raw bytes %d, actual %d (%.1f %% off)", st.RawBytes, raw, 100*d)
	}
	b := makeBlock(n)
	mustPut(t, s2, b)
	if got := s2.Stats().RawBytes; got != st.RawBytes+int64(len(b.raw)) {
		t.Fatalf("a block of %d raw bytes moved RawBytes from %d to %d", len(b.raw), st.RawBytes, got)
	}
}
