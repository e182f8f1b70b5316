package blocks

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// goSource returns n bytes of Go source from GOROOT/src: real text for
// compression benchmarks; nil when there is not that much.
func goSource(n int) []byte {
	root := filepath.Join(runtime.GOROOT(), "src")
	var buf bytes.Buffer
	errFull := fs.SkipAll
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() && strings.HasSuffix(path, ".go") {
			src, err := os.ReadFile(path)
			if err == nil {
				buf.Write(src)
			}
			if buf.Len() >= n {
				return errFull
			}
		}
		return nil
	})
	if err != nil && err != errFull || buf.Len() < n {
		return nil
	}
	return buf.Bytes()[:n]
}

// BenchmarkCodec measures Encode at level 1 and Decode on 1 MiB blocks of
// random data (stored uncompressed) and of Go source (compressed), the
// latter cycling through 16 MiB so that caches do not flatter it. The
// stored/raw metric is the size of the stored form over the raw size.
func BenchmarkCodec(b *testing.B) {
	const blockSize = 1 << 20
	c := newCodec(b, 1)
	data := map[string][][]byte{"random": {randomBytes(1, blockSize)}}
	if text := goSource(16 << 20); text != nil {
		for off := 0; off < len(text); off += blockSize {
			data["text"] = append(data["text"], text[off:off+blockSize])
		}
	}
	for _, kind := range []string{"random", "text"} {
		blocks := data[kind]
		b.Run("encode/"+kind, func(b *testing.B) {
			if len(blocks) == 0 {
				b.Skip("no Go source under GOROOT")
			}
			b.SetBytes(blockSize)
			b.ReportAllocs()
			dst := make([]byte, 0, 2*blockSize)
			var stored, i int
			for b.Loop() {
				stored += len(c.Encode(dst, blocks[i%len(blocks)]))
				i++
			}
			b.ReportMetric(float64(stored)/float64(i*blockSize), "stored/raw")
		})
		b.Run("decode/"+kind, func(b *testing.B) {
			if len(blocks) == 0 {
				b.Skip("no Go source under GOROOT")
			}
			var encoded [][]byte
			for _, raw := range blocks {
				encoded = append(encoded, c.Encode(nil, raw))
			}
			b.SetBytes(blockSize)
			b.ReportAllocs()
			dst := make([]byte, 0, 2*blockSize)
			i := 0
			for b.Loop() {
				if _, err := c.Decode(dst, encoded[i%len(encoded)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkStore measures Put (fsync on, a new hash each time, so every
// Put writes) and Get of 1 MiB blocks on one data directory under the
// system's temporary directory, serially and from GOMAXPROCS goroutines.
func BenchmarkStore(b *testing.B) {
	const blockSize = 1 << 20
	stored := newCodec(b, 1).Encode(nil, randomBytes(2, blockSize))
	var seq atomic.Uint64
	// fresh returns a hash no Put saw. The store does not hash, so the
	// same bytes under many names measure the same thing as many blocks.
	fresh := func() Hash {
		var x [8]byte
		binary.BigEndian.PutUint64(x[:], seq.Add(1))
		return Sum(x[:])
	}
	put := func(b *testing.B, s *Store) {
		if written, err := s.Put(fresh(), stored); err != nil || !written {
			b.Fatalf("Put = %v, %v", written, err)
		}
	}
	open := func(b *testing.B) *Store {
		s, err := OpenStore(StoreConfig{Dirs: []Dir{{Path: b.TempDir()}}, Fsync: true})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}

	b.Run("put", func(b *testing.B) {
		s := open(b)
		b.SetBytes(int64(len(stored)))
		b.ReportAllocs()
		for b.Loop() {
			put(b, s)
		}
	})
	b.Run("put-parallel", func(b *testing.B) {
		s := open(b)
		b.SetBytes(int64(len(stored)))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				put(b, s)
			}
		})
	})

	// Get reads back a set of 256 blocks (256 MiB: more than the CPU
	// caches, less than the page cache, so this measures the store's
	// path and a memory copy, not the disk).
	s := open(b)
	hashes := make([]Hash, 256)
	for i := range hashes {
		hashes[i] = fresh()
		if _, err := s.Put(hashes[i], stored); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("get", func(b *testing.B) {
		b.SetBytes(int64(len(stored)))
		b.ReportAllocs()
		buf := make([]byte, 0, len(stored))
		i := 0
		for b.Loop() {
			if _, err := s.GetInto(buf[:0], hashes[i%len(hashes)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("get-parallel", func(b *testing.B) {
		b.SetBytes(int64(len(stored)))
		b.ReportAllocs()
		var next atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, 0, len(stored))
			for pb.Next() {
				if _, err := s.GetInto(buf[:0], hashes[next.Add(1)%uint64(len(hashes))]); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
