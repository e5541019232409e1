package central

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/storeagent/storeagent/sync/wire"
)

// BenchmarkUplinkAcks measures what an agent sees of the central through
// a real mosquitto: batches acknowledged per second (each journaled and
// fsynced first, then acked with a signature), and events per second. The
// baseline in the same run is stop-and-wait (one batch in flight); the
// others keep a window of batches in flight, as the agent's uplink does.
func BenchmarkUplinkAcks(b *testing.B) {
	brokers := map[bool]string{false: startMosquitto(b), true: startMosquitto(b, "set_tcp_nodelay true")}
	for _, tc := range []struct {
		nodelay        bool
		window, events int
	}{{false, 1, 100}, {false, 16, 100}, {false, 64, 100}, {true, 1, 100}, {true, 16, 100}, {true, 64, 100}, {true, 64, 500}} {
		broker := brokers[tc.nodelay]
		b.Run(fmt.Sprintf("nodelay=%t/window=%d/events=%d", tc.nodelay, tc.window, tc.events), func(b *testing.B) {
			c := startCentral(b, testConfig(b, broker, b.TempDir(), 0))
			a := newTestAgent(b, broker, fmt.Sprintf("bench-%d-%d", tc.window, tc.events))
			topic := must(a.scope.Topic(wire.TopicEvents))
			tmpl := events(a.scope.Agent, tc.events)
			inflight, sent := 0, 0
			var seq uint64
			start := time.Now()
			// b.Loop runs this function once, so one central serves every
			// iteration (with b.N, each ramp-up call would add a central).
			for b.Loop() {
				for inflight >= tc.window {
					ack := a.waitAck(10 * time.Second)
					inflight -= len(ack.Ranges)
				}
				for j := range tmpl {
					tmpl[j].MessageID = idGen.Next()
				}
				payload, err := wire.EncodeEventBatch(wire.EventBatch{Agent: a.scope.Agent, Store: testStore,
					First: seq + 1, Last: seq + uint64(tc.events), SentAt: time.Now().UnixMilli(), Events: tmpl})
				if err != nil {
					b.Fatal(err)
				}
				seq += uint64(tc.events)
				a.client.Publish(topic, 1, false, payload)
				inflight++
				sent++
			}
			for inflight > 0 {
				inflight -= len(a.waitAck(10 * time.Second).Ranges)
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(sent)/elapsed.Seconds(), "acks/s")
			b.ReportMetric(float64(sent*tc.events)/elapsed.Seconds(), "events/s")
			if r := agentReport(b, c.Report(), a.scope.Agent); r.Unique != uint64(sent*tc.events) || r.Gaps != 0 || r.Duplicates != 0 {
				b.Fatalf("report %+v", r)
			}
		})
	}
}

// BenchmarkSnapshotMQTT measures a million-customer snapshot answered to a
// SyncRequest through a real mosquitto: from the request to the last chunk
// received by a subscriber that only counts (it does not decode, so the
// number is the central's and the broker's).
func BenchmarkSnapshotMQTT(b *testing.B) {
	broker := startMosquitto(b, "set_tcp_nodelay true")
	startCentral(b, testConfig(b, broker, b.TempDir(), 1_000_000))
	scope := wire.Scope{Tenant: testTenant, Store: testStore, Agent: "bench"}
	got := make(chan bool, 64) // more, per chunk received
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID("bench-snapshot").SetProtocolVersion(4)
	cl := mqtt.NewClient(o)
	if tok := cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	cl.Subscribe(must(scope.Topic(wire.TopicSyncReply)), 1, func(_ mqtt.Client, m mqtt.Message) {
		// The last chunk is the only one whose "more" is false: CBOR
		// "more" followed by false (0xf4).
		got <- !bytes.Contains(m.Payload(), []byte("dmore\xf4"))
	}).Wait()
	req := must(wire.EncodeSyncRequest(wire.SyncRequest{Agent: "bench", From: 1}))
	for b.Loop() {
		start := time.Now()
		cl.Publish(must(scope.Topic(wire.TopicSyncRequest)), 1, false, req).Wait()
		chunks := 0
		for more := true; more; chunks++ {
			select {
			case more = <-got:
			case <-time.After(60 * time.Second):
				b.Fatalf("snapshot stalled after %d chunks", chunks)
			}
		}
		elapsed := time.Since(start)
		b.ReportMetric(float64(chunks)/elapsed.Seconds(), "chunks/s")
		b.ReportMetric(1e6/elapsed.Seconds(), "customers/s")
		b.ReportMetric(elapsed.Seconds(), "s/snapshot")
	}
}
