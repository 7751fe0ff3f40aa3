// Package runtest runs, in tests, a component with the Run(ctx) error
// shape (sources, stage runners, pollers) until the test stops it or ends.
package runtest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Start runs run on its own goroutine until the returned stop is called or
// the test ends (a cleanup calls stop). stop cancels run's context and
// waits for it to return, failing the test when run returned an error or
// did not return within 30 s. stop may be called more than once.
func Start(tb testing.TB, what string, run func(context.Context) error) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("%s: Run: %v", what, err)
				}
			case <-time.After(30 * time.Second):
				tb.Errorf("%s: Run did not return 30s after cancel", what)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}
