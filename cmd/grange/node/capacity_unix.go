//go:build unix

package node

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// freeSpace returns the space available to unprivileged writers on the
// file systems of dirs, each file system counted once. A directory that
// does not exist yet is measured at its nearest existing parent; when
// nothing can be measured, defaultCapacity.
func freeSpace(dirs []string) uint64 {
	seen := make(map[unix.Fsid]bool)
	var sum uint64
	for _, d := range dirs {
		if d == "" {
			continue
		}
		var st unix.Statfs_t
		if existingParent(d, func(p string) bool { return unix.Statfs(p, &st) == nil }) == "" || st.Blocks == 0 {
			continue
		}
		if seen[st.Fsid] {
			continue
		}
		seen[st.Fsid] = true
		sum += uint64(st.Bavail) * uint64(st.Bsize)
	}
	if sum == 0 {
		return defaultCapacity
	}
	return sum
}

// existingParent returns the first of d and its parents for which ok is
// true, or "".
func existingParent(d string, ok func(string) bool) string {
	d, err := filepath.Abs(d)
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(d); err == nil && ok(d) {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}
