package bus

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/store"
)

// embedded starts an embedded bus over a fresh agent with both customers.
func embedded(t *testing.T) (*fixture, *Bus) {
	t.Helper()
	f := newFixture(t)
	f.seedBoth(t)
	return f, startBus(t, embeddedConfig(t), f.a, nil)
}

// Invariant 4: a speaker configured for loyalty gets the loyalty slice,
// whatever it asks, and cannot ask for another purpose.
func TestSpeakerGetsOnlyItsPurpose(t *testing.T) {
	_, b := embedded(t)
	spk := connect(t, b, "speaker-1")
	tests := []struct {
		name    string
		payload string
	}{
		{"loyalty scan", `{"requestId":"r1","scan":"` + card + `"}`},
		{"spoken with spaces", `{"requestId":"r2","scan":"7992 7398 713"}`},
		{"typed e-mail", `{"requestId":"r3","kind":"email","value":"` + strings.ToUpper(email) + `"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ask(t, spk, "speaker-1", "identify", tc.payload)
			if got["known"] != true || got["userId"] != cust1 || got["permitted"] != true || got["purpose"] != "loyalty" {
				t.Fatalf("answer %v", got)
			}
			if names := attrNames(got); !slices.Equal(names, []string{"tier"}) {
				t.Fatalf("attributes %v, want only the loyalty one", names)
			}
			if c, _ := got["consent"].(map[string]any); c["loyalty"] != true {
				t.Fatalf("consent %v", got["consent"])
			}
		})
	}
	t.Run("purpose in payload refused", func(t *testing.T) {
		got := ask(t, spk, "speaker-1", "identify", `{"requestId":"r4","scan":"`+card+`","purpose":"marketing"}`)
		if errCode(got) != string(CodeUnknownField) || got["requestId"] != "r4" {
			t.Fatalf("answer %v", got)
		}
	})
}

// Shared devices never merge customers: one speaker, two shoppers, two
// separate answers; and an unknown card gets its own pseudonym, never the
// device's id.
func TestSharedSpeakerKeepsShoppersApart(t *testing.T) {
	_, b := embedded(t)
	spk := connect(t, b, "speaker-1")
	first := ask(t, spk, "speaker-1", "identify", `{"requestId":"a","scan":"`+card+`"}`)
	second := ask(t, spk, "speaker-1", "identify", `{"requestId":"b","scan":"`+card2+`"}`)
	again := ask(t, spk, "speaker-1", "identify", `{"requestId":"c","scan":"`+card+`"}`)
	if first["userId"] != cust1 || second["userId"] != cust2 || again["userId"] != cust1 {
		t.Fatalf("answers %v / %v / %v", first["userId"], second["userId"], again["userId"])
	}
	unknown := ask(t, spk, "speaker-1", "identify", `{"requestId":"d","scan":"51051051053"}`)
	anon, _ := unknown["anonymousId"].(string)
	if unknown["known"] != false || anon == "" || strings.Contains(anon, "speaker") || unknown["userId"] != nil {
		t.Fatalf("unknown card answered %v", unknown)
	}
}

// A beacon's sighting becomes a telemetry "Beacon Sighted" event of the
// device, with no customer.
func TestBeaconSightingIsTelemetry(t *testing.T) {
	f, b := embedded(t)
	bcn := connect(t, b, "beacon-1")
	const anon = "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b"
	publish(t, bcn, topicOf("beacon-1", "sightings"), 0, `{"beaconId":"zone-3","rssi":-67,"anonymousId":"`+anon+`","at":1760000000000}`)
	var rec store.Record
	ev := queued(t, f, beaconSighted, &rec)
	switch {
	case ev.Context.Device != "beacon-1" || ev.UserID != "" || ev.AnonymousID != anon:
		t.Fatalf("event %+v", ev)
	case ev.Properties["rssi"] != int64(-67) || ev.Properties["beaconId"] != "zone-3" || ev.OriginalTimestamp != 1760000000000:
		t.Fatalf("properties %v at %d", ev.Properties, ev.OriginalTimestamp)
	case rec.Class != store.Telemetry || ev.Context.Purpose != "analytics":
		t.Fatalf("class %v purpose %s", rec.Class, ev.Context.Purpose)
	}
	if s := b.Stats(); s.Messages["sightings"] != 1 || s.Answers != 0 {
		t.Fatalf("stats %+v", s)
	}
}

// queued waits for the queued event named name.
func queued(t *testing.T, f *fixture, name string, rec *store.Record) *event.Event {
	t.Helper()
	var found *event.Event
	eventually(t, "event "+name+" in the outbox", func() bool {
		recs, evs := f.outbox(t)
		for i, ev := range evs {
			if ev.Event == name {
				found, *rec = ev, recs[i]
				return true
			}
		}
		return false
	})
	return found
}

// Invariant 1 through the bus: the ack names an event that is already in
// the outbox when the kiosk reads it.
func TestKioskEventAckedOnceDurable(t *testing.T) {
	f, b := embedded(t)
	ksk := connect(t, b, "kiosk-1")
	id := event.NewID()
	got := ask(t, ksk, "kiosk-1", "events", map[string]any{
		"requestId": "e1", "messageId": id, "event": "Order Completed", "userId": cust1,
		"properties": map[string]any{"total": 12.5, "items": []any{1, 2, 3}},
	})
	if got["requestId"] != "e1" || got["messageId"] != id || got["outcome"] != string(agent.OutcomeQueued) {
		t.Fatalf("ack %v", got)
	}
	recs, evs := f.outbox(t)
	i := slices.IndexFunc(evs, func(ev *event.Event) bool { return ev.MessageID == id })
	if i < 0 {
		t.Fatal("acknowledged event not in the outbox")
	}
	if ev := evs[i]; ev.UserID != cust1 || ev.Context.Device != "kiosk-1" || recs[i].Class != store.Critical || ev.Properties["total"] != 12.5 {
		t.Fatalf("queued %+v class %v", ev, recs[i].Class)
	}

	t.Run("agent refusal answered", func(t *testing.T) {
		got := ask(t, ksk, "kiosk-1", "events", `{"requestId":"e2","event":"Order\u0000Completed"}`)
		if errCode(got) != string(CodeBadRequest) || got["requestId"] != "e2" {
			t.Fatalf("answer %v", got)
		}
	})
}

// Invariant 4 through the bus: a withdrawal at a kiosk shows in the very
// next identify answer.
func TestKioskWithdrawalReflectedInNextAnswer(t *testing.T) {
	_, b := embedded(t)
	spk, ksk := connect(t, b, "speaker-1"), connect(t, b, "kiosk-1")
	before := ask(t, spk, "speaker-1", "identify", `{"requestId":"i1","scan":"`+card+`"}`)
	if before["permitted"] != true || len(attrNames(before)) != 1 {
		t.Fatalf("before: %v", before)
	}
	ack := ask(t, ksk, "kiosk-1", "consent", `{"requestId":"c1","userId":"`+cust1+`","purpose":"loyalty","status":"withdrawn"}`)
	if ack["requestId"] != "c1" || ack["applied"] != true {
		t.Fatalf("consent ack %v", ack)
	}
	after := ask(t, spk, "speaker-1", "identify", `{"requestId":"i2","scan":"`+card+`"}`)
	if after["permitted"] != false || len(attrNames(after)) != 0 {
		t.Fatalf("after withdrawal: %v", after)
	}
	if c, _ := after["consent"].(map[string]any); c["loyalty"] != false {
		t.Fatalf("consent after withdrawal %v", after["consent"])
	}
	// The other customer is untouched.
	other := ask(t, spk, "speaker-1", "identify", `{"requestId":"i3","scan":"`+card2+`"}`)
	if other["permitted"] != true {
		t.Fatalf("other customer %v", other)
	}
}

// Bad payloads are answered with the code that says what is wrong, and
// counted under it.
func TestBadPayloadsAnswered(t *testing.T) {
	_, b := embedded(t)
	spk, ksk := connect(t, b, "speaker-1"), connect(t, b, "kiosk-1")
	tests := []struct {
		name, device, kind, payload string
		code                        Code
		reason                      string
	}{
		{"bad json", "speaker-1", "identify", `{"requestId":"x1","scan":`, CodeBadJSON, ""},
		{"not an object", "speaker-1", "identify", `["` + card + `"]`, CodeBadJSON, ""},
		{"unknown field", "speaker-1", "identify", `{"requestId":"x2","scan":"` + card + `","email":"` + email + `"}`, CodeUnknownField, ""},
		{"too large", "speaker-1", "identify", `{"requestId":"x3","scan":"` + strings.Repeat(card, 1600) + `"}`, CodeTooLarge, ""},
		{"bad check digit", "speaker-1", "identify", `{"requestId":"x4","scan":"` + badCard + `"}`, CodeInvalidIdentifier, "bad_check_digit"},
		{"blocked", "speaker-1", "identify", `{"requestId":"x5","scan":"12345678903"}`, CodeBlockedIdentifier, ""},
		{"wrong type", "speaker-1", "identify", `{"requestId":"x6","scan":79927398713}`, CodeBadType, "scan has the wrong type"},
		{"null", "speaker-1", "identify", `{"requestId":"x7","scan":null}`, CodeBadType, ""},
		{"twice", "speaker-1", "identify", `{"requestId":"x8","scan":"1","scan":"` + card + `"}`, CodeBadJSON, ""},
		{"no request id", "speaker-1", "identify", `{"scan":"` + card + `"}`, CodeBadRequest, ""},
		{"bad status", "kiosk-1", "consent", `{"requestId":"x9","userId":"` + cust1 + `","purpose":"loyalty","status":"maybe"}`, CodeBadRequest, ""},
		{"unknown purpose", "kiosk-1", "consent", `{"requestId":"x10","userId":"` + cust1 + `","purpose":"astrology","status":"granted"}`, CodeUnknownPurpose, ""},
		{"too deep", "kiosk-1", "events", `{"event":"Product Viewed","properties":{"a":[[[[[[[1]]]]]]]}}`, CodeTooLarge, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := map[string]paho.Client{"speaker-1": spk, "kiosk-1": ksk}[tc.device]
			before := b.Stats().Rejects[tc.code]
			raw := askRaw(t, c, tc.device, tc.kind, tc.payload)
			got := decodeAnswer(t, raw)
			if errCode(got) != string(tc.code) {
				t.Fatalf("answer %s, want code %s", raw, tc.code)
			}
			if reason := got["error"].(map[string]any)["reason"]; tc.reason != "" && reason != tc.reason {
				t.Fatalf("reason %q, want %q", reason, tc.reason)
			}
			for _, secret := range []string{card, badCard, email, name} {
				if strings.Contains(string(raw), secret) {
					t.Fatalf("answer %s holds personal data", raw)
				}
			}
			if after := b.Stats().Rejects[tc.code]; after != before+1 {
				t.Fatalf("rejects[%s] %d -> %d", tc.code, before, after)
			}
		})
	}
}

// A wrong password, an unknown user, another device's client id and a will
// are refused at connect.
func TestConnectRefused(t *testing.T) {
	_, b := embedded(t)
	broker := "tcp://" + b.Addr().String()
	spk := dev("speaker-1")
	tests := []struct {
		name                   string
		clientID, user, passwd string
		will                   bool
	}{
		{"wrong password", spk.ID, spk.Username, "not the secret", false},
		{"no password", spk.ID, spk.Username, "", false},
		{"unknown user", spk.ID, "nobody", spk.password, false},
		{"another device's password", spk.ID, spk.Username, dev("kiosk-1").password, false},
		{"another device's client id", "kiosk-1", spk.Username, spk.password, false},
		{"will", spk.ID, spk.Username, spk.password, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := paho.NewClientOptions().AddBroker(broker).SetClientID(tc.clientID).
				SetUsername(tc.user).SetPassword(tc.passwd).SetProtocolVersion(4).SetAutoReconnect(false)
			if tc.will {
				o.SetWill(topicOf("kiosk-1", "consent"), `{"requestId":"w","userId":"cust-1","purpose":"loyalty","status":"withdrawn"}`, 1, false)
			}
			c := paho.NewClient(o)
			tok := c.Connect()
			if !tok.WaitTimeout(5 * time.Second) {
				t.Fatal("connect timed out")
			}
			// mochi answers 0x86 (bad user name or password), which it
			// maps to 3.1.1's 5 (not authorised).
			if err := tok.Error(); !errors.Is(err, packets.ErrorRefusedNotAuthorised) && !errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) {
				c.Disconnect(0)
				t.Fatalf("connect: %v, want a refusal", err)
			}
			if got := b.Stats().AuthFailures; got != uint64(i+1) {
				t.Fatalf("auth failures %d, want %d", got, i+1)
			}
		})
	}
	if got := b.Stats().Devices; got != 0 {
		t.Fatalf("connected devices %d", got)
	}
	connect(t, b, "speaker-1")
	eventually(t, "one device connected", func() bool { return b.Stats().Devices == 1 })
}

// A device can neither publish to nor read another device's topics, nor
// use a topic its kind has no business with; what it tries never reaches
// the agent.
func TestDeviceConfinedToItsTopics(t *testing.T) {
	_, b := embedded(t)
	withdraw := `{"requestId":"evil","userId":"` + cust1 + `","purpose":"loyalty","status":"withdrawn"}`

	t.Run("publish to another device's topic", func(t *testing.T) {
		for _, qos := range []byte{0, 1} {
			spk := connect(t, b, "speaker-1") // a fresh client: QoS 1 gets it disconnected
			before := b.Stats()
			tok := spk.Publish(topicOf("kiosk-1", "consent"), qos, false, withdraw)
			tok.WaitTimeout(2 * time.Second)
			eventually(t, "denial counted", func() bool { return b.Stats().Denied > before.Denied })
			time.Sleep(100 * time.Millisecond)
			if after := b.Stats(); after.Messages["consent"] != before.Messages["consent"] {
				t.Fatalf("qos %d: the agent received it", qos)
			}
		}
	})
	t.Run("publish to a topic its kind may not use", func(t *testing.T) {
		bcn := connect(t, b, "beacon-1")
		before := b.Stats()
		bcn.Publish(topicOf("beacon-1", "identify"), 0, false, `{"requestId":"r","scan":"`+card+`"}`).WaitTimeout(time.Second)
		eventually(t, "denial counted", func() bool { return b.Stats().Denied > before.Denied })
		if b.Stats().Messages["identify"] != before.Messages["identify"] {
			t.Fatal("the agent received it")
		}
	})
	t.Run("subscribe to another device's answers", func(t *testing.T) {
		spk := connect(t, b, "speaker-1")
		ksk := connect(t, b, "kiosk-1")
		exact, code := subscribe(t, spk, topicOf("kiosk-1", "identify/reply"))
		if code != 0x80 {
			t.Fatalf("suback %#x, want 0x80 (failure)", code)
		}
		wild, code := subscribe(t, spk, "store/"+storeID+"/devices/+/identify/reply")
		if code != 0x80 {
			t.Fatalf("wildcard suback %#x, want 0x80", code)
		}
		if got := ask(t, ksk, "kiosk-1", "identify", `{"requestId":"k","scan":"`+card+`"}`); got["known"] != true {
			t.Fatalf("kiosk answer %v", got)
		}
		exact.none(t, 300*time.Millisecond)
		wild.none(t, 0)
	})
	// Nothing the intruders did changed the customer's consent.
	spk := connect(t, b, "speaker-1")
	if got := ask(t, spk, "speaker-1", "identify", `{"requestId":"z","scan":"`+card+`"}`); got["permitted"] != true {
		t.Fatalf("after the attempts: %v", got)
	}
}

// blockingCore holds every Capture until released: a worker stuck on a
// slow disk.
type blockingCore struct {
	Core
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (c *blockingCore) Capture(ctx context.Context, req agent.CaptureRequest) (agent.CaptureResult, error) {
	c.once.Do(func() { close(c.entered) })
	select {
	case <-c.gate:
	case <-ctx.Done():
		return agent.CaptureResult{}, ctx.Err()
	}
	return c.Core.Capture(ctx, req)
}

// The broker's callback never waits for a worker: with the worker stuck,
// a beacon's publishes all complete, and what does not fit the queue is
// dropped and counted.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	f := newFixture(t)
	core := &blockingCore{Core: f.a, gate: make(chan struct{}), entered: make(chan struct{})}
	cfg := embeddedConfig(t)
	cfg.Workers, cfg.QueueLen = 1, 4
	b := startBus(t, cfg, core, nil)
	bcn := connect(t, b, "beacon-1")
	publish(t, bcn, topicOf("beacon-1", "sightings"), 1, `{"rssi":-50}`)
	<-core.entered
	start := time.Now()
	for range 20 {
		publish(t, bcn, topicOf("beacon-1", "sightings"), 1, `{"rssi":-50}`)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("publishes took %s: the callback blocked", d)
	}
	// A PUBACK leaves before the broker hands the message on: wait for the
	// last one to be counted.
	eventually(t, "every sighting counted", func() bool { return b.Stats().Messages["sightings"] == 21 })
	if s := b.Stats(); s.Dropped != 20-4 {
		t.Fatalf("dropped %d of %d, want 16", s.Dropped, s.Messages["sightings"])
	}
	close(core.gate)
	eventually(t, "queued sightings recorded", func() bool {
		_, evs := f.outbox(t)
		return len(evs) == 5
	})
}

func TestRunRunsOnceAndStopsOnCancel(t *testing.T) {
	f := newFixture(t)
	b, err := New(embeddedConfig(t), f.a, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	<-b.Ready()
	if err := b.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Run: %v", err)
	}
	connect(t, b, "speaker-1")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if s := b.Stats(); s.Connected || s.Devices != 0 {
		t.Fatalf("after Run: %+v", s)
	}
}

func TestListenFailureIsAnError(t *testing.T) {
	f := newFixture(t)
	_, first := embedded(t)
	cfg := embeddedConfig(t)
	cfg.Embedded.Listen = first.Addr().String()
	b, err := New(cfg, f.a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "bus.embedded.listen") {
		t.Fatalf("Run on a busy port: %v", err)
	}
}
