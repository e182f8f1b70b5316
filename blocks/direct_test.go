package blocks

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Blocks around the direct I/O thresholds, given from memory aligned and
// not, read back into buffers with and without room for a direct read:
// every path writes and reads the same bytes as the plain one.
func TestStoreDirectIO(t *testing.T) {
	dirs := map[string]string{"disk": t.TempDir()}
	// tmpfs may refuse O_DIRECT: then the store falls back to the page
	// cache, which must be invisible here too.
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "grange-direct-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			dirs["shm"] = d
		}
	}
	none, err := NewCodec(0)
	if err != nil {
		t.Fatal(err)
	}
	for name, dir := range dirs {
		for _, fsync := range []bool{true, false} {
			s := openStore(t, StoreConfig{Dirs: []Dir{{Path: filepath.Join(dir, map[bool]string{true: "fsync", false: "nofsync"}[fsync])}}, Fsync: fsync, DirectIO: true})
			sizes := []int{100, directMin - HeaderLen - 1, directMin - HeaderLen, directMin - HeaderLen + 1,
				directAlign*20 - HeaderLen, 1<<20 + 7, 1 << 20, 3*directChunk + 5}
			for i, n := range sizes {
				raw := randomBytes(uint64(1000+i), n)
				h := Sum(raw)
				for _, misalign := range []int{0, 1, 32} {
					// the stored form at an offset from an aligned start
					buf := make([]byte, 0, misalign+HeaderLen+n+directAlign+zstdSlack(n))
					off := misalign + (-int(addr(buf)) & (directAlign - 1))
					if off+HeaderLen+n+zstdSlack(n) > cap(buf) {
						buf = make([]byte, 0, 2*cap(buf))
						off = misalign + (-int(addr(buf)) & (directAlign - 1))
					}
					stored := none.Encode(buf[off:off], raw)
					if misalign > 0 { // written at the previous misalignment
						if err := s.Delete(h); err != nil {
							t.Fatal(err)
						}
					}
					if written, err := s.Put(h, stored); err != nil || !written {
						t.Fatalf("%s fsync=%v: Put of %d bytes at misalignment %d = %v, %v", name, fsync, n, misalign, written, err)
					}
					x := h.String()
					onDisk, err := os.ReadFile(filepath.Join(s.dirs[0].Path, x[0:2], x[2:4], x))
					if err != nil || !bytes.Equal(onDisk, stored) {
						t.Fatalf("%s fsync=%v: the file of a %d-byte block written at misalignment %d differs from its stored form (%v)", name, fsync, n, misalign, err)
					}
					room := make([]byte, 0, alignUp(len(stored))+2*directAlign)
					aligned := room[-int(addr(room))&(directAlign-1):][:0]
					for what, dst := range map[string][]byte{
						"nil": nil, "aligned": aligned, "unaligned": aligned[1:1],
						"short": make([]byte, 0, len(stored)),
					} {
						got, err := s.GetInto(dst, h)
						if err != nil || !bytes.Equal(got, stored) {
							t.Fatalf("%s fsync=%v: GetInto(%s) of a %d-byte block: %v; equal %v", name, fsync, what, n, err, bytes.Equal(got, stored))
						}
					}
				}
			}
			if name == "disk" && fsync && s.dirs[0].noDirect.Load() {
				t.Logf("the test's temporary directory refused direct I/O: only the fallback was tested")
			}
			t.Logf("%s fsync=%v: direct I/O refused: %v", name, fsync, s.dirs[0].noDirect.Load())
		}
	}
}

// A file shorter than its size at open (it was cut meanwhile) reads as
// corrupt, directly or not.
func TestReadDirectShortFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	data := randomBytes(5, 3*directAlign+10)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{len(data), len(data) + 1, len(data) + directAlign} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		room := make([]byte, alignUp(size)+directAlign)
		b := room[-int(addr(room))&(directAlign-1):][:alignUp(size)]
		direct := setDirect(f, true) == nil
		err = readDirect(f, b, size)
		f.Close()
		switch {
		case size == len(data) && (err != nil || !bytes.Equal(b[:size], data)):
			t.Fatalf("readDirect (direct %v) of the whole file: %v", direct, err)
		case size > len(data) && err == nil:
			t.Fatalf("readDirect (direct %v) of %d bytes from a file of %d: no error", direct, size, len(data))
		}
	}
}

// A file system that refuses direct I/O gets the page cache, and the
// same bytes.
func TestStoreDirectRefused(t *testing.T) {
	defer func(f func(*os.File, bool) error) { setDirect = f }(setDirect)
	setDirect = func(f *os.File, on bool) error {
		if on {
			return syscall.EINVAL
		}
		return nil
	}
	cfg := oneDir(t)
	cfg.DirectIO = true
	s := openStore(t, cfg)
	raw := randomBytes(7, 1<<20)
	h := Sum(raw)
	stored := testCodec.Encode(nil, raw)
	if _, err := s.Put(h, stored); err != nil {
		t.Fatal(err)
	}
	if !s.dirs[0].noDirect.Load() {
		t.Fatal("a refusal of direct I/O was not noted")
	}
	room := make([]byte, 0, alignUp(len(stored))+2*directAlign)
	aligned := room[-int(addr(room))&(directAlign-1):][:0]
	if got, err := s.GetInto(aligned, h); err != nil || !bytes.Equal(got, stored) {
		t.Fatalf("GetInto after a refusal: %v", err)
	}
}

// Without DirectIO (the default), the store never asks for direct I/O.
func TestStoreDirectOff(t *testing.T) {
	defer func(f func(*os.File, bool) error) { setDirect = f }(setDirect)
	setDirect = func(*os.File, bool) error {
		t.Fatal("direct I/O asked for without DirectIO")
		return nil
	}
	s := openStore(t, oneDir(t))
	raw := randomBytes(8, 1<<20)
	h := Sum(raw)
	stored := testCodec.Encode(nil, raw)
	if _, err := s.Put(h, stored); err != nil {
		t.Fatal(err)
	}
	room := make([]byte, 0, alignUp(len(stored))+2*directAlign)
	aligned := room[-int(addr(room))&(directAlign-1):][:0]
	if got, err := s.GetInto(aligned, h); err != nil || !bytes.Equal(got, stored) {
		t.Fatalf("GetInto: %v", err)
	}
}
