package rpc

import (
	"net"

	"golang.org/x/sys/unix"
)

// notSentLowat bounds the bytes queued unsent in the kernel: a write
// blocks while more are waiting. Our own queue, not the kernel's, then holds
// bulk data, so an Interactive frame overtakes it (HTTP/2 servers do the
// same for prioritization).
const notSentLowat = 128 << 10

func tuneTCP(c *net.TCPConn) {
	c.SetNoDelay(true)
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
		})
	}
}
