package k2v

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Baselines for the K2V benchmarks of bench/: what pebble alone does on
// this machine (synced puts from 16 goroutines), and what the item store
// does on top of it without HTTP. Compare ratios within one run:
//
//	go test ./k2v -run '^$' -bench 'Synced|ItemsInsert' -benchtime 2s
func BenchmarkPebbleSyncedPutC16(b *testing.B) {
	db, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: pebbleLogger{log: discard}})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	runParallel(b, 16, func(i int64) error {
		return db.Set([]byte(fmt.Sprintf("key%012d", i)), make([]byte, 100), pebble.Sync)
	})
}

func BenchmarkItemsInsertC16(b *testing.B) {
	db, err := Open(DBConfig{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	items, err := NewItems(db, ItemsConfig{Node: testNode})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	runParallel(b, 16, func(i int64) error {
		return items.Insert(ctx, BucketID{1}, Write{Partition: fmt.Sprintf("p%03d", i%100), Sort: fmt.Sprintf("s%012d", i), Value: Value{Data: value}})
	})
}

// runParallel calls fn b.N times from n goroutines and reports ops/s.
func runParallel(b *testing.B, n int, fn func(i int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range n {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := fn(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

var discard = slog.New(slog.DiscardHandler)
