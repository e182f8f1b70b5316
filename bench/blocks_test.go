package bench

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// The workload itself works, on one node and on three, with both kinds of
// data (a few MiB each: about a second in all).
func TestRunBlocks(t *testing.T) {
	cases := []struct {
		name  string
		nodes int
		data  string
	}{
		{"1node/random", 1, "random"},
		{"1node/text", 1, "text"},
		{"3nodes/random", 3, "random"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := RunBlocks(context.Background(), BlocksConfig{
				Nodes: tc.nodes, Data: tc.data, Dir: t.TempDir(),
				ObjectBytes: 1<<20 + 12345, Streams: 2, TotalBytes: 4 << 20,
				BlockSize: 256 << 10,
			})
			if err != nil {
				t.Fatal(err)
			}
			w, r := res.Write, res.Read
			t.Logf("write %.0f MiB/s (p50 %v, p99 %v, %.2f CPU s/GiB), read %.0f MiB/s (p50 %v, p99 %v), stored/raw %.2f",
				w.MiBPerSec(), w.P50, w.P99, w.CPUPerGiB(), r.MiBPerSec(), r.P50, r.P99, res.StoredRatio())
			// 4 MiB in objects of 1 MiB and a bit: 4 of them, 5 blocks each
			if w.Objects != 4 || r.Objects != 4 || w.Bytes != 4*(1<<20+12345) || r.Bytes != w.Bytes {
				t.Errorf("wrote %d objects (%d bytes), read %d (%d bytes); want 4 and 4", w.Objects, w.Bytes, r.Objects, r.Bytes)
			}
			if res.Blocks != 4*5 {
				t.Errorf("%d blocks, want 20", res.Blocks)
			}
			for _, ph := range []BlocksPhase{w, r} {
				if ph.MiBPerSec() <= 0 || ph.P50 <= 0 || ph.P99 < ph.P50 || ph.Elapsed < ph.P50 {
					t.Errorf("implausible figures: %+v", ph)
				}
			}
			// every copy is stored: random data as it is, text compressed
			switch ratio := res.StoredRatio(); {
			case tc.data == "random" && (ratio < 1 || ratio > 1.01):
				t.Errorf("random data stored at %.3f of its size, want 1", ratio)
			case tc.data == "text" && (ratio <= 0 || ratio > 0.5):
				t.Errorf("Go source stored at %.3f of its size, want well under 0.5", ratio)
			}
		})
	}
}

// The objects' content: deterministic, every block distinct (stamped
// with its object and index), whatever the sizes of the reads.
func TestBlockData(t *testing.T) {
	const chunk = 64 << 10
	for _, kind := range []string{"random", "text"} {
		d, err := newBlockData(kind, chunk)
		if err != nil {
			t.Fatal(err)
		}
		read := func(obj uint64, size int64, step int) []byte {
			var out bytes.Buffer
			r := &objectReader{d: d, obj: obj, size: size}
			buf := make([]byte, step)
			for {
				n, err := r.Read(buf)
				out.Write(buf[:n])
				if err == io.EOF {
					return out.Bytes()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		const size = 5*chunk + 100
		a := read(7, size, chunk)
		if len(a) != size {
			t.Fatalf("%s: object of %d bytes, want %d", kind, len(a), size)
		}
		if b := read(7, size, 1000); !bytes.Equal(a, b) {
			t.Fatalf("%s: reads of 1000 bytes give other content than reads of a chunk", kind)
		}
		seen := map[string]bool{}
		for _, obj := range []uint64{7, 8} {
			o := read(obj, size, chunk)
			for off := 0; off < size; off += chunk {
				blk := string(o[off:min(off+chunk, size)])
				if seen[blk] {
					t.Fatalf("%s: object %d, chunk at %d: the same bytes as another chunk", kind, obj, off)
				}
				seen[blk] = true
			}
		}
	}
}

// Go benchmarks of the block store on in-process nodes, one iteration
// each (GRANGE_BENCH_DURATION sets the write time, default 2s):
//
//	go test ./bench -run '^$' -bench Blocks -benchtime 1x
func BenchmarkBlocks1NodeRandom(b *testing.B) { benchBlocks(b, 1, "random") }
func BenchmarkBlocks1NodeText(b *testing.B)   { benchBlocks(b, 1, "text") }
func BenchmarkBlocks3NodeRandom(b *testing.B) { benchBlocks(b, 3, "random") }
func BenchmarkBlocks3NodeText(b *testing.B)   { benchBlocks(b, 3, "text") }

func benchBlocks(b *testing.B, nodes int, data string) {
	var last *BlocksResult
	for b.Loop() {
		res, err := RunBlocks(context.Background(), BlocksConfig{
			Nodes: nodes, Data: data, Dir: b.TempDir(), Duration: benchDuration(),
		})
		if err != nil {
			b.Fatal(err)
		}
		last = res
	}
	b.ReportMetric(last.Write.MiBPerSec(), "write-MiB/s")
	b.ReportMetric(last.Read.MiBPerSec(), "read-MiB/s")
	b.ReportMetric(float64(last.Write.P50.Milliseconds()), "write-p50-ms")
	b.ReportMetric(float64(last.Read.P50.Milliseconds()), "read-p50-ms")
	b.ReportMetric(last.Write.CPUPerGiB(), "write-cpu-s/GiB")
	b.ReportMetric(last.Read.CPUPerGiB(), "read-cpu-s/GiB")
}

// PeakRSS reads a figure on Linux.
func TestPeakRSS(t *testing.T) {
	n, err := PeakRSS()
	if err != nil {
		t.Skip(err) // not Linux
	}
	if n < 1<<20 || n > 1<<40 {
		t.Errorf("peak RSS %d bytes", n)
	}
}
