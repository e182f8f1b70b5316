//go:build !linux

package blocks

import (
	"errors"
	"os"
)

// fcntlDirect: direct I/O is only used on Linux.
func fcntlDirect(f *os.File, on bool) error { return errors.ErrUnsupported }
