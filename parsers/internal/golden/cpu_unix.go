//go:build unix

package golden

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time this process has used. Benchmarks report rates
// per CPU second besides wall time, which other work on a shared machine
// inflates.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
