// Package backoff is the devices' retry delay: capped, exponential, with
// jitter. The jitter keeps the scanners of a store, and the agents of a
// chain after a power cut or a broker restart, from retrying in step; half
// of each delay stays fixed so that it never collapses to a busy loop.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff hands out the delays of one retry loop. The zero value with Min
// and Max set is ready; it is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration // the last delay before jitter; zero before the first
}

// Next is the next delay: Min, then twice the last, capped at Max, each
// drawn from its upper half.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(2*b.cur, b.Max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

// Reset starts again from Min, after a success.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d or until ctx ends, and reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
