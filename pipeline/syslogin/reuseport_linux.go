//go:build linux && (amd64 || 386 || arm)

package syslogin

// soReusePort is SO_REUSEPORT from <asm-generic/socket.h>, which the frozen
// syscall package does not define for these older ports.
const soReusePort = 0xf
