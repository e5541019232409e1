package bus

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/brokertest"
)

func externalConfig(broker string) Config {
	cfg := Config{
		Mode: ModeExternal, StoreID: storeID, Purposes: purposes(),
		External: ExternalConfig{Broker: broker, ClientID: "storeagent-" + storeID},
	}
	for _, d := range testDevices {
		cfg.Devices = append(cfg.Devices, DeviceConfig{ID: d.ID, Kind: d.Kind, Purpose: d.Purpose})
	}
	return cfg
}

// anonymous connects a device to the store's broker, which lets anyone in.
func anonymous(t testing.TB, m *brokertest.Broker, clientID string) paho.Client {
	t.Helper()
	c, err := client(t, m.URL, clientID, "", "")
	if err != nil {
		t.Fatalf("connect %s to mosquitto: %v", clientID, err)
	}
	return c
}

// In external mode the agent is a client of the store's broker, and
// answers the same way.
func TestExternalBrokerAnswersDevices(t *testing.T) {
	m := brokertest.Start(t)
	f := newFixture(t)
	f.seedBoth(t)

	// A request retained on the broker before the agent subscribes is a
	// stale replay: counted, never answered.
	spk := anonymous(t, m, "dev-speaker-1")
	replies, _ := subscribe(t, spk, topicOf("speaker-1", "identify/reply"))
	if tok := spk.Publish(topicOf("speaker-1", "identify"), 1, true, `{"requestId":"old","scan":"`+card+`"}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	b := startBus(t, externalConfig(m.URL), f.a, nil)
	eventually(t, "retained request refused", func() bool { return b.Stats().Rejects[CodeRetained] == 1 })
	replies.none(t, 200*time.Millisecond)

	t.Run("identify for the device's purpose", func(t *testing.T) {
		got := ask(t, spk, "speaker-1", "identify", `{"requestId":"r1","scan":"`+card+`"}`)
		if got["userId"] != cust1 || !slices.Equal(attrNames(got), []string{"tier"}) {
			t.Fatalf("answer %v", got)
		}
	})
	t.Run("event acked once durable", func(t *testing.T) {
		ksk := anonymous(t, m, "dev-kiosk-1")
		id := event.NewID()
		got := ask(t, ksk, "kiosk-1", "events", map[string]any{"messageId": id, "event": "Product Viewed", "userId": cust2})
		if got["messageId"] != id || got["outcome"] != string(agent.OutcomeQueued) {
			t.Fatalf("ack %v", got)
		}
		_, evs := f.outbox(t)
		if !slices.ContainsFunc(evs, func(ev *event.Event) bool { return ev.MessageID == id }) {
			t.Fatal("acknowledged event not in the outbox")
		}
	})
	t.Run("sighting", func(t *testing.T) {
		bcn := anonymous(t, m, "dev-beacon-1")
		publish(t, bcn, topicOf("beacon-1", "sightings"), 1, `{"rssi":-70}`)
		var rec store.Record
		if ev := queued(t, f, beaconSighted, &rec); ev.Context.Device != "beacon-1" || ev.UserID != "" {
			t.Fatalf("event %+v", ev)
		}
	})
	t.Run("unknown device", func(t *testing.T) {
		ghost := anonymous(t, m, "ghost")
		if got := ask(t, ghost, "ghost-1", "identify", `{"requestId":"g","scan":"`+card+`"}`); errCode(got) != string(CodeUnknownDevice) {
			t.Fatalf("answer %v", got)
		}
	})
	t.Run("topic not for the device's kind", func(t *testing.T) {
		bcn := anonymous(t, m, "dev-beacon-1b")
		if got := ask(t, bcn, "beacon-1", "identify", `{"requestId":"b","scan":"`+card+`"}`); errCode(got) != string(CodeNotAllowed) {
			t.Fatalf("answer %v", got)
		}
	})
	if s := b.Stats(); !s.Connected || s.Mode != ModeExternal || s.Messages["identify"] < 3 {
		t.Fatalf("stats %+v", s)
	}
}

// The broker going away and coming back is weathered: the agent
// reconnects, subscribes again and answers.
func TestExternalReconnects(t *testing.T) {
	m := brokertest.Start(t)
	f := newFixture(t)
	f.seedBoth(t)
	b := startBus(t, externalConfig(m.URL), f.a, nil)

	m.Stop()
	eventually(t, "disconnect noticed", func() bool { return !b.Stats().Connected })
	m.Restart()
	eventually(t, "reconnected", func() bool { s := b.Stats(); return s.Connected && s.Reconnects == 1 })

	spk := anonymous(t, m, "dev-speaker-1")
	if got := ask(t, spk, "speaker-1", "identify", `{"requestId":"r","scan":"`+card+`"}`); got["userId"] != cust1 {
		t.Fatalf("answer after reconnect %v", got)
	}
}

// Offline-first: with no broker at all Run keeps trying, and still stops
// at once when told.
func TestExternalStopsWhileBrokerDown(t *testing.T) {
	f := newFixture(t)
	b, err := New(externalConfig("tcp://127.0.0.1:"+strconv.Itoa(freePort(t))), f.a, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	time.Sleep(600 * time.Millisecond) // a few attempts
	select {
	case <-b.Ready():
		t.Fatal("ready without a broker")
	default:
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of cancel")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Run took %s to stop", d)
	}
}

// Over TLS, with the CA from ca_file.
func TestExternalTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	m := brokertest.Start(t, "certfile "+cert, "keyfile "+key)
	f := newFixture(t)
	f.seedBoth(t)
	cfg := externalConfig("ssl://127.0.0.1:" + strconv.Itoa(m.Port))
	cfg.External.CAFile = cert
	startBus(t, cfg, f.a, nil)

	o := paho.NewClientOptions().AddBroker("ssl://127.0.0.1:" + strconv.Itoa(m.Port)).SetClientID("dev-speaker-1").
		SetProtocolVersion(4).SetAutoReconnect(false).SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	spk := paho.NewClient(o)
	if tok := spk.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("device over TLS: %v", tok.Error())
	}
	t.Cleanup(func() { spk.Disconnect(50) })
	if got := ask(t, spk, "speaker-1", "identify", `{"requestId":"t","scan":"`+card+`"}`); got["userId"] != cust1 {
		t.Fatalf("answer %v", got)
	}
}

// freePort is a loopback port nothing listens on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
