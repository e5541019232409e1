package central

import (
	"reflect"
	"testing"
	"time"

	"github.com/storeagent/storeagent/sync/brokertest"
	"github.com/storeagent/storeagent/sync/wire"
)

func TestBatchesAcceptedAckedDeduplicated(t *testing.T) {
	broker := startMosquitto(t)
	dir := t.TempDir()
	c := startCentral(t, testConfig(t, broker, dir, 0))
	c.SetPace(25)
	a := newTestAgent(t, broker, "pos-1")

	e := events("pos-1", 6)
	a.sendBatch(1, 3, e[:3])
	a.sendBatch(4, 7, e[3:]) // a hole: seq 5 was shed telemetry
	ack := a.waitRanges(wire.Range{First: 1, Last: 3}, wire.Range{First: 4, Last: 7})
	if ack.Pace != 25 || ack.Agent != "pos-1" {
		t.Errorf("ack pace %d agent %s, want 25 pos-1", ack.Pace, ack.Agent)
	}

	a.sendBatch(1, 3, e[:3]) // an ack was lost: the agent re-sends
	a.waitRanges(wire.Range{First: 1, Last: 3})

	got := agentReport(t, c.Report(), "pos-1")
	want := AgentReport{Store: testStore, Agent: "pos-1", Batches: 3, Received: 9, Unique: 6, Duplicates: 3, LastAccepted: 7}
	want.LastSeen = got.LastSeen
	if !reflect.DeepEqual(got, want) {
		t.Errorf("report\n got %+v\nwant %+v", got, want)
	}
	var ids []string
	if err := ReadEvents(dir, func(ev ReceivedEvent) error {
		if ev.Event == nil || ev.Event.MessageID != ev.MessageID {
			t.Errorf("event body missing or wrong for %s", ev.MessageID)
		}
		ids = append(ids, ev.MessageID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 6 {
		t.Fatalf("recorded %d events, want 6", len(ids))
	}
	for i, id := range ids {
		if id != e[i].MessageID {
			t.Errorf("event %d is %s, want %s (capture order)", i, id, e[i].MessageID)
		}
	}
}

func TestOverlappingResendIsNotOutOfOrder(t *testing.T) {
	broker := startMosquitto(t)
	c := startCentral(t, testConfig(t, broker, t.TempDir(), 0))
	a := newTestAgent(t, broker, "pos-1")
	e := events("pos-1", 10)

	a.sendBatch(1, 5, e[:5])
	a.waitRanges(wire.Range{First: 1, Last: 5})
	// After a timeout the agent re-chunks: 3..8 overlaps the accepted 1..5.
	a.sendBatch(3, 8, e[2:8])
	a.waitRanges(wire.Range{First: 3, Last: 8})
	// A batch whose overlap is only holes (shed telemetry) and new events.
	a.sendBatch(7, 10, e[8:10])
	a.waitRanges(wire.Range{First: 7, Last: 10})

	got := agentReport(t, c.Report(), "pos-1")
	if got.OutOfOrder != 0 || got.Unique != 10 || got.Duplicates != 3 || got.LastAccepted != 10 || got.Gaps != 0 {
		t.Errorf("report %+v, want unique 10, duplicates 3, out of order 0, last accepted 10", got)
	}
}

func TestGapIsNotAcked(t *testing.T) {
	broker := startMosquitto(t)
	c := startCentral(t, testConfig(t, broker, t.TempDir(), 0))
	a := newTestAgent(t, broker, "pos-1")
	e := events("pos-1", 6)

	a.sendBatch(1, 2, e[:2])
	a.waitRanges(wire.Range{First: 1, Last: 2})
	a.sendBatch(5, 6, e[4:6]) // 3..4 lost on the way
	a.noAck(300 * time.Millisecond)
	r := agentReport(t, c.Report(), "pos-1")
	if r.Gaps != 1 || r.LastAccepted != 2 || r.Unique != 2 {
		t.Fatalf("after a gap: %+v, want gaps 1, last accepted 2, unique 2", r)
	}
	// The agent re-sends from its oldest unacknowledged batch.
	a.sendBatch(3, 4, e[2:4])
	a.sendBatch(5, 6, e[4:6])
	a.waitRanges(wire.Range{First: 3, Last: 4}, wire.Range{First: 5, Last: 6})
	r = agentReport(t, c.Report(), "pos-1")
	if r.Gaps != 1 || r.LastAccepted != 6 || r.Unique != 6 || r.OutOfOrder != 0 {
		t.Fatalf("after the re-send: %+v", r)
	}
}

func TestOutOfOrderCounted(t *testing.T) {
	broker := startMosquitto(t)
	c := startCentral(t, testConfig(t, broker, t.TempDir(), 0))
	a := newTestAgent(t, broker, "pos-1")
	e := events("pos-1", 8)

	a.sendBatch(1, 3, e[:3])
	a.waitRanges(wire.Range{First: 1, Last: 3})
	// A reordering agent: a never-sent event placed before delivered ones.
	a.sendBatch(1, 4, []wire.Event{e[3], e[0], e[1], e[2]})
	a.waitRanges(wire.Range{First: 1, Last: 4})
	// Two new events in a batch with room for one above lastAccepted (4).
	a.sendBatch(4, 5, []wire.Event{e[4], e[5]})
	a.waitRanges(wire.Range{First: 4, Last: 5})

	r := agentReport(t, c.Report(), "pos-1")
	if r.OutOfOrder != 2 {
		t.Errorf("out of order %d, want 2 (%+v)", r.OutOfOrder, r)
	}
}

func TestInvalidMessagesCounted(t *testing.T) {
	broker := startMosquitto(t)
	c := startCentral(t, testConfig(t, broker, t.TempDir(), 0))
	a := newTestAgent(t, broker, "pos-1")

	a.publish(wire.TopicEvents, []byte("not cbor"))
	other := must(wire.EncodeEventBatch(wire.EventBatch{Agent: "pos-2", Store: testStore, First: 1, Last: 1,
		SentAt: time.Now().UnixMilli(), Events: events("pos-2", 1)}))
	a.publish(wire.TopicEvents, other)             // pos-1 sends a batch in pos-2's name
	a.publish(wire.TopicSyncRequest, []byte{0xa0}) // an empty map: no "v"
	a.publish(wire.TopicStatus, must(wire.EncodeAgentStatus(wire.AgentStatus{Agent: "pos-1", Store: testStore,
		Online: true, At: time.Now().UnixMilli(), Version: "test", Outbox: 3, Cursor: 1})))
	tok := a.client.Publish("cdp/v1/"+testTenant+"/up/s1/pos-1/bogus", 1, false, []byte("x"))
	tok.Wait()
	a.noAck(200 * time.Millisecond)

	eventually(t, "invalid messages counted", func() bool {
		r := c.Report()
		return len(r.Agents) == 1 && r.Agents[0].Invalid == 3 && r.Agents[0].Status != nil && r.Unattributed[reasonBadTopic] == 1
	})
	r := agentReport(t, c.Report(), "pos-1")
	want := map[string]uint64{reasonMalformed: 1, reasonBadVersion: 1, reasonScopeMismatch: 1}
	if !reflect.DeepEqual(r.InvalidReasons, want) || r.Batches != 0 || r.Status.Outbox != 3 || !r.Status.Online {
		t.Errorf("report %+v, reasons %v, want %v", r, r.InvalidReasons, want)
	}
}

func TestRestartKeepsSeenIDsAndLastAccepted(t *testing.T) {
	broker := startMosquitto(t)
	dir := t.TempDir()
	cfg := testConfig(t, broker, dir, 0)
	e := events("pos-1", 5)

	c1 := startCentral(t, cfg)
	a := newTestAgent(t, broker, "pos-1")
	a.sendBatch(1, 3, e[:3])
	a.waitRanges(wire.Range{First: 1, Last: 3})
	before := c1.Report()
	c1.stop(t)

	fromFiles, err := ReadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	before.Live = nil
	if !reflect.DeepEqual(fromFiles, before) {
		t.Errorf("report from files differs from the live one\nfiles %+v\n live %+v", fromFiles, before)
	}

	c2 := startCentral(t, cfg)
	a.sendBatch(5, 5, e[4:5]) // beyond lastAccepted+1 = 4: a gap, even after the restart
	a.noAck(300 * time.Millisecond)
	a.sendBatch(1, 4, e[:4]) // the re-send: three ids seen before the restart
	a.waitRanges(wire.Range{First: 1, Last: 4})
	r := agentReport(t, c2.Report(), "pos-1")
	if r.Duplicates != 3 || r.Unique != 4 || r.Gaps != 1 || r.LastAccepted != 4 || r.OutOfOrder != 0 {
		t.Errorf("after restart: %+v", r)
	}
	c2.stop(t)
	after, err := ReadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := agentReport(t, after, "pos-1"); !reflect.DeepEqual(got, r) {
		t.Errorf("report after the process ended\n got %+v\nwant %+v", got, r)
	}
}

func TestDropAcksAndPublishRaw(t *testing.T) {
	broker := startMosquitto(t)
	c := startCentral(t, testConfig(t, broker, t.TempDir(), 0))
	a := newTestAgent(t, broker, "pos-1")
	e := events("pos-1", 2)

	if n := c.DropAcks(1); n != 1 {
		t.Fatalf("pending %d, want 1", n)
	}
	a.sendBatch(1, 2, e)
	a.noAck(300 * time.Millisecond)
	a.sendBatch(1, 2, e) // the agent's ack timeout
	a.waitRanges(wire.Range{First: 1, Last: 2})
	if r := agentReport(t, c.Report(), "pos-1"); r.Unique != 2 || r.Duplicates != 2 {
		t.Errorf("report %+v", r)
	}
	if l := c.Report().Live; l.AcksDropped != 1 || l.AcksSent != 1 {
		t.Errorf("live %+v, want one ack dropped and one sent", l)
	}

	topic := must(a.scope.Topic(wire.TopicAcks))
	if err := c.PublishRaw(t.Context(), topic, []byte("unsigned"), false); err != nil {
		t.Fatal(err)
	}
	select {
	case raw := <-a.raw:
		if string(raw) != "unsigned" {
			t.Errorf("raw payload %q", raw)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("raw message not received")
	}
}

// TestManyAgentsPipelined sends from several agents at once, each with
// batches in flight, and checks every batch is acknowledged exactly as
// sent and counted once.
func TestManyAgentsPipelined(t *testing.T) {
	broker := startMosquitto(t)
	c := startCentral(t, testConfig(t, broker, t.TempDir(), 0))
	const agents, batches, per = 4, 25, 20
	done := make(chan struct{})
	for i := range agents {
		id := "pos-" + string(rune('a'+i))
		a := newTestAgent(t, broker, id)
		go func() {
			defer func() { done <- struct{}{} }()
			var want []wire.Range
			for b := range batches {
				first := uint64(b*per + 1)
				r := wire.Range{First: first, Last: first + per - 1}
				want = append(want, r)
				ev, err := wire.EncodeEventBatch(wire.EventBatch{Agent: id, Store: testStore, First: r.First, Last: r.Last,
					SentAt: time.Now().UnixMilli(), Events: events(id, per)})
				if err != nil {
					t.Error(err)
					return
				}
				a.client.Publish(must(a.scope.Topic(wire.TopicEvents)), 1, false, ev)
			}
			var got []wire.Range
			for len(got) < batches {
				select {
				case ack := <-a.acks:
					got = append(got, ack.Ranges...)
				case <-time.After(10 * time.Second):
					t.Errorf("%s: %d of %d acks", id, len(got), batches)
					return
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: acked %v, want %v in order", id, got, want)
			}
		}()
	}
	for range agents {
		<-done
	}
	for _, r := range c.Report().Agents {
		if r.Unique != batches*per || r.Duplicates != 0 || r.OutOfOrder != 0 || r.Gaps != 0 || r.LastAccepted != batches*per {
			t.Errorf("agent %s: %+v", r.Agent, r)
		}
	}
}

// TestBrokerRestart: the central resubscribes when a broker comes back
// without the sessions it had (no persistence), and keeps acknowledging.
func TestBrokerRestart(t *testing.T) {
	b := brokertest.Start(t)
	c := startCentral(t, testConfig(t, b.URL, t.TempDir(), 0))
	e := events("pos-1", 2)
	a := newTestAgent(t, b.URL, "pos-1")
	a.sendBatch(1, 1, e[:1])
	a.waitRanges(wire.Range{First: 1, Last: 1})

	b.Restart()
	eventually(t, "central reconnected", c.Connected)
	a = newTestAgent(t, b.URL, "pos-1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The central may not have subscribed again yet: re-send as an
		// agent does after its ack timeout.
		a.sendBatch(1, 2, e)
		select {
		case ack := <-a.acks:
			if len(ack.Ranges) != 1 || ack.Ranges[0] != (wire.Range{First: 1, Last: 2}) {
				t.Fatalf("ack %v", ack.Ranges)
			}
			r := agentReport(t, c.Report(), "pos-1")
			if r.Unique != 2 || r.LastAccepted != 2 {
				t.Errorf("report %+v", r)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no ack after the broker restart")
		}
	}
}

// TestReportCountsOnlyWhatIsOnDisk: whenever the report counts an event,
// the central's files hold it. (The report once ran ahead of the journal's
// fsync by a group, and a test that waited on the count and then read the
// files missed the last events.)
func TestReportCountsOnlyWhatIsOnDisk(t *testing.T) {
	broker := startMosquitto(t)
	dir := t.TempDir()
	c := startCentral(t, testConfig(t, broker, dir, 0))
	a := newTestAgent(t, broker, "pos-1")
	const batches, per = 60, 5
	e := events("pos-1", batches*per)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range batches {
			a.sendBatch(uint64(i*per+1), uint64(i*per+per), e[i*per:i*per+per])
		}
	}()
	for checks := 0; ; checks++ {
		counted := uint64(0)
		for _, r := range c.Report().Agents {
			counted += r.Unique
		}
		onDisk := uint64(0)
		if err := ReadEvents(dir, func(ReceivedEvent) error { onDisk++; return nil }); err != nil {
			t.Fatal(err)
		}
		if onDisk < counted {
			t.Fatalf("the report counts %d events, the files hold %d", counted, onDisk)
		}
		if counted == batches*per {
			t.Logf("%d checks while %d batches arrived", checks, batches)
			break
		}
		if checks > 100_000 {
			t.Fatalf("only %d of %d events counted", counted, batches*per)
		}
	}
	<-done
}
