package central

import (
	"context"
	"fmt"

	"github.com/storeagent/storeagent/sync/link"
)

// Fault hooks: test and demo aids. They let a test make the central
// misbehave on purpose, to prove that an agent copes. Production code has
// no use for them.

// PublishRaw publishes payload, exactly as given, on topic at QoS 1 and
// waits for the broker's PUBACK. Use it to inject what the central would
// never send: unsigned or wrongly signed messages, a change replayed from
// another store, a duplicated or reordered chunk. It bypasses every check
// of the central and needs Run.
func (c *Central) PublishRaw(ctx context.Context, topic string, payload []byte, retained bool) error {
	p := c.client.Load()
	if p == nil {
		return ErrNotRunning
	}
	tok := (*p).Publish(topic, 1, retained, payload)
	if err := link.Wait(ctx, tok, publishTimeout); err != nil {
		return fmt.Errorf("publish raw: %w", err)
	}
	return nil
}

// DropAcks makes the central record, but not acknowledge, the next n
// accepted batches (of any agents): their agents time out and re-send, and
// the central drops the repeated events. It returns how many batches are
// still to be dropped, n included. n < 0 cancels what is pending.
func (c *Central) DropAcks(n int) int64 {
	if n < 0 {
		c.dropAcks.Store(0)
		return 0
	}
	return c.dropAcks.Add(int64(n))
}
