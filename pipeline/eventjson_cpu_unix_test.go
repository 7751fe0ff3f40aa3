//go:build unix

package pipeline

import (
	"syscall"
	"time"
)

// processCPUTime is the CPU time this process has used. Benchmarks report
// it per operation besides wall time, which other work on a shared machine
// inflates.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
