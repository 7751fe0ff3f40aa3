//go:build !unix

package golden

import "time"

// CPUTime is 0 where the process CPU time is not available; ReportRate
// then reports wall-time rates only.
func CPUTime() time.Duration { return 0 }
