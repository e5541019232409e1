package bus

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/storeagent/storeagent/store/storetest"
)

// Invariant 10: whatever devices send, right or wrong, no log line (the
// broker's included, at every level) and no error answer holds a seeded
// customer's e-mail, name or loyalty number.
func TestNoPersonalDataInLogsOrErrorAnswers(t *testing.T) {
	var logs storetest.LogBuffer
	f := newFixture(t)
	f.seedBoth(t)
	b := startBus(t, embeddedConfig(t), f.a, debugLogger(&logs))
	spk, ksk, bcn := connect(t, b, "speaker-1"), connect(t, b, "kiosk-1"), connect(t, b, "beacon-1")

	var errorAnswers []string
	clients := map[string]paho.Client{"speaker-1": spk, "kiosk-1": ksk}
	asked := func(device, kind, payload string) {
		t.Helper()
		raw := askRaw(t, clients[device], device, kind, payload)
		if got := decodeAnswer(t, raw); errCode(got) != "" {
			errorAnswers = append(errorAnswers, string(raw))
		}
	}
	// Answered right.
	asked("speaker-1", "identify", `{"requestId":"p1","scan":"`+card+`"}`)
	asked("speaker-1", "identify", `{"requestId":"p2","kind":"email","value":"`+email2+`"}`)
	asked("kiosk-1", "events", `{"event":"Order Completed","userId":"`+cust1+`","properties":{"email":"`+email+`","name":"`+name+`","card":"`+card+`"}}`)
	asked("kiosk-1", "consent", `{"requestId":"p3","userId":"`+cust2+`","purpose":"marketing","status":"withdrawn"}`)
	publish(t, bcn, topicOf("beacon-1", "sightings"), 1, `{"rssi":-60}`)
	// Refused.
	for _, p := range []string{
		`{"requestId":"p4","scan":"` + badCard + `"}`,
		`{"requestId":"p5","kind":"email","value":"` + strings.Replace(email, "@", "@@", 1) + `"}`,
		`{"requestId":"p6","scan":"` + card + `","` + email + `":"` + name + `"}`,
		`{"requestId":"p7","` + name + `":1}`,
		`{"requestId":"p8","scan":` + card + `}`,
		`{"requestId":"p9","scan":"` + card + `","scan":"` + card2 + `"}`,
		`{"requestId":"p10","scan":"` + strings.Repeat(card, 2000) + `"}`,
		`{"requestId":"p11","kind":"` + email + `","value":"` + name + `"}`,
		`["` + email + `","` + card + `"`,
	} {
		asked("speaker-1", "identify", p)
	}
	asked("kiosk-1", "consent", `{"requestId":"p12","userId":"`+email+`","purpose":"`+name+`","status":"granted"}`)
	asked("kiosk-1", "events", `{"event":"`+email+`\u0000","userId":"`+email+`"}`)
	asked("kiosk-1", "events", `{"event":"X","messageId":"`+card+`"}`)
	publish(t, bcn, topicOf("beacon-1", "sightings"), 1, `{"rssi":-60,"anonymousId":"`+email+`","beaconId":"`+name+`"}`)

	// Denied, with personal data in topics, payloads and client ids.
	spk.Publish(topicOf("kiosk-1", "consent"), 0, false, `{"requestId":"x","userId":"`+email+`","purpose":"loyalty","status":"withdrawn"}`).WaitTimeout(time.Second)
	spk.Publish(topicOf(email, "identify"), 0, false, card).WaitTimeout(time.Second)
	spk.Subscribe(topicOf(name, "identify/reply"), 1, nil).WaitTimeout(time.Second)
	spk.Subscribe("#", 1, nil).WaitTimeout(time.Second)
	if _, err := client(t, "tcp://"+b.Addr().String(), email, email, card); err == nil {
		t.Fatal("unknown user got in")
	}
	d := dev("speaker-1")
	if _, err := client(t, "tcp://"+b.Addr().String(), name, d.Username, d.password); err == nil {
		t.Fatal("wrong client id got in")
	}
	// A packet larger than the broker reads at all.
	big, err := client(t, "tcp://"+b.Addr().String(), d.ID, d.Username, d.password)
	if err != nil {
		t.Fatal(err)
	}
	big.Publish(topicOf(d.ID, "identify"), 1, false, strings.Repeat(email, maxPacket/len(email)+1)).WaitTimeout(time.Second)

	eventually(t, "sightings recorded", func() bool { return b.Stats().Messages["sightings"] == 2 })
	if len(errorAnswers) < 12 {
		t.Fatalf("only %d error answers", len(errorAnswers))
	}
	secrets := []string{card, badCard, card2, email, email2, name, name2, strings.ToLower(name)}
	for _, a := range errorAnswers {
		for _, s := range secrets {
			if strings.Contains(a, s) {
				t.Errorf("error answer %s holds personal data", a)
			}
		}
	}
	out := logs.String()
	for _, want := range []string{"device denied", "connection refused", "request handled", "device refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q line: the test does not exercise what it claims", want)
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("log holds %q:\n%s", s, out)
		}
	}
}

// The broker's own log lines keep only allowlisted attributes: mochi puts
// whole packets, payload included, in some of them.
func TestBrokerLogAllowlist(t *testing.T) {
	var logs storetest.LogBuffer
	h := &brokerLog{next: slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}), minLevel: slog.LevelDebug,
		isDevice: func(id string) bool { return id == "speaker-1" }}
	log := slog.New(h).With("client", email, "listener", "devices")
	log.Warn("error processing packet", "error", "malformed packet", "client", "speaker-1", "pk", struct{ Payload []byte }{[]byte(card)})
	log.Warn("", "packet", card, "will", email, "client", name) // demoted to debug
	out := logs.String()
	for _, s := range []string{card, email, name} {
		if strings.Contains(out, s) {
			t.Fatalf("log holds %q:\n%s", s, out)
		}
	}
	for _, want := range []string{"device=speaker-1", "listener=devices", `error="malformed packet"`, `msg="broker connection ended"`} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lost %q:\n%s", want, out)
		}
	}
	var quiet storetest.LogBuffer
	warnOnly := slog.New(&brokerLog{next: slog.NewTextHandler(&quiet, &slog.HandlerOptions{Level: slog.LevelDebug}), minLevel: slog.LevelWarn, isDevice: h.isDevice})
	warnOnly.Info("mochi mqtt starting")
	warnOnly.Warn("", "error", "EOF")
	if quiet.String() != "" {
		t.Fatalf("below the minimum level: %s", quiet.String())
	}
}
