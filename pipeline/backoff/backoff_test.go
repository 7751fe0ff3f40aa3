package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 5 * time.Second
	tests := []struct {
		name     string
		attempt  int
		min, max time.Duration
		want     time.Duration // the step before jitter: Delay is in [want/2, want]
	}{
		{"first", 0, lo, hi, lo},
		{"doubles", 3, lo, hi, 800 * time.Millisecond},
		{"capped", 10, lo, hi, hi},
		{"shift overflow", 62, lo, hi, hi},
		{"negative attempt", -1, lo, hi, hi},
		{"min above max", 0, 2 * hi, hi, hi},
		{"zero min", 4, 0, hi, 0},
		{"zero max", 4, lo, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 200 {
				d := Delay(tt.attempt, tt.min, tt.max)
				if d < tt.want/2 || d > tt.want {
					t.Fatalf("Delay(%d, %v, %v) = %v, want in [%v, %v]", tt.attempt, tt.min, tt.max, d, tt.want/2, tt.want)
				}
			}
		})
	}
}

func TestDelayJitters(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 100 {
		seen[Delay(5, time.Millisecond, time.Second)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("100 delays took only %d values: no jitter", len(seen))
	}
}

func TestWait(t *testing.T) {
	if !Wait(context.Background(), time.Millisecond) {
		t.Fatal("Wait with a live context reported false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Wait(ctx, time.Hour) {
		t.Fatal("Wait with an ended context reported true")
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Wait with an ended context took %v", el)
	}
	if Wait(ctx, 0) {
		t.Fatal("Wait(0) with an ended context reported true")
	}
	if !Wait(context.Background(), 0) {
		t.Fatal("Wait(0) with a live context reported false")
	}
}
