package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/grangeio/grange/cmd/grange/node"
)

// startNode runs a single node in-process on loopback, with fsync on, as
// `grange server` does.
func startNode(tb testing.TB) *node.Node {
	tb.Helper()
	n, err := node.New(node.Config{
		MetadataDir:      tb.TempDir(),
		DataDir:          tb.TempDir(),
		SingleNode:       true,
		K2VAddr:          "127.0.0.1:0",
		DefaultAccessKey: "GKbench0000000000000000000",
		DefaultSecretKey: "benchsecretbenchsecretbenchsecret",
		DefaultBucket:    "bench",
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := n.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close(context.Background()) })
	return n
}

func benchK2V(b *testing.B, op string, concurrency int) {
	n := startNode(b)
	cfg := K2VConfig{
		Endpoint: "http://" + n.K2VAddr(), Bucket: "bench",
		AccessKeyID: "GKbench0000000000000000000", SecretAccessKey: "benchsecretbenchsecretbenchsecret",
		Ops: []string{op}, Concurrency: concurrency, Duration: benchDuration(),
		Partitions: 20, ItemsPerPartition: 100,
	}
	b.ResetTimer()
	var last Result
	for b.Loop() {
		res, err := RunK2V(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		last = res[0]
	}
	if last.Errors > 0 {
		b.Fatalf("%d errors, first: %v", last.Errors, last.FirstError)
	}
	b.ReportMetric(last.OpsPerSec, "ops/s")
	b.ReportMetric(float64(last.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(last.P99.Microseconds()), "p99-µs")
}

// Run with: go test ./bench -run '^$' -bench K2V -benchtime 1x
func BenchmarkK2VInsertC16(b *testing.B)    { benchK2V(b, "insert", 16) }
func BenchmarkK2VReadC16(b *testing.B)      { benchK2V(b, "read", 16) }
func BenchmarkK2VReadBatchC16(b *testing.B) { benchK2V(b, "readbatch", 16) }
func BenchmarkK2VInsertC1(b *testing.B)     { benchK2V(b, "insert", 1) }
func BenchmarkK2VReadC1(b *testing.B)       { benchK2V(b, "read", 1) }

// The workload itself works (runs with the normal tests).
func TestRunK2V(t *testing.T) {
	n := startNode(t)
	res, err := RunK2V(context.Background(), K2VConfig{
		Endpoint: "http://" + n.K2VAddr(), Bucket: "bench",
		AccessKeyID: "GKbench0000000000000000000", SecretAccessKey: "benchsecretbenchsecretbenchsecret",
		Concurrency: 2, Duration: 200 * time.Millisecond, Partitions: 3, ItemsPerPartition: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	for _, r := range res {
		if r.Errors > 0 || r.Ops == 0 || r.P50 <= 0 || r.P99 < r.P50 {
			t.Errorf("%s", r)
		}
	}
}

// benchDuration is the measurement time of each Go benchmark run:
// GRANGE_BENCH_DURATION (a Go duration) or 2s. Sustained rates (with
// memtable flushes and compactions) need 30s or more.
func benchDuration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("GRANGE_BENCH_DURATION")); err == nil && d > 0 {
		return d
	}
	return 2 * time.Second
}
