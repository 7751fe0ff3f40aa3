//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package syslogin

import (
	"context"
	"net"
	"runtime"
	"syscall"
)

// listenUDP binds a UDP socket, with SO_REUSEPORT when reuse is set so
// that several sockets share the address and the kernel spreads senders
// over them (golang.org/x/sys is not a dependency: syscall suffices).
func listenUDP(addr string, reuse bool) (*net.UDPConn, error) {
	lc := net.ListenConfig{}
	if reuse {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// readBuffer returns the socket's effective SO_RCVBUF as requested (Linux
// reports twice the usable size it grants).
func readBuffer(c *net.UDPConn) (int, bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var n int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		n, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || gerr != nil {
		return 0, false
	}
	if runtime.GOOS == "linux" {
		n /= 2
	}
	return n, true
}
