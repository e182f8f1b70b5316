package blocks

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestShares(t *testing.T) {
	cases := []struct {
		name string
		dirs []layoutDir
		want []int
	}{
		{"single without capacity", []layoutDir{{Path: "a"}}, []int{1024}},
		{"1:2:1", []layoutDir{{Path: "a", Capacity: 1}, {Path: "b", Capacity: 2}, {Path: "c", Capacity: 1}}, []int{256, 512, 256}},
		{"read-only gets none", []layoutDir{{Path: "a", Capacity: 5}, {Path: "b", Capacity: 5, ReadOnly: true}}, []int{1024, 0}},
		{"thirds round without loss", []layoutDir{{Path: "a", Capacity: 1}, {Path: "b", Capacity: 1}, {Path: "c", Capacity: 1}}, []int{341, 341, 342}},
		{"huge capacities", []layoutDir{{Path: "a", Capacity: 1 << 62}, {Path: "b", Capacity: 1 << 62}}, []int{512, 512}},
	}
	for _, tc := range cases {
		if got := shares(tc.dirs); !slices.Equal(got, tc.want) {
			t.Errorf("%s: shares = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// primaries counts the partitions of each directory.
func primaries(l *dataLayout) []int {
	n := make([]int, len(l.Dirs))
	for _, p := range l.Primary {
		n[p]++
	}
	return n
}

func noBlocks(int) bool { return false }

func mustLayout(t *testing.T, prev *dataLayout, dirs []layoutDir, hasBlocks func(int) bool) (*dataLayout, int) {
	t.Helper()
	l, moved := newLayout(prev, dirs, hasBlocks)
	if err := l.check(); err != nil {
		t.Fatalf("new layout does not check: %v", err)
	}
	if got, want := primaries(l), shares(dirs); !slices.Equal(got, want) {
		t.Fatalf("primaries per directory = %v, want the shares %v", got, want)
	}
	for p, sec := range l.Secondary {
		if slices.Contains(sec, l.Primary[p]) {
			t.Fatalf("partition %d: primary %d is also a secondary %v", p, l.Primary[p], sec)
		}
	}
	return l, moved
}

func TestNewLayoutChanges(t *testing.T) {
	a, b, c := layoutDir{Path: "/a", Capacity: 100}, layoutDir{Path: "/b", Capacity: 100}, layoutDir{Path: "/c", Capacity: 200}
	l1, moved := mustLayout(t, nil, []layoutDir{a, b}, noBlocks)
	if moved != 0 || l1.hasSecondaries() {
		t.Fatalf("first layout: moved %d, secondaries %v", moved, l1.hasSecondaries())
	}

	// Same directories: nothing moves.
	same, moved := mustLayout(t, l1, []layoutDir{a, b}, noBlocks)
	if moved != 0 || !slices.Equal(same.Primary, l1.Primary) || same.hasSecondaries() {
		t.Fatalf("unchanged directories: moved %d", moved)
	}

	// Adding c (half of the capacity): exactly its share moves, half
	// from each old directory, and the old primary becomes a secondary.
	l2, moved := mustLayout(t, l1, []layoutDir{a, b, c}, noBlocks)
	if moved != 512 {
		t.Fatalf("adding a directory of half the capacity moved %d partitions, want 512", moved)
	}
	for p := range placementPartitions {
		switch {
		case l2.Primary[p] == l1.Primary[p]:
			if len(l2.Secondary[p]) != 0 {
				t.Fatalf("partition %d did not move but has secondaries %v", p, l2.Secondary[p])
			}
		case l2.Primary[p] != 2 || !slices.Equal(l2.Secondary[p], []uint16{l1.Primary[p]}):
			t.Fatalf("partition %d moved from %d to %d with secondaries %v", p, l1.Primary[p], l2.Primary[p], l2.Secondary[p])
		}
	}

	// Order does not matter, paths do: the same directories listed
	// differently keep their partitions.
	l3, moved := mustLayout(t, l2.withoutSecondaries(), []layoutDir{c, a, b}, noBlocks)
	if moved != 0 {
		t.Fatalf("reordering directories moved %d partitions", moved)
	}
	for p := range placementPartitions {
		if l3.Dirs[l3.Primary[p]] != l2.Dirs[l2.Primary[p]] {
			t.Fatalf("partition %d changed directory on reorder", p)
		}
	}

	// a becomes read-only: its partitions go to b and c, a stays as
	// their secondary so that its blocks are found until Rebalance.
	aro := a
	aro.ReadOnly = true
	l4, moved := mustLayout(t, l2.withoutSecondaries(), []layoutDir{aro, b, c}, noBlocks)
	if want := primaries(l2)[0]; moved != want {
		t.Fatalf("read-only a: moved %d, want its %d partitions", moved, want)
	}
	for p := range placementPartitions {
		if l2.Primary[p] == 0 && !slices.Equal(l4.Secondary[p], []uint16{0}) {
			t.Fatalf("partition %d left read-only a but has secondaries %v", p, l4.Secondary[p])
		}
	}

	// b removed: its partitions move, and no secondary names it.
	l5, moved := mustLayout(t, l2.withoutSecondaries(), []layoutDir{a, c}, noBlocks)
	if want := primaries(l2)[1]; moved < want {
		t.Fatalf("removing b moved %d partitions, want at least its %d", moved, want)
	}
	for p := range placementPartitions {
		for _, s := range l5.Secondary[p] {
			if l5.Dirs[s].Path == "/b" {
				t.Fatalf("partition %d: removed directory is still a secondary", p)
			}
		}
	}
}

func TestNewLayoutKeepsSecondaries(t *testing.T) {
	a, b, c := layoutDir{Path: "/a", Capacity: 1}, layoutDir{Path: "/b", Capacity: 1}, layoutDir{Path: "/c", Capacity: 1}
	l1, _ := mustLayout(t, nil, []layoutDir{a}, noBlocks)
	l2, _ := mustLayout(t, l1, []layoutDir{a, b}, noBlocks) // half of a's partitions to b
	l3, _ := mustLayout(t, l2, []layoutDir{a, b, c}, noBlocks)
	// Before any rebalance, a block of a partition that went a → b → c
	// may still be in a: both must stay secondaries.
	for p := range placementPartitions {
		if l3.Primary[p] == 2 && l2.Primary[p] == 1 {
			if !slices.Contains(l3.Secondary[p], 0) || !slices.Contains(l3.Secondary[p], 1) {
				t.Fatalf("partition %d moved twice: secondaries %v, want a and b", p, l3.Secondary[p])
			}
			return
		}
	}
	t.Fatalf("no partition moved a → b → c")
}

func TestNewLayoutDirWithBlocks(t *testing.T) {
	a, b := layoutDir{Path: "/a", Capacity: 1}, layoutDir{Path: "/b", Capacity: 1}
	hasB := func(i int) bool { return i == 1 }
	// A first layout over directories that hold blocks (the layout file
	// was lost): b is looked into for every partition.
	l, _ := mustLayout(t, nil, []layoutDir{a, b}, hasB)
	for p := range placementPartitions {
		want := []uint16{1}
		if l.Primary[p] == 1 {
			want = nil
		}
		if !slices.Equal(l.Secondary[p], want) {
			t.Fatalf("partition %d: secondaries %v, want %v", p, l.Secondary[p], want)
		}
	}
	// A directory already in the previous layout is not looked at.
	l1, _ := mustLayout(t, nil, []layoutDir{a, b}, noBlocks)
	l2, _ := mustLayout(t, l1, []layoutDir{a, b}, func(int) bool {
		t.Fatalf("hasBlocks called for a known directory")
		return false
	})
	if l2.hasSecondaries() {
		t.Fatalf("known directories became secondaries")
	}
}

func TestLayoutFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layout.json")
	l, err := loadLayout(path)
	if l != nil || err != nil {
		t.Fatalf("loadLayout of a missing file = %v, %v", l, err)
	}
	l1, _ := mustLayout(t, nil, []layoutDir{{Path: "/a", Capacity: 1}}, noBlocks)
	l2, _ := mustLayout(t, l1, []layoutDir{{Path: "/a", Capacity: 1}, {Path: "/b", Capacity: 3, ReadOnly: false}}, noBlocks)
	if err := saveLayout(path, l2); err != nil {
		t.Fatal(err)
	}
	got, err := loadLayout(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, l2) {
		t.Fatalf("layout file round trip differs")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("saveLayout left %d files", len(entries))
	}

	for name, content := range map[string]string{
		"not json":       "{",
		"future version": `{"version":2}`,
		"short":          `{"version":1,"dirs":[{"path":"/a"}],"primary":[0],"secondary":[[]]}`,
		"out of range":   strings.Replace(mustJSON(t, l2), `"primary":[0`, `"primary":[7`, 1),
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadLayout(path); err == nil || !strings.Contains(err.Error(), "remove the file") {
			t.Errorf("%s: loadLayout error = %v, want one that says what to do", name, err)
		}
	}
}

func mustJSON(t *testing.T, l *dataLayout) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "l.json")
	if err := saveLayout(path, l); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
