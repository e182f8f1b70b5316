package node

import "github.com/grangeio/grange/blocks"

// defaultCapacity is the capacity recorded for a single node when the size
// of its file system cannot be read. It only matters once other nodes join.
const defaultCapacity = 1 << 40

// dataCapacity is the capacity a single node offers on first start: the
// sum of the capacities configured for its writable data directories,
// plus, for those without one, the free space of their file systems
// (each file system counted once). Read-only directories take no new
// blocks and count for nothing.
func dataCapacity(dirs []blocks.Dir) uint64 {
	var sum uint64
	var unsized []string
	for _, d := range dirs {
		switch {
		case d.ReadOnly:
		case d.Capacity > 0:
			sum += uint64(d.Capacity)
		default:
			unsized = append(unsized, d.Path)
		}
	}
	if len(unsized) > 0 {
		sum += freeSpace(unsized)
	}
	if sum == 0 {
		return defaultCapacity
	}
	return sum
}
