// Package backoff holds the one retry schedule every vpipe client and
// runner uses: exponential from a minimum, capped at a maximum, with jitter
// so that the members of a consumer group, or the pollers of one process,
// do not retry in step ("Exponential Backoff And Jitter", AWS Architecture
// Blog, 2015: the "equal jitter" variant, which never waits less than half
// the step).
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay returns the wait before retry attempt+1 (attempt counts from 0):
// min·2^attempt capped at max, then a uniformly random value between half
// of it and all of it. A min or max of zero or less gives 0.
func Delay(attempt int, min, max time.Duration) time.Duration {
	if min <= 0 || max <= 0 {
		return 0
	}
	d := max
	if attempt >= 0 && attempt < 32 {
		if e := min << attempt; e > 0 && e < d {
			d = e
		}
	}
	return d/2 + rand.N(d/2+1)
}

// Wait blocks for d or until ctx ends, whichever comes first; it reports
// whether d passed (false: ctx ended, the caller should stop).
func Wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
