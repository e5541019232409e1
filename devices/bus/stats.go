package bus

import "sync/atomic"

// Stats is what a technician needs to see of the bus. It counts, never
// names: no payload, identifier or answer appears here.
type Stats struct {
	Mode Mode
	// Connected says the bus is serving: the embedded broker listens, or
	// the agent is connected and subscribed to the store's broker.
	Connected bool
	// Devices is how many device connections the embedded broker holds
	// now; always 0 in external mode, where the store's broker knows.
	Devices int64

	// Messages counts the requests received, by topic kind: sightings,
	// identify, events, consent; refused and dropped ones included. One on
	// a topic that names no device, or retained, is counted in Rejects
	// only.
	Messages map[string]uint64
	// Rejects counts refused requests by Code, every code listed.
	Rejects map[Code]uint64
	// Dropped counts requests lost because their worker's queue was full,
	// or still queued at shutdown.
	Dropped uint64

	// Answers counts answers published; AnswerErrors those that could not
	// be (the device is gone, the broker is unreachable).
	Answers      uint64
	AnswerErrors uint64

	// AuthFailures counts connections the embedded broker refused: wrong
	// credentials, a client id that is not the device's, a will.
	AuthFailures uint64
	// Denied counts publishes and subscriptions the embedded broker
	// refused because the topic is not the device's.
	Denied uint64
	// Reconnects counts connections to the store's broker after the first.
	Reconnects uint64
}

// counters is the live form of Stats: written from broker callbacks and
// workers, read by Stats from any goroutine. Every field is atomic, so no
// callback ever waits for a lock.
type counters struct {
	connected    atomic.Bool
	devices      atomic.Int64
	messages     [numTopics]atomic.Uint64
	rejects      map[Code]*atomic.Uint64 // keys fixed at creation, never written after
	dropped      atomic.Uint64
	answers      atomic.Uint64
	answerErrors atomic.Uint64
	authFailures atomic.Uint64
	denied       atomic.Uint64
	reconnects   atomic.Uint64
}

func newCounters() *counters {
	c := &counters{rejects: make(map[Code]*atomic.Uint64, len(codes))}
	for _, code := range codes {
		c.rejects[code] = new(atomic.Uint64)
	}
	return c
}

func (c *counters) reject(code Code) {
	if n, ok := c.rejects[code]; ok {
		n.Add(1)
	}
}

func (c *counters) snapshot(mode Mode) Stats {
	s := Stats{
		Mode:         mode,
		Connected:    c.connected.Load(),
		Devices:      c.devices.Load(),
		Messages:     make(map[string]uint64, numTopics),
		Rejects:      make(map[Code]uint64, len(c.rejects)),
		Dropped:      c.dropped.Load(),
		Answers:      c.answers.Load(),
		AnswerErrors: c.answerErrors.Load(),
		AuthFailures: c.authFailures.Load(),
		Denied:       c.denied.Load(),
		Reconnects:   c.reconnects.Load(),
	}
	for k := range numTopics {
		s.Messages[k.String()] = c.messages[k].Load()
	}
	for code, n := range c.rejects {
		s.Rejects[code] = n.Load()
	}
	return s
}
