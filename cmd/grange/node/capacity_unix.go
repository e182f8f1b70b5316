//go:build unix

package node

import "golang.org/x/sys/unix"

// capacityOf returns the size of the file system holding the first
// existing directory of dirs: the capacity a single node offers.
func capacityOf(dirs ...string) uint64 {
	for _, d := range dirs {
		var st unix.Statfs_t
		if d != "" && unix.Statfs(d, &st) == nil && st.Blocks > 0 {
			return st.Blocks * uint64(st.Bsize)
		}
	}
	return defaultCapacity
}
