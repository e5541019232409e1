package support

import (
	"context"
	"errors"
	"sync"
)

// Parts runs a daemon's parts (agent core, link, bus, scanners, API
// servers), each on its own goroutine, until their context ends: the
// storeagent daemon and the in-process demo run theirs the same way.
type Parts struct {
	ctx  context.Context
	wg   sync.WaitGroup
	mu   sync.Mutex // guards errs
	errs []error
}

// NewParts runs parts with ctx.
func NewParts(ctx context.Context) *Parts { return &Parts{ctx: ctx} }

// Go starts run(ctx) on its own goroutine.
func (p *Parts) Go(run func(context.Context) error) {
	p.wg.Go(func() {
		if err := run(p.ctx); err != nil && !errors.Is(err, context.Canceled) {
			p.mu.Lock()
			p.errs = append(p.errs, err)
			p.mu.Unlock()
		}
	})
}

// Wait waits until every part has returned and joins their errors (a part
// that stops because its context ended is not an error).
func (p *Parts) Wait() error {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs...)
}
