//go:build (linux && !(amd64 || 386 || arm)) || darwin || freebsd || netbsd || openbsd || dragonfly

package syslogin

import "syscall"

// soReusePort is SO_REUSEPORT.
const soReusePort = syscall.SO_REUSEPORT
