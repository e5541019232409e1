package backoff

import (
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterUpToMax(t *testing.T) {
	b := &Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	wantCaps := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for round := range 50 {
		b.Reset()
		for i, c := range wantCaps {
			ceiling := c * time.Millisecond
			if d := b.Next(); d < ceiling/2 || d > ceiling {
				t.Fatalf("round %d, delay %d: %s, want %s to %s", round, i, d, ceiling/2, ceiling)
			}
		}
	}
}

func TestBackoffJitters(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 20 {
		b := &Backoff{Min: time.Second, Max: time.Second}
		seen[b.Next()] = true
	}
	if len(seen) < 2 {
		t.Fatalf("20 first delays were all %v: no jitter", seen)
	}
}
