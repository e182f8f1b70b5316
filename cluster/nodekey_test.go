package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	layoutpkg "github.com/grangeio/grange/cluster/layout"
)

func TestNodeKeyPersists(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateNodeKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, nodeKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", st.Mode(), err)
	}
	k2, err := LoadOrCreateNodeKey(dir)
	if err != nil || k2.ID() != k1.ID() {
		t.Fatalf("node ID changed: %v → %v (%v)", k1.ID(), k2.ID(), err)
	}
	os.Chmod(filepath.Join(dir, nodeKeyFile), 0o644)
	if _, err := LoadOrCreateNodeKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key accepted: %v", err)
	}
	os.WriteFile(filepath.Join(dir, nodeKeyFile), []byte("short"), 0o600)
	if _, err := LoadOrCreateNodeKey(dir); err == nil {
		t.Error("damaged key accepted")
	}
}

func TestLayoutFile(t *testing.T) {
	dir := t.TempDir()
	if h, err := LoadHistory(dir); h != nil || err != nil {
		t.Fatalf("LoadHistory of an empty dir = %v, %v", h, err)
	}
	k, _ := GenerateNodeKey()
	l := layoutSingle(k.ID())
	if err := SaveHistory(dir, layoutpkg.HistoryFrom(l)); err != nil {
		t.Fatal(err)
	}
	got, err := LoadHistory(dir)
	if err != nil || got.Current().Version != 1 || !got.Current().IsStorageNode(k.ID()) {
		t.Fatalf("LoadHistory = %+v, %v", got, err)
	}
	// A file written by the single-layout format of earlier versions reads
	// as a history of that one version.
	if err := writeFileAtomic(filepath.Join(dir, layoutFile), l.Encode(nil), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = LoadHistory(dir)
	if err != nil || got.Current().Version != 1 || !got.Current().IsStorageNode(k.ID()) {
		t.Fatalf("LoadHistory of the old format = %+v, %v", got, err)
	}
}

func layoutSingle(id NodeID) *layoutpkg.Layout {
	return layoutpkg.SingleNode(id, layoutpkg.Role{Zone: "dc1", CapacityBytes: 1})
}
