//go:build !unix

package pipeline

import "time"

// processCPUTime is not measured on this system: benchmarks then report
// no CPU time.
func processCPUTime() time.Duration { return 0 }
