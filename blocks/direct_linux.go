package blocks

import (
	"os"

	"golang.org/x/sys/unix"
)

// fcntlDirect turns O_DIRECT on or off for f (Linux lets fcntl change it
// on an open file). It fails where the file system has no direct I/O
// (tmpfs, some FUSE and network file systems).
func fcntlDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		var fl int
		if fl, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0); ferr != nil {
			return
		}
		if on {
			fl |= unix.O_DIRECT
		} else {
			fl &^= unix.O_DIRECT
		}
		_, ferr = unix.FcntlInt(fd, unix.F_SETFL, fl)
	})
	if err != nil {
		return err
	}
	return ferr
}
