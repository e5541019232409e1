// Package uplink drains the outbox to the central CDP: EventBatches in
// capture order, a window of batches in flight, each deleted from the
// outbox only when the central's signed Ack names its range.
//
// Batches partition the outbox's sequence space: a batch's first is the
// previous batch's last + 1, whatever records were shed in between, so the
// central can tell a lost batch (a gap) from shed telemetry (holes inside a
// batch) and accept only in order. After a reconnect, or when the oldest
// batch waits longer than the ack timeout, every unacked batch is re-sent
// from the oldest, in order (go-back-N); the central drops the repeated
// messageIds. The point up to which everything is acked is kept in the
// store with the deletes, so a restart resumes there.
//
// It must never delete an event the central has not acked, never send
// events out of capture order, and never send an event whose purpose the
// customer has since refused with identity (every batch goes through the
// agent's Recheck). It does not rely on paho's store for anything.
//
// The invariants its tests protect: 2 (exactly once in effect: at-least-once
// delivery, deduplicated by messageId), 3 (in order, across reconnects and
// restarts), 4 (re-check before leaving) and 8 (memory bounded by the window
// whatever the backlog).
package uplink

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/wire"
)

// Store is the subset of *store.DB the uplink needs.
type Store interface {
	ReadOutbox(from uint64, maxRecords, maxBytes int) ([]store.Record, error)
	QuarantineOutbox(seq uint64) error
	Update(fn func(*store.Tx) error) error
	View(fn func(*store.Tx) error) error
	Appended() <-chan struct{}
}

// Rechecker re-checks consent for records about to leave (the agent).
type Rechecker interface {
	Recheck(recs []store.Record) ([][]byte, error)
}

// Publisher publishes at QoS 1 (the link). Send returns once the message
// is on its way, without waiting for the broker's PUBACK: the window of
// batches in flight is a window on the wire too, not one batch per round
// trip to the broker. It fails at once when the link is down; a message
// lost after it left is re-sent by the ack timeout or the reconnect.
type Publisher interface {
	Send(topic string, payload []byte) error
}

// Config configures the drain.
type Config struct {
	Scope      wire.Scope    // tenant, store, agent: the events topic and the batch header
	MaxEvents  int           // events per batch, default 1000
	MaxBytes   int           // encoded batch size, default wire.MaxEventBatchSize
	Window     int           // batches in flight, default 32 (see withDefaults)
	Linger     time.Duration // wait for more events before a partial batch, default 10ms
	AckTimeout time.Duration // re-send when the oldest batch waits this long, default 10s
	MaxPace    time.Duration // the most a central's pace may slow us, default 10s
	Now        func() time.Time
	// ObserveAck, when set, is called on the drain's goroutine with each
	// acked batch's time from its last send to its ack (metrics). It must
	// not block.
	ObserveAck func(time.Duration)
}

func (c Config) withDefaults() Config {
	if c.MaxEvents <= 0 {
		c.MaxEvents = 1000
	}
	if c.MaxBytes <= 0 || c.MaxBytes > wire.MaxEventBatchSize {
		c.MaxBytes = wire.MaxEventBatchSize
	}
	if c.Window <= 0 {
		// 16 left a loopback drain waiting on the central's journal
		// fsyncs (~12% of two cores idle) and one 50 ms away bound by
		// the window: 32 drained 8% and 25% faster there. Each batch
		// in flight holds up to 256 KiB of events.
		c.Window = 32
	}
	if c.Linger <= 0 {
		c.Linger = 10 * time.Millisecond
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 10 * time.Second
	}
	if c.MaxPace <= 0 {
		c.MaxPace = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// MetaAcked is the store meta key of the point up to which every outbox
// sequence number is acked.
const MetaAcked = "uplink.acked"

// Stats are the drain's counters.
type Stats struct {
	BatchesSent   uint64 `json:"batchesSent"`
	BatchesResent uint64 `json:"batchesResent"`
	BatchesAcked  uint64 `json:"batchesAcked"`
	EventsSent    uint64 `json:"eventsSent"`
	EventsAcked   uint64 `json:"eventsAcked"`
	Quarantined   uint64 `json:"quarantined"` // records that could not travel, moved aside
	InFlight      int64  `json:"inFlight"`
	AckedThrough  uint64 `json:"ackedThrough"`
	LastAckAt     int64  `json:"lastAckAt,omitempty"` // ms
	AckLatencyMs  int64  `json:"ackLatencyMs"`        // of the last acked batch
	PaceMs        int64  `json:"paceMs"`
	// ClockSkewMs is the central's clock minus ours when the last Ack
	// that carried the central's time arrived (off by at most the
	// message's transit time); nil before any.
	ClockSkewMs *int64 `json:"clockSkewMs,omitempty"`
}

type counters struct {
	sent, resent, acked, eventsSent, eventsAcked, quarantined atomic.Uint64
	inflight, lastAckAt, ackLatency, pace                     atomic.Int64
	ackedThrough                                              atomic.Uint64
	skew                                                      atomic.Pointer[int64]
}

// Uplink is the drain. Run owns its state; HandleAck and Reconnected only
// signal it.
type Uplink struct {
	cfg   Config
	st    Store
	rc    Rechecker
	pub   Publisher
	log   *slog.Logger
	topic string

	acks   chan wire.Ack
	resend chan struct{}
	c      counters
}

// New makes an uplink.
func New(cfg Config, st Store, rc Rechecker, pub Publisher, log *slog.Logger) (*Uplink, error) {
	cfg = cfg.withDefaults()
	topic, err := cfg.Scope.Topic(wire.TopicEvents)
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	return &Uplink{
		cfg: cfg, st: st, rc: rc, pub: pub, log: log.With("component", "uplink"), topic: topic,
		acks: make(chan wire.Ack, 256), resend: make(chan struct{}, 1),
	}, nil
}

// HandleAck passes a verified Ack to the drain. It never blocks: an ack
// that finds the queue full is dropped, and the batch it named is re-sent
// and acked again.
func (u *Uplink) HandleAck(a wire.Ack) {
	if a.At > 0 {
		skew := a.At - time.Now().UnixMilli()
		u.c.skew.Store(&skew)
	}
	select {
	case u.acks <- a:
	default:
	}
}

// Reconnected tells the drain the link is (back) up: every unacked batch
// is re-sent, in order, and draining resumes.
func (u *Uplink) Reconnected() {
	select {
	case u.resend <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (u *Uplink) Stats() Stats {
	c := &u.c
	return Stats{
		BatchesSent: c.sent.Load(), BatchesResent: c.resent.Load(), BatchesAcked: c.acked.Load(),
		EventsSent: c.eventsSent.Load(), EventsAcked: c.eventsAcked.Load(), Quarantined: c.quarantined.Load(),
		InFlight: c.inflight.Load(), AckedThrough: c.ackedThrough.Load(), LastAckAt: c.lastAckAt.Load(),
		AckLatencyMs: c.ackLatency.Load(), PaceMs: c.pace.Load(), ClockSkewMs: c.skew.Load(),
	}
}

// batch is one EventBatch in flight. Its events stay as the outbox holds
// them, each already the canonical CBOR of a checked event.
type batch struct {
	wire.EventBatch
	events  [][]byte
	sentAt  time.Time // zero: not sent on the current connection
	resends int
}

// drain is Run's state, owned by its goroutine.
type drain struct {
	*Uplink
	next      uint64 // the first of the next batch
	inflight  []*batch
	online    bool
	strict    int // batches still to build checking every event against the wire's rules
	pace      time.Duration
	lastSend  time.Time
	drained   bool // the last read found nothing more to send
	unflushed bool // acked ranges went to the deleter since its last flush
	deletes   chan deletion
}

// Run drains until ctx ends, then returns nil.
func (u *Uplink) Run(ctx context.Context) error {
	var acked uint64
	if err := u.st.View(func(tx *store.Tx) error { acked = tx.MetaUint(MetaAcked); return nil }); err != nil {
		return fmt.Errorf("uplink: %w", err)
	}
	u.c.ackedThrough.Store(acked)
	d := &drain{Uplink: u, next: acked + 1, deletes: make(chan deletion, 1024)}
	done := make(chan struct{})
	go func() { defer close(done); u.deleter(ctx, acked, d.deletes) }()
	defer func() { <-done }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// linger, while it runs, holds back the batch of appends that arrived
	// when the outbox was drained, so a burst shares one. It never holds
	// back a backlog, and acks are taken meanwhile.
	var linger <-chan time.Time
	for {
		if linger == nil {
			d.fill(ctx)
		}
		d.flushIfIdle()
		select {
		case <-ctx.Done():
			return nil
		case a := <-u.acks:
			d.ack(a)
		case <-u.resend:
			d.online = true
			d.resendAll(ctx)
		case <-u.st.Appended():
			if d.drained && linger == nil {
				linger = time.After(u.cfg.Linger)
			}
		case <-linger:
			linger = nil
		case <-tick.C:
			d.checkTimeout(ctx)
		}
	}
}

// flushIfIdle tells the deleter, once each time it happens, that the
// outbox is drained and nothing is in flight: the acked records it holds
// back for their segments to complete can go now.
func (d *drain) flushIfIdle() {
	if d.drained && len(d.inflight) == 0 && d.unflushed {
		d.deletes <- deletion{flush: true}
		d.unflushed = false
	}
}

// fill sends new batches while the window has room and the link is up.
func (d *drain) fill(ctx context.Context) {
	for d.online && len(d.inflight) < d.cfg.Window && ctx.Err() == nil {
		b, err := d.build()
		if err != nil {
			d.log.Warn("read outbox", "err", err)
			return
		}
		if d.drained = b == nil; d.drained {
			return
		}
		d.inflight = append(d.inflight, b)
		d.next = b.Last + 1
		d.c.inflight.Store(int64(len(d.inflight)))
		if !d.send(ctx, b) {
			return
		}
		d.c.sent.Add(1)
		d.c.eventsSent.Add(uint64(len(b.events)))
	}
}

// build reads the next batch from the outbox, or returns nil when there is
// nothing to send.
func (d *drain) build() (*batch, error) {
	for {
		recs, err := d.st.ReadOutbox(d.next, d.cfg.MaxEvents, d.cfg.MaxBytes-wire.MaxEventBatchOverhead)
		var ce *store.CorruptError
		if errors.As(err, &ce) && len(recs) == 0 && len(ce.Key) == 8 {
			if err := d.quarantine(binary.BigEndian.Uint64(ce.Key)); err != nil {
				return nil, err
			}
			continue
		}
		if len(recs) == 0 {
			return nil, err // nil, nil when the outbox is drained
		}
		events, err := d.events(recs)
		if err != nil {
			return nil, err
		}
		if len(events) == 0 {
			continue // every record was quarantined: the next read goes past them
		}
		if d.strict > 0 {
			d.strict--
		}
		return &batch{EventBatch: wire.EventBatch{
			Agent: d.cfg.Scope.Agent, Store: d.cfg.Scope.Store,
			First: d.next, Last: recs[len(recs)-1].Seq,
		}, events: events}, nil
	}
}

// events re-checks consent and returns the records' events as they will
// travel. The agent checked and encoded each against the wire's rules at
// capture, so here only well-formedness is checked, except in strict mode
// (after a batch went unacked too long): then each is decoded and checked
// in full. A record that cannot travel (it would never be acked, and would
// stall the drain forever) is moved to quarantine.
func (d *drain) events(recs []store.Record) ([][]byte, error) {
	payloads, err := d.rc.Recheck(recs)
	if err != nil {
		return nil, err
	}
	out := payloads[:0]
	for i, p := range payloads {
		err := wellFormed(p)
		if err == nil && d.strict > 0 {
			_, err = wire.DecodeEvent(p)
		}
		if err != nil {
			d.log.Warn("event cannot travel; quarantined", "seq", recs[i].Seq, "err", err)
			if err := d.quarantine(recs[i].Seq); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// wellFormed is the cheap check of a payload: one CBOR map within the size
// an event may have.
func wellFormed(p []byte) error {
	if len(p) == 0 || len(p) > wire.MaxEventSize || p[0]>>5 != 5 {
		return errors.New("not a CBOR map of an event's size")
	}
	return nil
}

func (d *drain) quarantine(seq uint64) error {
	d.c.quarantined.Add(1)
	return d.st.QuarantineOutbox(seq)
}

// send publishes b, waiting out the central's pace first. It reports false
// when the link is down: b stays in flight, to be re-sent on reconnect.
func (d *drain) send(ctx context.Context, b *batch) bool {
	if wait := d.pace - time.Since(d.lastSend); wait > 0 {
		sleep(ctx, wait)
	}
	b.SentAt = d.cfg.Now().UnixMilli()
	payload, err := wire.EncodeEventBatchRaw(b.EventBatch, b.events)
	if err != nil {
		// Validated event by event, bounded by size: a bug, not bad input.
		d.log.Error("encode batch", "first", b.First, "last", b.Last, "err", err)
		return false
	}
	if err := d.pub.Send(d.topic, payload); err != nil {
		d.online = false
		b.sentAt = time.Time{}
		return false
	}
	b.sentAt, d.lastSend = time.Now(), time.Now()
	return true
}

// resendAll re-sends every batch in flight, oldest first (go-back-N).
func (d *drain) resendAll(ctx context.Context) {
	for _, b := range d.inflight {
		if !d.send(ctx, b) {
			return
		}
		d.c.resent.Add(1)
	}
}

// strictAfter is how many times the oldest batch is re-sent unacked
// before the window is rebuilt checking every event in full: a central
// that never acks a batch may be refusing an event in it.
const strictAfter = 3

func (d *drain) checkTimeout(ctx context.Context) {
	if len(d.inflight) == 0 || !d.online {
		return
	}
	oldest := d.inflight[0]
	if oldest.sentAt.IsZero() || time.Since(oldest.sentAt) <= d.cfg.AckTimeout {
		return
	}
	oldest.resends++
	if oldest.resends > strictAfter && d.strict == 0 {
		d.log.Warn("batch never acked; rebuilding the window checking every event", "first", oldest.First)
		d.next, d.strict = oldest.First, d.cfg.Window
		clear(d.inflight)
		d.inflight = d.inflight[:0]
		d.c.inflight.Store(0)
		return
	}
	d.log.Info("ack timeout; re-sending from the oldest batch", "first", oldest.First, "in_flight", len(d.inflight))
	d.resendAll(ctx)
}

// ack drops the batches an Ack names from the window and hands the ranges
// to the deleter.
func (d *drain) ack(a wire.Ack) {
	d.pace = min(time.Duration(a.Pace)*time.Millisecond, d.cfg.MaxPace)
	d.c.pace.Store(d.pace.Milliseconds())
	for _, r := range a.Ranges {
		kept := d.inflight[:0]
		for _, b := range d.inflight {
			if b.First >= r.First && b.Last <= r.Last {
				d.c.acked.Add(1)
				d.c.eventsAcked.Add(uint64(len(b.events)))
				d.observeAck(b)
				continue
			}
			kept = append(kept, b)
		}
		clear(d.inflight[len(kept):])
		d.inflight = kept
		d.deletes <- deletion{r: r}
		d.unflushed = true
	}
	d.c.inflight.Store(int64(len(d.inflight)))
	d.c.lastAckAt.Store(d.cfg.Now().UnixMilli())
}

func (d *drain) observeAck(b *batch) {
	lat := time.Since(b.sentAt)
	d.c.ackLatency.Store(lat.Milliseconds())
	// An ack for a batch not yet re-sent on this connection has no send
	// time to measure from.
	if d.cfg.ObserveAck != nil && !b.sentAt.IsZero() {
		d.cfg.ObserveAck(lat)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
