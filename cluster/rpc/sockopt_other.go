//go:build !linux

package rpc

import "net"

func tuneTCP(c *net.TCPConn) { c.SetNoDelay(true) }
