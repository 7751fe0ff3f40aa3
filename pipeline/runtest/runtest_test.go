package runtest

import (
	"context"
	"testing"
)

func TestStart(t *testing.T) {
	started := make(chan struct{})
	returned := false
	stop := Start(t, "component", func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		returned = true
		return nil
	})
	<-started
	stop()
	if !returned {
		t.Fatal("stop returned before Run did")
	}
	stop() // a second call is harmless
}
