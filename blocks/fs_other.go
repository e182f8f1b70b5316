//go:build !unix && !windows

package blocks

// availableBytes is unknown (-1) on this system.
func availableBytes(path string) int64 { return -1 }

// isNoSpace cannot tell a full disk on this system.
func isNoSpace(err error) bool { return false }

// syncDir does nothing: this system has no way to sync a directory.
func syncDir(path string) error { return nil }
