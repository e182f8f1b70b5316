package blocks

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
)

// The data layout spreads blocks over a node's data directories in
// proportion to their capacities (Garage's DataLayout, src/block/layout.rs).
//
// A block belongs to one of placementPartitions placement partitions, read
// from bytes 2 and 3 of its hash. Not byte 0, which is the block's cluster
// partition: a node stores only the cluster partitions the cluster layout
// gives it, so partitions cut along byte 0 would be unevenly filled. Each
// placement partition has one primary directory, where its blocks are
// written, and a list of secondary directories, where some of its blocks
// may still be after the directory list changed. The table is kept in a
// small JSON file so that a restart with the same directories places
// every block where it was.
//
// When the directory list changes, the new table keeps every partition on
// its primary unless that directory left, became read-only, or holds more
// than its new share: only those partitions move, to the directories below
// their share, and the directory they left becomes a secondary until
// Rebalance has moved their blocks. A directory new to the table that
// already holds blocks becomes a secondary of every partition, so nothing
// it holds is lost. Readers look in the primary, then the secondaries, then
// every directory, so a lost or stale table costs time, never a block.
const placementPartitions = 1024

// layoutFormat is the version of the layout file's format.
const layoutFormat = 1

// placementOf returns the placement partition of a block.
func placementOf(h Hash) int {
	return int(binary.BigEndian.Uint16(h[2:4])) % placementPartitions
}

// dataLayout is the persisted table. Directory indices in Primary and
// Secondary index Dirs, which is the store's directory list in order. A
// dataLayout is never modified once published; changes make a new one.
type dataLayout struct {
	Version   int         `json:"version"`
	Dirs      []layoutDir `json:"dirs"`
	Primary   []uint16    `json:"primary"`   // placementPartitions entries
	Secondary [][]uint16  `json:"secondary"` // placementPartitions entries, most empty
}

type layoutDir struct {
	Path     string `json:"path"`
	Capacity int64  `json:"capacity"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// shares returns how many partitions each directory should be primary
// for: in proportion to capacity, 0 for read-only directories, summing to
// placementPartitions. The bounds of each share are rounded from the
// running sum of capacities, so rounding errors never add up. A single
// directory may have capacity 0; it gets everything.
func shares(dirs []layoutDir) []int {
	weight := func(d layoutDir) uint64 {
		if d.ReadOnly {
			return 0
		}
		if len(dirs) == 1 && d.Capacity == 0 {
			return 1
		}
		return uint64(d.Capacity)
	}
	var total uint64
	for _, d := range dirs {
		total += weight(d)
	}
	out := make([]int, len(dirs))
	var cum uint64
	bound := func() int {
		// cum * placementPartitions / total without overflow: cum ≤
		// total, so the high word is below total and Div64 is safe.
		hi, lo := bits.Mul64(cum, placementPartitions)
		q, _ := bits.Div64(hi, lo, total)
		return int(q)
	}
	for i, d := range dirs {
		begin := bound()
		cum += weight(d)
		out[i] = bound() - begin
	}
	return out
}

// newLayout returns the layout for dirs, moving as few partitions as
// possible from prev (nil for a first layout), and how many partitions
// changed primary. hasBlocks reports whether the i-th of dirs already
// holds blocks. dirs must have been checked by checkDirs.
func newLayout(prev *dataLayout, dirs []layoutDir, hasBlocks func(i int) bool) (*dataLayout, int) {
	target := shares(dirs)
	l := &dataLayout{
		Version:   layoutFormat,
		Dirs:      slices.Clone(dirs),
		Primary:   make([]uint16, placementPartitions),
		Secondary: make([][]uint16, placementPartitions),
	}
	index := make(map[string]int, len(dirs))
	for i, d := range dirs {
		index[d.Path] = i
	}
	// newIndex translates an index of prev.Dirs; -1 for a directory that
	// left.
	newIndex := func(old uint16) int {
		if prev == nil || int(old) >= len(prev.Dirs) {
			return -1
		}
		if i, ok := index[prev.Dirs[old].Path]; ok {
			return i
		}
		return -1
	}
	addSecondary := func(p, dir int) {
		if dir >= 0 && !slices.Contains(l.Secondary[p], uint16(dir)) {
			l.Secondary[p] = append(l.Secondary[p], uint16(dir))
		}
	}

	// Partitions stay on their primary while it can take them, in
	// partition order; the rest are unassigned.
	owned := make([][]int, len(dirs))
	var unassigned []int
	for p := range placementPartitions {
		if prev != nil {
			for _, old := range prev.Secondary[p] {
				addSecondary(p, newIndex(old))
			}
		}
		i := -1
		if prev != nil {
			i = newIndex(prev.Primary[p])
		}
		switch {
		case i < 0:
			unassigned = append(unassigned, p)
		case len(owned[i]) < target[i]:
			owned[i] = append(owned[i], p)
		default: // read-only now, or above its share
			unassigned = append(unassigned, p)
			addSecondary(p, i)
		}
	}
	moved := 0
	for i := range dirs {
		for _, p := range owned[i] {
			l.Primary[p] = uint16(i)
		}
		for len(owned[i]) < target[i] {
			p := unassigned[0]
			unassigned = unassigned[1:]
			owned[i] = append(owned[i], p)
			l.Primary[p] = uint16(i)
			l.Secondary[p] = slices.DeleteFunc(l.Secondary[p], func(d uint16) bool { return int(d) == i })
			if prev != nil {
				moved++
			}
		}
	}
	if len(unassigned) != 0 {
		panic(fmt.Sprintf("blocks: layout: %d partitions left unassigned", len(unassigned)))
	}

	// A directory the previous table did not know may hold blocks from
	// an earlier life (the layout file was lost, the directory was
	// removed and added back): make it a secondary everywhere.
	for i, d := range dirs {
		if prev != nil && slices.ContainsFunc(prev.Dirs, func(o layoutDir) bool { return o.Path == d.Path }) {
			continue
		}
		if !hasBlocks(i) {
			continue
		}
		for p := range placementPartitions {
			if int(l.Primary[p]) != i {
				addSecondary(p, i)
			}
		}
	}
	for p := range l.Secondary {
		if len(l.Secondary[p]) == 0 {
			l.Secondary[p] = nil
		}
	}
	return l, moved
}

// withoutSecondaries returns a copy of l whose partitions have only their
// primary: what Rebalance publishes once every block is there.
func (l *dataLayout) withoutSecondaries() *dataLayout {
	return &dataLayout{
		Version:   l.Version,
		Dirs:      l.Dirs,
		Primary:   l.Primary,
		Secondary: make([][]uint16, placementPartitions),
	}
}

// hasSecondaries reports whether some partition has a secondary.
func (l *dataLayout) hasSecondaries() bool {
	return slices.ContainsFunc(l.Secondary, func(s []uint16) bool { return len(s) > 0 })
}

// check validates a layout read from disk.
func (l *dataLayout) check() error {
	if l.Version != layoutFormat {
		return fmt.Errorf("unknown format version %d", l.Version)
	}
	if len(l.Dirs) == 0 || len(l.Dirs) > 1<<16 {
		return fmt.Errorf("%d directories", len(l.Dirs))
	}
	if len(l.Primary) != placementPartitions || len(l.Secondary) != placementPartitions {
		return fmt.Errorf("%d primaries and %d secondaries, want %d", len(l.Primary), len(l.Secondary), placementPartitions)
	}
	for p := range placementPartitions {
		if int(l.Primary[p]) >= len(l.Dirs) {
			return fmt.Errorf("partition %d: primary %d out of range", p, l.Primary[p])
		}
		for _, s := range l.Secondary[p] {
			if int(s) >= len(l.Dirs) {
				return fmt.Errorf("partition %d: secondary %d out of range", p, s)
			}
		}
	}
	return nil
}

// loadLayout reads the layout file; a missing file is (nil, nil).
func loadLayout(path string) (*dataLayout, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("blocks: read data layout: %w", err)
	}
	var l dataLayout
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("blocks: data layout %s: %w (remove the file to rebuild it; blocks stay readable)", path, err)
	}
	if err := l.check(); err != nil {
		return nil, fmt.Errorf("blocks: data layout %s: %v (remove the file to rebuild it; blocks stay readable)", path, err)
	}
	for p := range l.Secondary {
		if len(l.Secondary[p]) == 0 {
			l.Secondary[p] = nil
		}
	}
	return &l, nil
}

// saveLayout writes the layout file atomically and durably, whatever the
// store's Fsync setting: it is small and rarely written, and a layout lost
// in a crash would leave blocks where readers look last.
func saveLayout(path string, l *dataLayout) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("blocks: encode data layout: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+tempMarker+"*")
	if err != nil {
		return fmt.Errorf("blocks: write data layout: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("blocks: write data layout %s: %w", path, err)
	}
	return nil
}
