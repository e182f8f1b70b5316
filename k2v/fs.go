package k2v

import "github.com/cockroachdb/pebble/v2/vfs"

// FS is the file system the database lives on. Only k2v imports pebble;
// callers that need an in-memory database for tests use NewMemFS.
type FS = vfs.FS

// NewMemFS returns an in-memory file system. A database reopened on the
// same FS finds its data again, which tests of restarts rely on.
func NewMemFS() FS { return vfs.NewMem() }
