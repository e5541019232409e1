package support

import (
	"context"
	"errors"
	"testing"
)

// Wait returns once every part has, with the errors of those that failed;
// a part that stops because its context ended is not an error.
func TestPartsJoinErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := NewParts(ctx)
	bad := errors.New("scanner port gone")
	stopped := 0
	done := make(chan struct{}, 3)
	for range 3 {
		p.Go(func(ctx context.Context) error { <-ctx.Done(); done <- struct{}{}; return ctx.Err() })
	}
	p.Go(func(context.Context) error { return bad })
	cancel()
	err := p.Wait()
	for len(done) > 0 {
		<-done
		stopped++
	}
	if stopped != 3 || !errors.Is(err, bad) || errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: %v after %d of 3 parts stopped; want only the scanner's error, all stopped", err, stopped)
	}
}
