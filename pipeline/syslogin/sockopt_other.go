//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package syslogin

import (
	"errors"
	"net"
)

// listenUDP binds a UDP socket; several sockets on one address need
// SO_REUSEPORT, which this platform build does not set.
func listenUDP(addr string, reuse bool) (*net.UDPConn, error) {
	if reuse {
		return nil, errors.New("sockets > 1 needs SO_REUSEPORT, not supported on this platform")
	}
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return net.ListenUDP("udp", a)
}

func readBuffer(*net.UDPConn) (int, bool) { return 0, false }
