package uplink

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
	"github.com/storeagent/storeagent/sync/wire"
)

var scope = wire.Scope{Tenant: "acme", Store: "s1", Agent: "a1"}

// pub stands in for the link at the transport boundary: it records what
// would go to the broker, and can be taken offline. The integration tests
// in sync/cdp use the real link, broker and central.
type pub struct {
	mu      sync.Mutex
	offline bool
	invalid int // batches the central would refuse
	sent    []wire.EventBatch
	at      []time.Time
	signal  chan struct{}
}

func newPub() *pub { return &pub{signal: make(chan struct{}, 1000)} }

func (p *pub) Send(topic string, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.offline {
		return errors.New("offline")
	}
	eb, err := wire.DecodeEventBatch(b)
	if err != nil {
		p.invalid++ // the broker takes it; the central will never ack it
		return nil
	}
	p.sent = append(p.sent, eb)
	p.at = append(p.at, time.Now())
	p.signal <- struct{}{}
	return nil
}

func (p *pub) batches() []wire.EventBatch {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent)
}

func (p *pub) setOffline(v bool) { p.mu.Lock(); p.offline = v; p.mu.Unlock() }

// waitBatches waits until n batches have been published in all.
func (p *pub) waitBatches(t *testing.T, n int) []wire.EventBatch {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if b := p.batches(); len(b) >= n {
			return b
		}
		select {
		case <-p.signal:
		case <-deadline:
			t.Fatalf("waited for %d batches, got %d", n, len(p.batches()))
		}
	}
}

// passThrough is a Rechecker that changes nothing: consent re-checks are
// the agent's and are tested there and in sync/cdp.
type passThrough struct{}

func (passThrough) Recheck(recs []store.Record) ([][]byte, error) {
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.Payload
	}
	return out, nil
}

func appendEvents(t *testing.T, db *store.DB, n int, class store.Class) []string {
	t.Helper()
	ids := make([]string, n)
	err := db.Update(func(tx *store.Tx) error {
		for i := range n {
			ev := &event.Event{
				MessageID: event.NewID(), Type: event.Track, Event: "Product Viewed", AnonymousID: "v-1",
				OriginalTimestamp: time.Now().UnixMilli(),
				Context:           event.Context{Store: "s1", Agent: "a1", Device: "pos-1", Purpose: "analytics", Consent: event.Consent{CategoryPreferences: map[string]bool{"analytics": true}}},
			}
			b, err := ev.Encode()
			if err != nil {
				return err
			}
			if _, err := tx.AppendOutbox(store.Entry{Class: class, Label: "analytics", Payload: b}); err != nil {
				return err
			}
			ids[i] = ev.MessageID
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

type fixture struct {
	db   *store.DB
	pub  *pub
	up   *Uplink
	stop func()
}

func start(t *testing.T, db *store.DB, cfg Config) *fixture {
	t.Helper()
	cfg.Scope = scope
	p := newPub()
	up, err := New(cfg, db, passThrough{}, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); up.Run(ctx) }()
	up.Reconnected()
	f := &fixture{db: db, pub: p, up: up, stop: func() { cancel(); <-done }}
	t.Cleanup(f.stop)
	return f
}

func ackAll(f *fixture, bs []wire.EventBatch) {
	for _, b := range bs {
		f.up.HandleAck(wire.Ack{Agent: "a1", Ranges: []wire.Range{{First: b.First, Last: b.Last}}})
	}
}

func waitAcked(t *testing.T, f *fixture, through uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.up.Stats().AckedThrough < through {
		if time.Now().After(deadline) {
			t.Fatalf("acked through %d, want %d", f.up.Stats().AckedThrough, through)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The drain sends everything, in capture order, in batches that partition
// the sequence space; acked ranges leave the outbox and the frontier is kept.
func TestDrainInOrder(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	ids := appendEvents(t, db, 2500, store.Telemetry)
	f := start(t, db, Config{MaxEvents: 1000})
	bs := f.pub.waitBatches(t, 3)
	var got []string
	next := uint64(1)
	for _, b := range bs {
		if b.First != next {
			t.Fatalf("batch starts at %d, want %d", b.First, next)
		}
		next = b.Last + 1
		for _, e := range b.Events {
			got = append(got, e.MessageID)
		}
	}
	if !slices.Equal(got, ids) {
		t.Fatal("events not sent exactly once each in capture order")
	}
	ackAll(f, bs)
	waitAcked(t, f, 2500)
	if st, _ := db.OutboxStats(); st.Records() != 0 {
		t.Fatalf("%d records left after every ack", st.Records())
	}
	var acked uint64
	db.View(func(tx *store.Tx) error { acked = tx.MetaUint(MetaAcked); return nil })
	if acked != 2500 {
		t.Fatalf("stored frontier %d", acked)
	}
}

// While the drain is busy, acked records leave in whole segments: a range
// that ends inside a segment waits for the next one to complete it. When
// the outbox is drained and every batch acked, the rest goes at once.
func TestDeletesWaitForWholeSegments(t *testing.T) {
	defer func(d time.Duration) { flushAfter = d }(flushAfter)
	flushAfter = time.Hour // only the drain's own flush
	db := storetest.Open(t, store.Options{})
	const n = 2500
	appendEvents(t, db, n, store.Telemetry)
	f := start(t, db, Config{MaxEvents: 1000})
	bs := f.pub.waitBatches(t, 3)
	first := func() uint64 {
		s, err := db.OutboxStats()
		if err != nil {
			t.Fatal(err)
		}
		return s.FirstSeq
	}
	ackAll(f, bs[:1]) // 1..1000: inside the first segment, and more in flight
	time.Sleep(50 * time.Millisecond)
	if got := f.up.Stats().AckedThrough; got != 0 || first() != 1 {
		t.Fatalf("acked through %d, first record %d: part of a segment went while the drain was busy", got, first())
	}
	ackAll(f, bs[1:2]) // 1001..2000 completes the first segment
	waitAcked(t, f, store.OutboxSegment-1)
	if got := first(); got != store.OutboxSegment {
		t.Fatalf("first record %d after the first segment was acked whole", got)
	}
	ackAll(f, bs[2:]) // the last batch: drained, nothing in flight
	waitAcked(t, f, n)
	if got := first(); got != 0 {
		t.Fatalf("first record %d after every batch was acked", got)
	}
}

func TestWholeSegments(t *testing.T) {
	const s = store.OutboxSegment
	for frontier, want := range map[uint64]uint64{0: 0, 1: 0, s - 2: 0, s - 1: s - 1, s: s - 1, 2*s - 2: s - 1, 2*s - 1: 2*s - 1} {
		if got := wholeSegments(frontier); got != want {
			t.Errorf("wholeSegments(%d) = %d, want %d", frontier, got, want)
		}
	}
}

// The last ack of a drain whose window was full when it read its last
// batch still lets the deleter finish: the drain learns it is drained only
// after that ack, and tells the deleter then.
func TestFlushAfterAFullWindow(t *testing.T) {
	defer func(d time.Duration) { flushAfter = d }(flushAfter)
	flushAfter = time.Hour // only the drain's own flush
	db := storetest.Open(t, store.Options{})
	appendEvents(t, db, 10, store.Telemetry)
	f := start(t, db, Config{MaxEvents: 5, Window: 1})
	ackAll(f, f.pub.waitBatches(t, 1))
	ackAll(f, f.pub.waitBatches(t, 2)[1:])
	waitAcked(t, f, 10)
}

// Appends that arrive when the outbox is drained wait the linger time and
// share a batch; a backlog never waits for it, and neither does the
// deleter's flush at the end.
func TestLinger(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	appendEvents(t, db, 10, store.Telemetry)
	f := start(t, db, Config{Linger: 300 * time.Millisecond})
	began := time.Now()
	bs := f.pub.waitBatches(t, 1)
	if waited := time.Since(began); waited > 200*time.Millisecond {
		t.Fatalf("a backlog waited %v for the linger time", waited)
	}
	ackAll(f, bs)
	waitAcked(t, f, 10) // the flush: long before the deleter's own second
	for range 3 {
		appendEvents(t, db, 1, store.Telemetry) // three commits, one burst
	}
	bs = f.pub.waitBatches(t, 2)
	if len(bs) != 2 || len(bs[1].Events) != 3 {
		t.Fatalf("%d batches, the last of %d events: the burst did not share a batch", len(bs), len(bs[len(bs)-1].Events))
	}
}

// Nothing leaves the outbox without an ack; at most Window batches wait.
func TestWindowAndNoAckNoDelete(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	appendEvents(t, db, 1000, store.Critical)
	f := start(t, db, Config{MaxEvents: 50, Window: 4})
	f.pub.waitBatches(t, 4)
	time.Sleep(100 * time.Millisecond)
	if n := len(f.pub.batches()); n != 4 {
		t.Fatalf("%d batches in flight, window 4", n)
	}
	if st, _ := db.OutboxStats(); st.Records() != 1000 {
		t.Fatalf("records deleted without an ack: %d left", st.Records())
	}
}

// Shed telemetry leaves holes inside batches, never gaps between them.
func TestHolesStayInsideBatches(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	appendEvents(t, db, 30, store.Telemetry)
	// Delete some records as if shed: 1-5 and 11-20.
	db.DeleteOutboxRange(1, 5)
	db.DeleteOutboxRange(11, 20)
	f := start(t, db, Config{MaxEvents: 7})
	bs := f.pub.waitBatches(t, 3)
	if bs[0].First != 1 || bs[0].Last != 22 || len(bs[0].Events) != 7 { // 6-10 and 21-22
		t.Fatalf("first batch [%d,%d] with %d events", bs[0].First, bs[0].Last, len(bs[0].Events))
	}
	if bs[1].First != 23 {
		t.Fatalf("second batch starts at %d", bs[1].First)
	}
}

// After the link comes back, every unacked batch is re-sent, oldest first,
// and the drain goes on.
func TestResendOnReconnect(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	appendEvents(t, db, 300, store.Critical)
	f := start(t, db, Config{MaxEvents: 100, Window: 2})
	bs := f.pub.waitBatches(t, 2)
	f.pub.setOffline(true)
	ackAll(f, bs[:1]) // the first is acked; the second is lost with the link
	appendEvents(t, db, 10, store.Critical)
	time.Sleep(50 * time.Millisecond)
	f.pub.setOffline(false)
	f.up.Reconnected()
	all := f.pub.waitBatches(t, 4)
	if all[2].First != bs[1].First || all[3].First != bs[1].Last+1 {
		t.Fatalf("after reconnect sent [%d..] then [%d..], want the unacked %d first", all[2].First, all[3].First, bs[1].First)
	}
	if f.up.Stats().BatchesResent == 0 {
		t.Fatal("no resend counted")
	}
}

func TestResendOnAckTimeout(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	appendEvents(t, db, 20, store.Critical)
	f := start(t, db, Config{MaxEvents: 10, AckTimeout: 300 * time.Millisecond})
	bs := f.pub.waitBatches(t, 2)
	again := f.pub.waitBatches(t, 4) // no ack: both re-sent in order
	if again[2].First != bs[0].First || again[3].First != bs[1].First {
		t.Fatalf("timeout re-sent %d, %d", again[2].First, again[3].First)
	}
	if again[2].SentAt < bs[0].SentAt {
		t.Fatal("a re-sent batch keeps its old sentAt")
	}
}

// A restart resumes at the stored frontier: acked events are never sent
// again, unacked ones are.
func TestRestartResumesAtFrontier(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	ids := appendEvents(t, db, 30, store.Critical)
	f := start(t, db, Config{MaxEvents: 10, Window: 3})
	bs := f.pub.waitBatches(t, 3)
	ackAll(f, bs[:1])
	waitAcked(t, f, 10)
	f.stop()
	g := start(t, db, Config{MaxEvents: 10, Window: 3})
	again := g.pub.waitBatches(t, 2)
	if again[0].First != 11 || again[0].Events[0].MessageID != ids[10] {
		t.Fatalf("after restart first batch starts at %d", again[0].First)
	}
}

// An event that cannot travel is moved aside; the drain does not stall.
func TestInvalidEventQuarantined(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	appendEvents(t, db, 2, store.Critical)
	db.Update(func(tx *store.Tx) error {
		_, err := tx.AppendOutbox(store.Entry{Class: store.Critical, Payload: []byte("not cbor")})
		return err
	})
	appendEvents(t, db, 2, store.Critical)
	f := start(t, db, Config{})
	bs := f.pub.waitBatches(t, 1)
	if len(bs[0].Events) != 4 || bs[0].First != 1 || bs[0].Last != 5 {
		t.Fatalf("batch [%d,%d] with %d events", bs[0].First, bs[0].Last, len(bs[0].Events))
	}
	if f.up.Stats().Quarantined != 1 {
		t.Fatalf("quarantined %d", f.up.Stats().Quarantined)
	}
}

// The central's pace slows the drain, capped by MaxPace.
func TestPace(t *testing.T) {
	db := storetest.Open(t, store.Options{})
	appendEvents(t, db, 40, store.Critical)
	f := start(t, db, Config{MaxEvents: 10, Window: 1})
	bs := f.pub.waitBatches(t, 1)
	f.up.HandleAck(wire.Ack{Agent: "a1", Ranges: []wire.Range{{First: bs[0].First, Last: bs[0].Last}}, Pace: 150})
	all := f.pub.waitBatches(t, 2)
	f.up.HandleAck(wire.Ack{Agent: "a1", Ranges: []wire.Range{{First: all[1].First, Last: all[1].Last}}, Pace: 150})
	f.pub.waitBatches(t, 3)
	f.pub.mu.Lock()
	gap := f.pub.at[2].Sub(f.pub.at[1])
	f.pub.mu.Unlock()
	if gap < 140*time.Millisecond {
		t.Fatalf("batches %v apart under a 150ms pace", gap)
	}
	if f.up.Stats().PaceMs != 150 {
		t.Fatalf("pace %d", f.up.Stats().PaceMs)
	}
}

func TestAdvance(t *testing.T) {
	tests := []struct {
		name     string
		frontier uint64
		above    []wire.Range
		want     uint64
		left     int
	}{
		{"joins", 10, []wire.Range{{First: 11, Last: 20}}, 20, 0},
		{"out of order joins both", 10, []wire.Range{{First: 21, Last: 30}, {First: 11, Last: 20}}, 30, 0},
		{"gap stays", 10, []wire.Range{{First: 12, Last: 20}}, 10, 1},
		{"covered", 10, []wire.Range{{First: 3, Last: 9}}, 10, 0},
		{"overlap", 10, []wire.Range{{First: 5, Last: 15}}, 15, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, left := advance(tc.frontier, tc.above)
			if got != tc.want || len(left) != tc.left {
				t.Fatalf("got %d with %d left", got, len(left))
			}
		})
	}
}

// A central that never acks a batch may be refusing an event in it: after
// a few re-sends the window is rebuilt checking every event in full, and
// the bad one is moved aside. The batch encoder does not parse the events,
// so a stored event that is not even well-formed CBOR takes the same way.
func TestNeverAckedBatchRebuiltStrict(t *testing.T) {
	invalidEvent, _ := (&event.Event{Type: event.Track, Event: "x"}).Encode() // a CBOR map, but no messageId, no context
	tests := []struct {
		name string
		bad  []byte
	}{
		{"not an event", invalidEvent},
		{"not well-formed", []byte{0xa2, 0x61, 0x61}}, // a map of two pairs, cut off in the first key
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := storetest.Open(t, store.Options{})
			appendEvents(t, db, 3, store.Critical)
			db.Update(func(tx *store.Tx) error {
				_, err := tx.AppendOutbox(store.Entry{Class: store.Critical, Payload: tc.bad})
				return err
			})
			appendEvents(t, db, 3, store.Critical)
			f := start(t, db, Config{AckTimeout: 50 * time.Millisecond})
			bs := f.pub.waitBatches(t, 1)
			ackAll(f, bs)
			if bs[0].First != 1 || len(bs[0].Events) != 6 || bs[0].Last != 7 {
				t.Fatalf("after the strict rebuild: batch [%d,%d] with %d events", bs[0].First, bs[0].Last, len(bs[0].Events))
			}
			f.pub.mu.Lock()
			invalid := f.pub.invalid
			f.pub.mu.Unlock()
			if invalid == 0 || f.up.Stats().Quarantined != 1 {
				t.Fatalf("invalid batches %d, quarantined %d", invalid, f.up.Stats().Quarantined)
			}
		})
	}
}
