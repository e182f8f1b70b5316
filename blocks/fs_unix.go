//go:build unix

package blocks

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// availableBytes returns the space that unprivileged writers can still use
// on the file system holding path, or -1 when it cannot be read.
func availableBytes(path string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// isNoSpace reports whether err is a full disk or an exceeded quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// syncDir makes the entries of a directory (files renamed or created in
// it) durable.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
