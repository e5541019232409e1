package scanner

import (
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential delay with jitter. The jitter keeps the
// scanners of a store (and the stores of a chain, after a power cut) from
// retrying in step; half of each delay stays fixed so that it never
// collapses to a busy loop.
type backoff struct {
	min, max time.Duration
	cur      time.Duration // the last delay before jitter; zero before the first
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + rand.N(b.cur-half+1)
}

func (b *backoff) reset() { b.cur = 0 }
