package blocks

import (
	"errors"

	"golang.org/x/sys/windows"
)

// availableBytes returns the space that the process can still use on the
// volume holding path, or -1 when it cannot be read.
func availableBytes(path string) int64 {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return -1
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return -1
	}
	return int64(avail)
}

// isNoSpace reports whether err is a full disk or an exceeded quota.
func isNoSpace(err error) bool {
	return errors.Is(err, windows.ERROR_DISK_FULL) || errors.Is(err, windows.ERROR_HANDLE_DISK_FULL) ||
		errors.Is(err, windows.ERROR_DISK_QUOTA_EXCEEDED)
}

// syncDir does nothing: Windows cannot open a directory and flush it like
// a file.
func syncDir(path string) error { return nil }
