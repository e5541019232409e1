package central

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/sync/brokertest"
	"github.com/storeagent/storeagent/sync/wire"
)

const (
	testTenant = "acme"
	testStore  = "s1"
)

// startMosquitto starts a real broker for the test (brokertest.Start)
// and returns its URL.
func startMosquitto(t testing.TB, extra ...string) string {
	t.Helper()
	return brokertest.Start(t, extra...).URL
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// testKey returns a deterministic key: Ed25519 signatures are
// deterministic, so test vectors are stable.
func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("storeagent central test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

var testTenantKey = bytes.Repeat([]byte{0x42}, 32)

func testVerifier(t testing.TB) *wire.Verifier {
	t.Helper()
	v, err := wire.NewVerifier(testKey("central").Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(t testing.TB, broker, dir string, customers int) Config {
	return Config{
		Broker: broker, ClientID: "cdpsim-" + strconv.Itoa(freePort(t)), Tenant: testTenant, Store: testStore,
		Key: testKey("central"), TenantKey: testTenantKey, DataDir: dir, Customers: customers, Seed: 7,
		Logger: quietLogger(),
	}
}

// running is a Central whose Run runs for the test.
type running struct {
	*Central
	cancel context.CancelFunc
	done   chan error
}

// stop ends Run and closes the central; it is safe to call twice.
func (r *running) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("run: %v", err)
	}
	r.cancel = nil
	if err := r.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// startCentral opens a Central with cfg, runs it and waits until it has
// subscribed. t.Cleanup stops it.
func startCentral(t testing.TB, cfg Config) *running {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("new central: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Central: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	select {
	case <-c.Ready():
	case err := <-r.done:
		t.Fatalf("run ended before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("central not ready after 10s")
	}
	return r
}

// testAgent is a minimal agent: a real paho client that sends batches and
// SyncRequests and collects the verified Acks and ChangeSets addressed to
// it.
type testAgent struct {
	t      testing.TB
	scope  wire.Scope
	client mqtt.Client
	v      *wire.Verifier

	acks    chan wire.Ack
	sets    chan receivedSet
	changes chan wire.Change
	raw     chan []byte // payloads on the acks topic that fail verification
	bad     atomic.Int64
}

type receivedSet struct {
	cs   wire.ChangeSet
	size int
}

func newTestAgent(t testing.TB, broker, agent string) *testAgent {
	t.Helper()
	a := &testAgent{
		t: t, scope: wire.Scope{Tenant: testTenant, Store: testStore, Agent: agent}, v: testVerifier(t),
		acks: make(chan wire.Ack, 1024), sets: make(chan receivedSet, 1024),
		changes: make(chan wire.Change, 1024), raw: make(chan []byte, 64),
	}
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID("agent-" + agent + "-" + strconv.Itoa(freePort(t))).
		SetCleanSession(true).SetProtocolVersion(4).SetOrderMatters(true).SetAutoReconnect(false)
	a.client = mqtt.NewClient(o)
	if tok := a.client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("agent connect: %v", tok.Error())
	}
	t.Cleanup(func() { a.client.Disconnect(100) })
	subs := map[wire.TopicKind]mqtt.MessageHandler{
		wire.TopicAcks:      a.onAck,
		wire.TopicSyncReply: a.onSet,
		wire.TopicChanges:   a.onChange,
	}
	for k, h := range subs {
		topic := must(a.scope.Topic(k))
		if tok := a.client.Subscribe(topic, 1, h); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("agent subscribe: %v", tok.Error())
		}
	}
	return a
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func (a *testAgent) onAck(_ mqtt.Client, m mqtt.Message) {
	ack, err := wire.VerifyAck(a.v, a.scope, m.Payload())
	if err != nil {
		a.bad.Add(1)
		a.raw <- m.Payload()
		return
	}
	a.acks <- ack
}

func (a *testAgent) onSet(_ mqtt.Client, m mqtt.Message) {
	cs, err := wire.VerifyChangeSet(a.v, a.scope, m.Payload())
	if err != nil {
		a.bad.Add(1)
		a.t.Errorf("change set does not verify: %v", err)
		return
	}
	a.sets <- receivedSet{cs, len(m.Payload())}
}

func (a *testAgent) onChange(_ mqtt.Client, m mqtt.Message) {
	ch, err := wire.VerifyChange(a.v, wire.Scope{Tenant: testTenant, Store: testStore}, m.Payload())
	if err != nil {
		a.bad.Add(1)
		return
	}
	a.changes <- ch
}

func (a *testAgent) publish(k wire.TopicKind, payload []byte) {
	a.t.Helper()
	tok := a.client.Publish(must(a.scope.Topic(k)), 1, false, payload)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		a.t.Fatalf("agent publish: %v", tok.Error())
	}
}

// sendBatch sends events as the batch first..last.
func (a *testAgent) sendBatch(first, last uint64, events []wire.Event) {
	a.t.Helper()
	b, err := wire.EncodeEventBatch(wire.EventBatch{
		Agent: a.scope.Agent, Store: a.scope.Store, First: first, Last: last, SentAt: time.Now().UnixMilli(), Events: events,
	})
	if err != nil {
		a.t.Fatalf("encode batch: %v", err)
	}
	a.publish(wire.TopicEvents, b)
}

func (a *testAgent) sendSync(from uint64) {
	a.t.Helper()
	a.publish(wire.TopicSyncRequest, must(wire.EncodeSyncRequest(wire.SyncRequest{Agent: a.scope.Agent, From: from})))
}

// waitAck returns the next Ack or fails after timeout.
func (a *testAgent) waitAck(timeout time.Duration) wire.Ack {
	a.t.Helper()
	select {
	case ack := <-a.acks:
		return ack
	case <-time.After(timeout):
		a.t.Fatal("no ack in time")
		return wire.Ack{}
	}
}

// noAck fails if an Ack arrives within d.
func (a *testAgent) noAck(d time.Duration) {
	a.t.Helper()
	select {
	case ack := <-a.acks:
		a.t.Fatalf("unexpected ack %+v", ack.Ranges)
	case <-time.After(d):
	}
}

// waitRanges collects Acks until they name every range in want, in any
// grouping, and fails on any other range.
func (a *testAgent) waitRanges(want ...wire.Range) wire.Ack {
	a.t.Helper()
	pending := map[wire.Range]bool{}
	for _, r := range want {
		pending[r] = true
	}
	var last wire.Ack
	for len(pending) > 0 {
		last = a.waitAck(10 * time.Second)
		for _, r := range last.Ranges {
			if !pending[r] {
				a.t.Fatalf("ack names %v, want one of %v", r, want)
			}
			delete(pending, r)
		}
	}
	return last
}

// reply collects ChangeSets until one has more false.
func (a *testAgent) reply(timeout time.Duration) []receivedSet {
	a.t.Helper()
	var out []receivedSet
	deadline := time.After(timeout)
	for {
		select {
		case s := <-a.sets:
			out = append(out, s)
			if !s.cs.More {
				return out
			}
		case <-deadline:
			a.t.Fatalf("sync reply incomplete after %v: %d sets", timeout, len(out))
		}
	}
}

func (a *testAgent) waitChange(timeout time.Duration) wire.Change {
	a.t.Helper()
	select {
	case ch := <-a.changes:
		return ch
	case <-time.After(timeout):
		a.t.Fatal("no change in time")
		return wire.Change{}
	}
}

var idGen event.IDs

// events returns n valid track events of the agent.
func events(agent string, n int) []wire.Event {
	out := make([]wire.Event, n)
	for i := range out {
		out[i] = wire.Event{
			MessageID: idGen.Next(), Type: wire.EventTrack, Event: "Product Viewed", AnonymousID: "anon-1",
			OriginalTimestamp: time.Now().UnixMilli(), Properties: map[string]any{"i": int64(i)},
			Context: wire.Context{Store: testStore, Agent: agent, Device: agent, Purpose: PurposeAnalytics,
				Consent: wire.Consent{CategoryPreferences: map[string]bool{PurposeAnalytics: true}}},
		}
	}
	return out
}

// agentReport returns the report of one agent, failing if absent.
func agentReport(t testing.TB, r Report, agent string) AgentReport {
	t.Helper()
	for _, a := range r.Agents {
		if a.Store == testStore && a.Agent == agent {
			return a
		}
	}
	t.Fatalf("no report for agent %s in %+v", agent, r.Agents)
	return AgentReport{}
}

// eventually polls cond until it holds or 10s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
