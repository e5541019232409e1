package cdp_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/agenttest"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
	"github.com/storeagent/storeagent/sync/brokertest"
	"github.com/storeagent/storeagent/sync/central"
	"github.com/storeagent/storeagent/sync/wire"
)

type captured struct {
	seq uint64
	id  string
}

// captureN captures n events with w workers and returns their messageIds in
// capture (outbox sequence) order.
func captureN(t *testing.T, a *agent.Agent, n, workers int) []string {
	t.Helper()
	var mu sync.Mutex
	var got []captured
	var wg sync.WaitGroup
	per := n / workers
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				res, err := a.Capture(context.Background(), agent.CaptureRequest{
					Event: "Product Viewed", AnonymousID: fmt.Sprintf("visitor-%d", w), Device: "pos-1",
					Properties: map[string]any{"i": i, "w": w},
				})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, captured{res.Seq, res.MessageID})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return inOrder(got)
}

func inOrder(c []captured) []string {
	slices.SortFunc(c, func(a, b captured) int { return int(a.seq) - int(b.seq) })
	ids := make([]string, len(c))
	for i, x := range c {
		ids[i] = x.id
	}
	return ids
}

// Events captured while connected reach the central exactly once, in
// order, and leave the outbox once acked.
func TestDrainExactlyOnce(t *testing.T) {
	w := startWorld(t, 0)
	dir := t.TempDir()
	n := w.startNode(t, filepath.Join(dir, "store.db"), keyFile(t, dir))
	ids := captureN(t, n.a, 3200, 16)
	w.waitUnique(t, uint64(len(ids)), 30*time.Second)
	waitOutboxEmpty(t, n)
	exactlyOnceInOrder(t, w.received(t), ids, nil)
	if st := n.s.Status(); !st.Link.Connected || st.Uplink.EventsAcked < uint64(len(ids)) {
		t.Fatalf("status %+v", st)
	}
}

func waitOutboxEmpty(t *testing.T, n *node) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n.db.QueuedRecords() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d records still queued after every event was acked", n.db.QueuedRecords())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The broker dies in the middle of a drain and comes back: the agent
// reconnects, re-sends what was not acked, and the central ends with every
// event once, in order.
func TestBrokerRestartMidDrain(t *testing.T) {
	t.Run("loopback", func(t *testing.T) { brokerRestartMidDrain(t, 0) })
	// Across a WAN the window of batches is on the wire when the broker
	// goes: sent, not yet PUBACKed, some not yet at the central.
	t.Run("wan", func(t *testing.T) { brokerRestartMidDrain(t, 25*time.Millisecond) })
}

func brokerRestartMidDrain(t *testing.T, oneWay time.Duration) {
	w := startWorld(t, 0)
	if oneWay > 0 {
		w.agentURL = w.broker.Delay(oneWay)
	}
	dir := t.TempDir()
	key := keyFile(t, dir)
	// A backlog captured offline (no session running yet).
	n := w.startNode(t, filepath.Join(dir, "store.db"), key)
	n.stop()
	offline := agenttestNode(t, filepath.Join(dir, "store.db"), key)
	ids := captureN(t, offline.a, 19968, 64)
	offline.stop()

	n = w.startNode(t, filepath.Join(dir, "store.db"), key)
	w.waitUnique(t, 2000, 30*time.Second)
	w.broker.Stop()
	time.Sleep(time.Second)
	w.broker.Restart()
	w.waitUnique(t, uint64(len(ids)), 60*time.Second)
	waitOutboxEmpty(t, n)
	exactlyOnceInOrder(t, w.received(t), ids, nil)
	if n.s.Status().Link.Connects < 2 {
		t.Fatal("the agent never reconnected: the broker restart did not happen mid-drain")
	}
}

// A 30-second outage while the store keeps capturing: nothing is refused,
// nothing is lost, and the backlog drains when the link returns.
func TestOutageWhileCapturing(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30-second outage; run without -short")
	}
	w := startWorld(t, 0)
	dir := t.TempDir()
	n := w.startNode(t, filepath.Join(dir, "store.db"), keyFile(t, dir))
	var ids []string
	start := time.Now()
	down, up := false, false
	for i := 0; time.Since(start) < 40*time.Second; i++ {
		res, err := n.a.Capture(context.Background(), agent.CaptureRequest{Event: "Order Completed", AnonymousID: "v", Device: "pos-1", Properties: map[string]any{"i": i}})
		if err != nil {
			t.Fatalf("capture %d during the outage: %v", i, err)
		}
		ids = append(ids, res.MessageID)
		switch el := time.Since(start); {
		case !down && el > 5*time.Second:
			w.broker.Stop()
			down = true
		case down && !up && el > 35*time.Second:
			if n.s.Status().Link.Connected {
				t.Fatal("link up while the broker was down")
			}
			w.broker.Restart()
			up = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.waitUnique(t, uint64(len(ids)), 60*time.Second)
	exactlyOnceInOrder(t, w.received(t), ids, nil)
	t.Logf("%d events captured across a 30 s outage, all delivered once in order", len(ids))
}

// A customer from the central's baseline arrives by snapshot on first
// connect; changes then stream in, exactly once and in order, whatever the
// network does to them; unauthentic messages change nothing and are counted.
func TestDownlinkFaults(t *testing.T) {
	w := startWorld(t, 50)
	dir := t.TempDir()
	n := w.startNode(t, filepath.Join(dir, "store.db"), keyFile(t, dir))
	cust, err := w.central.Customers().Customer(7)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the baseline snapshot", func() bool { return identify(n, cust.Loyalty).Known })
	cur, _ := n.a.Cursor()

	// Erase customer 7 through the central: applied once, with a receipt.
	seq, err := w.central.Publish(context.Background(), "s1", &wire.EraseChange{Profile: cust.Profile})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the erasure", func() bool { c, _ := n.a.Cursor(); return c == seq && !identify(n, cust.Loyalty).Known })
	if seq != cur+1 {
		t.Fatalf("central seq %d after cursor %d", seq, cur)
	}

	// Injected by hand from here, signed with the central's key.
	signer, _ := wire.NewSigner(w.key)
	topic, _ := wire.Scope{Tenant: "acme", Store: "s1"}.Topic(wire.TopicChanges)
	sign := func(s *wire.Signer, c wire.Change) []byte {
		b, err := wire.SignChange(s, wire.Scope{Tenant: "acme", Store: "s1"}, c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	raw := func(b []byte) {
		if err := w.central.PublishRaw(context.Background(), topic, b, false); err != nil {
			t.Fatal(err)
		}
	}
	c8, _ := w.central.Customers().Customer(8)
	c9, _ := w.central.Customers().Customer(9)
	restrict := func(s uint64, profile string) wire.Change {
		return wire.Change{Seq: s, Body: &wire.RestrictChange{Profile: profile, Restricted: true}}
	}
	// Reordered: seq+2 before seq+1. Duplicated: seq+1 twice.
	raw(sign(signer, restrict(seq+2, c9.Profile)))
	raw(sign(signer, restrict(seq+1, c8.Profile)))
	raw(sign(signer, restrict(seq+1, c8.Profile)))
	waitFor(t, "the reordered changes", func() bool { c, _ := n.a.Cursor(); return c == seq+2 })
	if !identify(n, c8.Loyalty).Restricted || !identify(n, c9.Loyalty).Restricted {
		t.Fatal("reordered changes not both applied")
	}

	// Replayed (an old seq, validly signed), unsigned, wrongly signed: nothing
	// changes, each is counted.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	stranger, _ := wire.NewSigner(other)
	c10, _ := w.central.Customers().Customer(10)
	lift := wire.Change{Seq: seq + 1, Body: &wire.RestrictChange{Profile: c8.Profile, Restricted: false}}
	plain, _ := wire.EncodeChange(wire.Change{Seq: seq + 3, Body: &wire.EraseChange{Profile: c10.Profile}})
	before := n.s.Status().Downlink
	raw(sign(signer, lift))
	raw(plain)
	raw(sign(stranger, wire.Change{Seq: seq + 3, Body: &wire.EraseChange{Profile: c10.Profile}}))
	waitFor(t, "the rejections", func() bool {
		d := n.s.Status().Downlink
		return d.Duplicates > before.Duplicates && d.Rejected["unknown_key"] > before.Rejected["unknown_key"] && d.Rejected["unsigned"]+d.Rejected["malformed"] > before.Rejected["unsigned"]+before.Rejected["malformed"]
	})
	if c, _ := n.a.Cursor(); c != seq+2 {
		t.Fatalf("cursor moved to %d", c)
	}
	if !identify(n, c8.Loyalty).Restricted || !identify(n, c10.Loyalty).Known {
		t.Fatal("a replayed, unsigned or wrongly signed change took effect")
	}
	// The erasure's receipt reached the central.
	waitFor(t, "the erasure's receipt", func() bool { return receiptFor(t, w, cust.Profile) })
}

// receiptFor reports whether the central holds a Rights Request Applied
// for profile.
func receiptFor(t *testing.T, w *world, profile string) bool {
	found := false
	central.ReadEvents(w.centralDir, func(e central.ReceivedEvent) error {
		if e.Event != nil && e.Event.Event == wire.EventRightsRequestApplied && e.Event.Properties["profile"] == profile {
			found = true
		}
		return nil
	})
	return found
}

// agenttestNode is an agent over the store at path with no session: the
// store offline.
func agenttestNode(t *testing.T, path string, key []byte) *node {
	t.Helper()
	db := storetest.OpenAt(t, path, store.Options{Key: key})
	n := &node{a: agenttest.NewOn(t, db), db: db}
	n.stop = func() { db.Close() }
	return n
}

func identify(n *node, card string) agent.Identity {
	id, _ := n.a.Identify(context.Background(), agent.IdentifyRequest{Scan: card, Purpose: "loyalty"})
	return id
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The agent measures its clock against the central's from the time each
// Ack carries: a central 90 s ahead shows as a skew of about +90 s, what
// `storectl doctor` reports.
func TestClockSkewFromAcks(t *testing.T) {
	w := &world{broker: brokertest.Start(t), key: centralKey(), centralDir: t.TempDir()}
	c, err := central.New(central.Config{
		Broker: w.broker.URL, Tenant: "acme", Store: "s1", Key: w.key, TenantKey: agenttest.TenantKey,
		DataDir: w.centralDir, Logger: quiet(), Now: func() time.Time { return time.Now().Add(90 * time.Second) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; c.Close() })
	<-c.Ready()
	w.central = c
	dir := t.TempDir()
	n := w.startNode(t, filepath.Join(dir, "store.db"), keyFile(t, dir))
	if st := n.s.Status(); st.Uplink.ClockSkewMs != nil {
		t.Fatalf("a skew before any ack: %d", *st.Uplink.ClockSkewMs)
	}
	captureN(t, n.a, 10, 1)
	w.waitUnique(t, 10, 20*time.Second)
	waitOutboxEmpty(t, n)
	skew := n.s.Status().Uplink.ClockSkewMs
	if skew == nil || *skew < 88_000 || *skew > 91_000 {
		t.Fatalf("skew %v ms, want about +90000", skew)
	}
}
