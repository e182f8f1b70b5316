package node

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/grangeio/grange/blocks"
)

func TestDataCapacity(t *testing.T) {
	dir := t.TempDir()
	free := dataCapacity([]blocks.Dir{{Path: dir}})
	if free == 0 {
		t.Fatal("no free space measured")
	}
	for _, tt := range []struct {
		name string
		dirs []blocks.Dir
		want uint64
	}{
		{"configured", []blocks.Dir{{Path: "/a", Capacity: 2e12}, {Path: "/b", Capacity: 5e11}}, 25e11},
		{"read-only counts for nothing", []blocks.Dir{{Path: "/a", Capacity: 1e12}, {Path: "/old", ReadOnly: true}}, 1e12},
		// one file system counted once, measured at an existing parent
		{"unsized on one file system", []blocks.Dir{{Path: dir}, {Path: filepath.Join(dir, "not", "yet")}}, free},
		{"configured and unsized", []blocks.Dir{{Path: "/a", Capacity: 1e9}, {Path: dir}}, 1e9 + free},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := dataCapacity(tt.dirs)
			// free space moves while tests run: allow 1%
			if diff := int64(got) - int64(tt.want); diff > int64(tt.want/100) || -diff > int64(tt.want/100) {
				t.Errorf("dataCapacity = %d, want %d", got, tt.want)
			}
		})
	}
}

// A single node's first layout offers the capacities of its data
// directories.
func TestSingleNodeCapacity(t *testing.T) {
	dir := t.TempDir()
	n, err := New(Config{
		MetadataDir: filepath.Join(dir, "meta"),
		DataDirs:    []blocks.Dir{{Path: filepath.Join(dir, "d1"), Capacity: 3e12}, {Path: filepath.Join(dir, "d2"), Capacity: 1e12}},
		SingleNode:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	l := n.Cluster().Layout()
	if r, ok := l.Roles[n.ID()]; !ok || r.CapacityBytes != 4e12 {
		t.Errorf("single-node role %+v, want a capacity of 4e12", l.Roles[n.ID()])
	}
}
