package blocks

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Direct I/O.
//
// With DirectIO (data_direct_io, off by default), block files of
// directMin bytes or more bypass the page cache (O_DIRECT, Linux only)
// both ways. A write must reach the disk before Put
// returns anyway: through the page cache it also costs a copy into new
// pages and their write-back at the sync. On the 2-core development VM,
// whose balloon reports freed memory to the host (so that each page used
// anew costs a fault there), that was about 2 s of CPU per GiB, and
// 1 MiB files written and synced by 16 goroutines came to 0.5-0.8 GiB/s
// through the cache against 1.1-1.4 GiB/s direct. A block written so is
// not in the page cache, and reading it through the cache costs the same
// pages again (cold buffered reads there: about 0.5 GiB/s); read directly
// it comes at the disk's speed, for less CPU. Small blocks (small objects,
// the tails of streams) stay in the page cache, which keeps those that are
// read often; large ones read often are not cached by this node.
//
// A file system that refuses direct I/O (tmpfs, some network and FUSE
// file systems) is used through the page cache from its first refusal on.

const (
	// directAlign is the alignment of direct I/O: of file offsets,
	// lengths and memory. 4096 suits devices with 512-byte and 4 KiB
	// sectors alike.
	directAlign = 4096
	// directMin is the smallest block file written and read directly.
	directMin = 64 << 10
	// directChunk is the size of the aligned buffer through which a block
	// that is not aligned in memory is written, a piece at a time.
	directChunk = 1 << 20
)

// setDirect turns O_DIRECT on or off for an open file (fcntlDirect);
// tests replace it to play a file system that refuses direct I/O.
var setDirect = fcntlDirect

func alignUp(n int) int { return (n + directAlign - 1) &^ (directAlign - 1) }

// addr is the address of b's first byte (of its array when b is empty).
func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func isAligned(b []byte) bool { return addr(b)&(directAlign-1) == 0 }

var directBufs = sync.Pool{New: func() any {
	b := make([]byte, directChunk+directAlign)
	off := -int(addr(b)) & (directAlign - 1)
	b = b[off : off+directChunk]
	return &b
}}

// direct reports whether blocks of directory d go with direct I/O.
func (s *Store) direct(d *dataDir) bool { return s.directIO && !d.noDirect.Load() }

func (s *Store) noDirect(d *dataDir, err error) {
	if !d.noDirect.Swap(true) {
		s.log.Info("data directory without direct I/O: blocks go through the page cache", "dir", d.Path, "err", err)
	}
}

// writeData writes stored to f, a new empty file in directory d: with
// direct I/O the bulk, whole multiples of directAlign straight from
// memory to the device (through an aligned copy when stored is not
// aligned in memory), and the tail through the page cache.
func (s *Store) writeData(d *dataDir, f *os.File, stored []byte) error {
	n := len(stored) &^ (directAlign - 1)
	if len(stored) < directMin || !s.direct(d) {
		_, err := f.Write(stored)
		return err
	}
	if err := setDirect(f, true); err != nil {
		s.noDirect(d, err)
		_, err := f.Write(stored)
		return err
	}
	var err error
	if isAligned(stored) {
		_, err = f.Write(stored[:n])
	} else {
		bp := directBufs.Get().(*[]byte)
		for off := 0; off < n && err == nil; off += directChunk {
			k := copy(*bp, stored[off:n])
			_, err = f.Write((*bp)[:k])
		}
		directBufs.Put(bp)
	}
	if errors.Is(err, syscall.EINVAL) {
		// Refused before anything was written: the file system takes
		// O_DIRECT in fcntl but not in write.
		if st, serr := f.Stat(); serr == nil && st.Size() == 0 {
			s.noDirect(d, err)
			n, err = 0, nil
		}
	}
	if err != nil {
		return err
	}
	if err := setDirect(f, false); err != nil {
		return err
	}
	_, err = f.Write(stored[n:])
	return err
}

// directRoom reports whether a file of size bytes can be read directly
// into dst's spare capacity.
func directRoom(dst []byte, size int) bool {
	return cap(dst)-len(dst) >= alignUp(size) && isAligned(dst[len(dst):])
}

// readDirect reads the size bytes of f, opened with O_DIRECT at offset 0,
// into b (aligned, of alignUp(size) bytes at least): directly while the
// reads stay aligned, the rest (after a short read or a refusal) through
// the page cache. A file shorter than size is io.ErrUnexpectedEOF.
func readDirect(f *os.File, b []byte, size int) error {
	got := 0
	for got < size && got&(directAlign-1) == 0 {
		k, err := f.Read(b[got:])
		got += k
		if errors.Is(err, syscall.EINVAL) {
			break // refused: the rest through the page cache
		}
		if err == io.EOF || err == nil && k == 0 {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
	}
	if got >= size {
		return nil
	}
	if err := setDirect(f, false); err != nil {
		return err
	}
	_, err := io.ReadFull(f, b[got:size])
	return err
}
