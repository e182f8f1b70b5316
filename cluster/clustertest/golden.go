// Package clustertest holds test helpers shared by the cluster layer and
// the packages above it: golden files, FaultNet (TCP on loopback with
// drops, delays and partitions) and MemNet (an in-memory network for
// testing/synctest bubbles). It imports no grange package, so that any
// package's tests, the cluster package's own included, may use it; its
// networks satisfy cluster.Network structurally.
package clustertest

import (
	"os"
	"path/filepath"
	"testing"
)

// Golden compares got with the file testdata/name, or writes got there
// when update is set (the test package's -update flag).
func Golden(t testing.TB, name, got string, update bool) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update and review the diff):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
