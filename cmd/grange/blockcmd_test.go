package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grangeio/grange/blocks"
	"github.com/grangeio/grange/k2v"
)

// The block and worker verbs against a real node: a fresh store, then a
// block referenced on this node that no node holds, whose resync fails.
func TestCLIBlocks(t *testing.T) {
	dir, n := startLocal(t)
	d := []string{"--data-dir", dir}
	cli := func(args ...string) string { return mustRun(t, append(d, args...)...) }

	if out := cli("block", "list-errors"); out != "No block errors.\n" {
		t.Fatalf("block list-errors on a fresh node:\n%s", out)
	}
	out := cli("block", "stats")
	for _, want := range []string{`Blocks stored:\s+0\n`, `On disk:\s+0 B\n`, `Resync queue:\s+\d+\n`, `Blocks in resync error:\s+0\n`, `Scrub:\s+idle, no pass yet\n`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Fatalf("block stats does not match %q:\n%s", want, out)
		}
	}
	out = cli("worker", "list")
	for _, want := range []string{"ID  NAME", "PROGRESS", "LAST ERROR", "table sync", "block resync", "queue ", "block scrub"} {
		if !strings.Contains(out, want) {
			t.Fatalf("worker list lacks %q:\n%s", want, out)
		}
	}

	if out := cli("repair", "blocks"); !strings.Contains(out, "Block resync queued") {
		t.Fatalf("repair blocks:\n%s", out)
	}
	// a fresh node has no scrub pass under way to pause
	if out, err := run(t, append(d, "repair", "scrub", "pause")...); err == nil || !strings.Contains(err.Error(), "no scrub is running") {
		t.Fatalf("scrub pause with no pass: %v\n%s", err, out)
	}
	if out := cli("repair", "scrub", "start"); !strings.Contains(out, "Scrub started") {
		t.Fatalf("scrub start:\n%s", out)
	}
	if out := cli("repair", "scrub", "cancel"); !strings.Contains(out, "Scrub cancelled") {
		t.Fatalf("scrub cancel:\n%s", out)
	}
	for _, args := range [][]string{{"repair", "scrub", "stop"}, {"repair", "scrub"}} {
		if out, err := run(t, append(d, args...)...); err == nil {
			t.Errorf("grange %s accepted:\n%s", strings.Join(args, " "), out)
		}
	}

	// a reference to a block no node stores: resync cannot fetch it
	h := blocks.Sum([]byte("referenced, never stored"))
	err := n.Replicator().Update(context.Background(), func(b *k2v.Batch) error {
		return n.Blocks().AddRef(b, h, []byte("test-owner"))
	})
	if err != nil {
		t.Fatal(err)
	}
	out = waitOutput(t, 20*time.Second, func() string { return cli("block", "list-errors") }, regexp.MustCompile(h.String()))
	row := regexp.MustCompile(h.String() + `\s+1\s+\d+s ago\s+in \d+s\s+no other node should hold this block\n`)
	if !row.MatchString(out) || !strings.Contains(out, "1 block(s) in error") {
		t.Fatalf("block list-errors with a missing block:\n%s", out)
	}
	if out := cli("block", "stats"); !regexp.MustCompile(`Blocks in resync error:\s+1 \(grange block list-errors\)`).MatchString(out) {
		t.Fatalf("block stats with a block in error:\n%s", out)
	}
	out = cli("worker", "list", "--errors")
	if !strings.Contains(out, "block resync") || !strings.Contains(out, "(1 blocks in error)") || !strings.Contains(out, "no other node should hold this block") || strings.Contains(out, "block scrub") {
		t.Fatalf("worker list --errors:\n%s", out)
	}
}

// waitOutput calls get until its output matches want, or fails the test
// at the deadline.
func waitOutput(t *testing.T, timeout time.Duration, get func() string, want *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := get()
		if want.MatchString(out) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, output still does not match %q:\n%s", timeout, want, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// skipWithStubStore skips a test that stores blocks while blocks/ has a
// stand-in store that keeps nothing.
func skipWithStubStore(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join("..", "..", "blocks", "zz_stub.go")); err == nil {
		t.Skip("blocks/zz_stub.go: the block store is a stub that stores nothing")
	}
}

// With blocks stored, `block stats` counts them and a scrub pass reads
// them all back.
func TestCLIBlockStatsWithData(t *testing.T) {
	skipWithStubStore(t)
	dir, n := startLocal(t)
	d := []string{"--data-dir", dir}
	cli := func(args ...string) string { return mustRun(t, append(d, args...)...) }

	// three full blocks and a short one, half of each compressible
	data := make([]byte, 3<<20+4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(data); i += 2 {
		data[i] = byte(rng.Uint32())
	}
	var stored []blocks.BlockInfo
	if _, err := n.Blocks().WriteStream(context.Background(), bytes.NewReader(data), func(_ int, b blocks.BlockInfo) error {
		stored = append(stored, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 4 {
		t.Fatalf("%d blocks written, want 4", len(stored))
	}
	out := cli("block", "stats")
	dataDir := regexp.MustCompile(`Data directories:\s+` + regexp.QuoteMeta(filepath.Join(dir, "data")) + `\n`)
	if !regexp.MustCompile(`Blocks stored:\s+4\n`).MatchString(out) || !strings.Contains(out, "before compression") || !strings.Contains(out, "3.1 MB written") || !dataDir.MatchString(out) {
		t.Fatalf("block stats with 4 blocks:\n%s", out)
	}

	cli("repair", "scrub", "start")
	waitOutput(t, 20*time.Second, func() string { return cli("worker", "list") }, regexp.MustCompile(`block scrub\s+idle\s+4/4`))
	if out := cli("block", "stats"); !strings.Contains(out, "idle, last pass ended") {
		t.Fatalf("block stats after a scrub pass:\n%s", out)
	}
}
