package downlink

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/agenttest"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/link"
	"github.com/storeagent/storeagent/sync/wire"
)

var (
	scope      = wire.Scope{Tenant: "acme", Store: "s1", Agent: "a1"}
	storeScope = wire.Scope{Tenant: "acme", Store: "s1"}
	card       = "79927398713"
)

// syncs records the sync requests the downlink publishes.
type syncs struct {
	mu   sync.Mutex
	reqs []wire.SyncRequest
}

func (s *syncs) Publish(_ context.Context, topic string, b []byte, _ bool) error {
	r, err := wire.DecodeSyncRequest(b)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	return nil
}

func (s *syncs) last() (wire.SyncRequest, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		return wire.SyncRequest{}, 0
	}
	return s.reqs[len(s.reqs)-1], len(s.reqs)
}

// counting is the agent, with a count of the transactions it was asked
// to apply changes in.
type counting struct {
	*agent.Agent
	txs atomic.Int64
}

func (c *counting) Apply(ctx context.Context, ch agent.Change) (agent.ApplyResult, error) {
	c.txs.Add(1)
	return c.Agent.Apply(ctx, ch)
}

func (c *counting) ApplyRun(ctx context.Context, chs []agent.Change) ([]agent.ApplyResult, error) {
	c.txs.Add(1)
	return c.Agent.ApplyRun(ctx, chs)
}

type fixture struct {
	a      *agent.Agent
	ap     *counting
	d      *Downlink
	in     chan link.Message
	signer *wire.Signer
	syncs  *syncs
	acks   chan wire.Ack
	topics struct{ changes, acks, sync string }
}

func newSigner(t *testing.T) *wire.Signer {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := wire.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func start(t *testing.T) *fixture { t.Helper(); return startWith(t, nil) }

// startWith runs before(f) before the downlink starts: messages it queues
// are all waiting when the downlink looks.
func startWith(t *testing.T, before func(*fixture)) *fixture {
	t.Helper()
	a, _ := agenttest.New(t, store.Options{})
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := wire.NewSigner(priv)
	verifier, err := wire.NewVerifier(priv.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{a: a, ap: &counting{Agent: a}, in: make(chan link.Message, 1000), signer: signer, syncs: &syncs{}, acks: make(chan wire.Ack, 10)}
	f.d, err = New(Config{Scope: scope, Verifier: verifier}, f.ap, f.syncs, func(ack wire.Ack) { f.acks <- ack }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.topics.changes, f.topics.acks, f.topics.sync, _ = f.d.Topics()
	if before != nil {
		before(f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.d.Run(ctx, f.in) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

func profile(seq uint64, id, card string) wire.Change {
	var h wire.Ident
	copy(h[:], agenttest.IdentHash("loyalty", card))
	return wire.Change{Seq: seq, Body: &wire.ProfileChange{Profile: id, Idents: []wire.Ident{h}, Version: seq,
		Attrs:   []wire.Attr{{Name: "segment", Purpose: "analytics", Value: "weekend"}},
		Expires: time.Now().Add(time.Hour).UnixMilli()}}
}

func (f *fixture) send(t *testing.T, c wire.Change) {
	t.Helper()
	b, err := wire.SignChange(f.signer, storeScope, c)
	if err != nil {
		t.Fatal(err)
	}
	f.in <- link.Message{Topic: f.topics.changes, Payload: b}
}

func (f *fixture) waitCursor(t *testing.T, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if cur, _ := f.a.Cursor(); cur == want {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("cursor %d, want %d", cur, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits until the downlink has taken everything queued to it.
func (f *fixture) settle() {
	for len(f.in) > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond)
}

func (f *fixture) known(card string) bool {
	id, _ := f.a.Identify(context.Background(), agent.IdentifyRequest{Scan: card, Purpose: "analytics"})
	return id.Known
}

func TestAppliesInOrderAndDropsDuplicates(t *testing.T) {
	f := start(t)
	f.send(t, profile(1, "c1", card))
	f.send(t, profile(2, "c2", "4539578763621486"))
	f.waitCursor(t, 2)
	f.send(t, profile(1, "c1", card)) // redelivered
	f.send(t, profile(2, "c2", "4539578763621486"))
	f.settle()
	st := f.d.Stats()
	if st.Applied != 2 || st.Duplicates != 2 || !f.known(card) {
		t.Fatalf("stats %+v", st)
	}
}

// A day's changes share transactions: a sync reply's run, and a burst of
// the stream waiting in the queue (the broker's backlog for our session,
// here with a repeat and a change of the reply's run among it), each in
// one or two, not one per change.
func TestRunsShareTransactions(t *testing.T) {
	const n = 300
	cards := make([]string, n)
	for i := range cards {
		cards[i] = agenttest.Card(i)
	}
	f := startWith(t, func(f *fixture) {
		var run []wire.Change
		for i := range n / 2 {
			run = append(run, profile(uint64(i+1), fmt.Sprint("c", i), cards[i]))
		}
		b, err := wire.SignChangeSet(f.signer, scope, wire.ChangeSet{From: 1, To: n / 2, Changes: run})
		if err != nil {
			t.Fatal(err)
		}
		f.in <- link.Message{Topic: f.topics.sync, Payload: b}
		f.send(t, run[len(run)-1])
		for i := n / 2; i < n; i++ {
			f.send(t, profile(uint64(i+1), fmt.Sprint("c", i), cards[i]))
			if i == n-10 {
				f.send(t, profile(uint64(i+1), fmt.Sprint("c", i), cards[i])) // redelivered
			}
		}
	})
	f.waitCursor(t, n)
	f.settle()
	st := f.d.Stats()
	if st.Applied != n || st.Duplicates != 2 || st.Held != 0 {
		t.Fatalf("stats %+v", st)
	}
	if txs := f.ap.txs.Load(); txs > 4 {
		t.Fatalf("%d changes in %d transactions", n, txs)
	}
	for _, i := range []int{0, n/2 - 1, n / 2, n - 1} {
		if !f.known(cards[i]) {
			t.Fatalf("customer %d unknown after the runs", i)
		}
	}
}

// Changes that arrive ahead of a missing one are held, then applied as
// one run when it comes: not a transaction each.
func TestHeldChangesApplyAsARun(t *testing.T) {
	const n = 100
	f := startWith(t, func(f *fixture) {
		for i := 2; i <= n; i++ {
			f.send(t, profile(uint64(i), fmt.Sprint("c", i), agenttest.Card(i)))
		}
		f.send(t, profile(1, "c1", agenttest.Card(1)))
	})
	f.waitCursor(t, n)
	f.settle()
	if st := f.d.Stats(); st.Applied != n || st.Held != 0 {
		t.Fatalf("stats %+v", st)
	}
	if txs := f.ap.txs.Load(); txs > 4 {
		t.Fatalf("%d changes, %d of them held, in %d transactions", n, n-1, txs)
	}
}

// A gap holds the change back and asks for what is missing; when it
// arrives, both apply in order.
func TestGapHeldAndResynced(t *testing.T) {
	f := start(t)
	f.send(t, profile(1, "c1", card))
	f.waitCursor(t, 1)
	f.send(t, profile(3, "c3", "4556737586899855"))
	f.settle()
	if cur, _ := f.a.Cursor(); cur != 1 || f.known("4556737586899855") {
		t.Fatal("a change after a gap was applied")
	}
	if req, _ := f.syncs.last(); req.From != 2 {
		t.Fatalf("sync request from %d, want 2", req.From)
	}
	f.send(t, profile(2, "c2", "4539578763621486"))
	f.waitCursor(t, 3)
	eventually(t, "the held change applied", func() bool { return f.known("4556737586899855") && f.d.Stats().Held == 0 })
}

// Unsigned, wrongly signed and misdirected messages change nothing and are
// counted by reason.
func TestRejectsUnauthentic(t *testing.T) {
	f := start(t)
	c := profile(1, "c1", card)
	plain, _ := wire.EncodeChange(c)
	other, _ := wire.SignChange(newSigner(t), storeScope, c)
	otherStore, _ := wire.SignChange(f.signer, wire.Scope{Tenant: "acme", Store: "s2"}, c)
	tampered, _ := wire.SignChange(f.signer, storeScope, c)
	tampered[len(tampered)/2] ^= 0xff
	for _, b := range [][]byte{plain, other, otherStore, tampered, []byte("junk")} {
		f.in <- link.Message{Topic: f.topics.changes, Payload: b}
	}
	f.settle()
	if cur, _ := f.a.Cursor(); cur != 0 || f.known(card) {
		t.Fatal("an unauthentic change was applied")
	}
	st := f.d.Stats()
	total := uint64(0)
	for _, n := range st.Rejected {
		total += n
	}
	if total != 5 || st.Rejected["unknown_key"] != 1 {
		t.Fatalf("rejections %v", st.Rejected)
	}
}

func TestAcksVerifiedAndForwarded(t *testing.T) {
	f := start(t)
	good, _ := wire.SignAck(f.signer, scope, wire.Ack{Agent: "a1", Ranges: []wire.Range{{First: 1, Last: 9}}})
	forged, _ := wire.SignAck(newSigner(t), scope, wire.Ack{Agent: "a1", Ranges: []wire.Range{{First: 10, Last: 99}}})
	otherAgent, _ := wire.SignAck(f.signer, wire.Scope{Tenant: "acme", Store: "s1", Agent: "a2"}, wire.Ack{Agent: "a2", Ranges: []wire.Range{{First: 1, Last: 99}}})
	for _, b := range [][]byte{forged, otherAgent, good} {
		f.in <- link.Message{Topic: f.topics.acks, Payload: b}
	}
	select {
	case a := <-f.acks:
		if a.Ranges[0].Last != 9 {
			t.Fatalf("forwarded %+v", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("valid ack not forwarded")
	}
	f.settle()
	if len(f.acks) != 0 {
		t.Fatal("a forged or misdirected ack was forwarded")
	}
}

// A snapshot in chunks is applied atomically; a stale one is refused.
func TestSnapshotChunks(t *testing.T) {
	f := start(t)
	f.send(t, profile(1, "old", card))
	f.waitCursor(t, 1)
	chunk := func(more bool, changes ...wire.Change) {
		b, err := wire.SignChangeSet(f.signer, scope, wire.ChangeSet{From: 1, To: 40, Snapshot: true, More: more, Changes: changes})
		if err != nil {
			t.Fatal(err)
		}
		f.in <- link.Message{Topic: f.topics.sync, Payload: b}
	}
	consentOf := func(id string) wire.Change {
		return wire.Change{Seq: 40, Body: &wire.ConsentChange{Profile: id, Purposes: map[string]wire.ConsentEntry{
			"loyalty": {Status: wire.StatusGranted, Basis: wire.BasisConsent, At: time.Now().UnixMilli()}}}}
	}
	p2 := profile(40, "new", "4539578763621486")
	chunk(true, consentOf("new"), p2)
	f.settle()
	if !f.known(card) || f.known("4539578763621486") {
		t.Fatal("a half snapshot is visible, or the old cache is gone")
	}
	chunk(false, profile(40, "new2", "4556737586899855"))
	f.waitCursor(t, 40)
	if f.known(card) || !f.known("4539578763621486") || !f.known("4556737586899855") {
		t.Fatal("snapshot not applied whole")
	}
	// The same snapshot again is stale now.
	chunk(false, profile(40, "old", card))
	f.settle()
	if f.known(card) || f.d.Stats().Rejected["stale_snapshot"] != 1 {
		t.Fatalf("stale snapshot: %v", f.d.Stats().Rejected)
	}
}

// A policy change keeps the local default and drop flags where it can.
func TestPolicyChange(t *testing.T) {
	f := start(t)
	f.send(t, wire.Change{Seq: 1, Body: &wire.PolicyChange{
		Purposes: []wire.PolicyPurpose{{Name: "analytics", Basis: wire.BasisLegitimateInterest}, {Name: "loyalty", Basis: wire.BasisConsent}},
		Events:   map[string]string{"Product Viewed": "analytics"},
	}})
	f.waitCursor(t, 1)
	eventually(t, "the new policy in force", func() bool { return f.a.Policy().Seq == 1 })
	p := f.a.Policy()
	if p.Default != "analytics" || len(p.Purposes) != 2 {
		t.Fatalf("policy %+v", p)
	}
	if b, _ := p.Basis("marketing"); b != "" {
		t.Fatal("a purpose the central dropped is still in force")
	}
}

// eventually waits for what another goroutine finishes just after the
// cursor moves (in-memory state set once the transaction has committed).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
