package bus

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

// The seeded customers. Their e-mail, name and card must never show in a
// log line or an error answer.
const (
	storeID   = "s1"
	card      = "79927398713" // Luhn-valid
	badCard   = "79927398714" // the same with a wrong check digit
	email     = "adelheid.k@example.com"
	name      = "Adelheid"
	card2     = "40063813337"
	email2    = "bertrand.q@example.com"
	name2     = "Bertrand"
	cust1     = "cust-1"
	cust2     = "cust-2"
	waitReply = 5 * time.Second
)

var tenantKey = bytes.Repeat([]byte{0x42}, 32)

func testPolicy() consent.Policy {
	return consent.Policy{
		Purposes: []consent.Purpose{
			{Name: "loyalty", Basis: consent.BasisConsent},
			{Name: "marketing", Basis: consent.BasisConsent},
			{Name: "analytics", Basis: consent.BasisLegitimateInterest},
			{Name: "service", Basis: consent.BasisContract},
		},
		Events:  map[string]string{"Order Completed": "service", "Product Viewed": "analytics"},
		Default: "analytics",
	}
}

func purposes() []string { return []string{"loyalty", "marketing", "analytics", "service"} }

// fixture is a real agent over a real store file.
type fixture struct {
	a  *agent.Agent
	db *store.DB
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db := storetest.Open(t, store.Options{})
	rules := ident.DefaultRules()
	rules.DeviceIDs = []string{"12345678903"}
	a, err := agent.New(db, agent.Config{
		Tenant: "acme", StoreID: storeID, AgentID: "a1", TenantKey: tenantKey,
		Ident: rules, Policy: testPolicy(), CriticalEvents: []string{"Order Completed"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{a: a, db: db}
}

// identHash is what the central computes for an identifier.
func identHash(kind, value string) []byte {
	m := hmac.New(sha256.New, tenantKey)
	m.Write([]byte(kind + ":" + value))
	return m.Sum(nil)
}

// seed applies central changes that put a customer in the cache, with an
// attribute for each purpose and the given consent decisions.
func (f *fixture) seed(t testing.TB, id, first, cardNo, mail string, decisions map[string]consent.Status) {
	t.Helper()
	at := time.Now().UnixMilli() - 60_000
	cons := map[string]consent.Entry{}
	for p, s := range decisions {
		cons[p] = consent.Entry{Status: s, At: at, Source: consent.Central}
	}
	f.apply(t, agent.Change{Kind: agent.ChangeConsent, Profile: id, Consent: cons})
	f.apply(t, agent.Change{
		Kind: agent.ChangeProfile, Profile: id, Version: 1,
		Idents: [][]byte{identHash("loyalty", cardNo), identHash("email", mail)},
		Attrs: []agent.Attribute{
			{Name: "tier", Purpose: "loyalty", Value: "gold"},
			{Name: "first_name", Purpose: "marketing", Value: first},
			{Name: "segment", Purpose: "analytics", Value: "weekend"},
			{Name: "account_status", Purpose: "service", Value: "active"},
		},
	})
}

func (f *fixture) apply(t testing.TB, ch agent.Change) {
	t.Helper()
	cur, err := f.a.Cursor()
	if err != nil {
		t.Fatal(err)
	}
	ch.Seq = cur + 1
	if res, err := f.a.Apply(context.Background(), ch); err != nil || res != agent.Applied {
		t.Fatalf("apply %s: %v %v", ch.Kind, res, err)
	}
}

func (f *fixture) seedBoth(t testing.TB) {
	granted := map[string]consent.Status{"loyalty": consent.Granted, "marketing": consent.Granted}
	f.seed(t, cust1, name, card, email, granted)
	f.seed(t, cust2, name2, card2, email2, granted)
}

// outbox returns every queued record and its event.
func (f *fixture) outbox(t testing.TB) ([]store.Record, []*event.Event) {
	t.Helper()
	recs, err := f.db.ReadOutbox(0, 1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]*event.Event, len(recs))
	for i, r := range recs {
		if evs[i], err = event.Decode(r.Payload); err != nil {
			t.Fatal(err)
		}
	}
	return recs, evs
}

// testDevice is a configured device and its password.
type testDevice struct {
	DeviceConfig
	password string
}

// The devices of the tests. kiosk-1's password comes from the environment,
// the others' from files.
var testDevices = []testDevice{
	{DeviceConfig{ID: "speaker-1", Kind: Speaker, Purpose: "loyalty", Username: "spk1"}, "speaker one secret"},
	{DeviceConfig{ID: "kiosk-1", Kind: Kiosk, Purpose: "service", Username: "kiosk1", PasswordEnv: "BUS_TEST_KIOSK1_PASSWORD"}, "kiosk one secret"},
	{DeviceConfig{ID: "kiosk-2", Kind: Kiosk, Purpose: "marketing", Username: "kiosk2"}, "kiosk two secret"},
	{DeviceConfig{ID: "beacon-1", Kind: Beacon, Purpose: "analytics", Username: "bcn1"}, "beacon one secret"},
}

func dev(id string) testDevice {
	for _, d := range testDevices {
		if d.ID == id {
			return d
		}
	}
	panic("no test device " + id)
}

// embeddedConfig is an embedded bus on a free loopback port, with every
// test device and its password written where the config says.
func embeddedConfig(t testing.TB) Config {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{StoreID: storeID, Purposes: purposes(), Embedded: EmbeddedConfig{Listen: "127.0.0.1:0"}}
	for _, d := range testDevices {
		dc := d.DeviceConfig
		if dc.PasswordEnv != "" {
			t.Setenv(dc.PasswordEnv, d.password)
		} else {
			dc.PasswordFile = filepath.Join(dir, d.ID+".pass")
			if err := os.WriteFile(dc.PasswordFile, []byte(d.password+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cfg.Devices = append(cfg.Devices, dc)
	}
	return cfg
}

// startBus runs a bus until the test ends, and checks that Run then
// returns nil promptly.
func startBus(t testing.TB, cfg Config, core Core, log *slog.Logger) *Bus {
	t.Helper()
	b, err := New(cfg, core, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			// The stacks say who is stuck: that is how mochi's shutdown
			// deadlock (see closeBroker) was found.
			buf := make([]byte, 1<<20)
			t.Errorf("Run did not return within 5s of cancel:\n%s", buf[:runtime.Stack(buf, true)])
		}
	})
	select {
	case <-b.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("bus not ready within 10s")
	}
	return b
}

// client connects a paho client as a device would.
func client(t testing.TB, broker, clientID, user, password string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetUsername(user).SetPassword(password).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

// connect connects a configured device to an embedded bus.
func connect(t testing.TB, b *Bus, id string) paho.Client {
	t.Helper()
	d := dev(id)
	c, err := client(t, "tcp://"+b.Addr().String(), d.ID, d.Username, d.password)
	if err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	return c
}

// inbox collects the messages of a subscription.
type inbox chan []byte

func subscribe(t testing.TB, c paho.Client, topic string) (inbox, byte) {
	t.Helper()
	in := make(inbox, 16)
	tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { in <- m.Payload() })
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
	return in, tok.(*paho.SubscribeToken).Result()[topic]
}

func (in inbox) next(t testing.TB) []byte {
	t.Helper()
	select {
	case b := <-in:
		return b
	case <-time.After(waitReply):
		t.Fatal("no answer within", waitReply)
		return nil
	}
}

// none checks that nothing arrives for d.
func (in inbox) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case b := <-in:
		t.Fatalf("unexpected message of %d bytes", len(b))
	case <-time.After(d):
	}
}

func publish(t testing.TB, c paho.Client, topic string, qos byte, payload any) {
	t.Helper()
	var b []byte
	switch p := payload.(type) {
	case []byte:
		b = p
	case string:
		b = []byte(p)
	default:
		var err error
		if b, err = json.Marshal(p); err != nil {
			t.Fatal(err)
		}
	}
	tok := c.Publish(topic, qos, false, b)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// topicOf is store/s1/devices/{device}/{suffix}.
func topicOf(device, suffix string) string {
	return "store/" + storeID + "/devices/" + device + "/" + suffix
}

// ask publishes a request of a device and returns its answer, decoded.
func ask(t testing.TB, c paho.Client, device, kind string, payload any) map[string]any {
	t.Helper()
	return decodeAnswer(t, askRaw(t, c, device, kind, payload))
}

var answerTopic = map[string]string{"identify": "identify/reply", "events": "events/ack", "consent": "consent/ack"}

func askRaw(t testing.TB, c paho.Client, device, kind string, payload any) []byte {
	t.Helper()
	reply := topicOf(device, answerTopic[kind])
	in, _ := subscribe(t, c, reply)
	defer func() { c.Unsubscribe(reply).WaitTimeout(time.Second) }()
	publish(t, c, topicOf(device, kind), 1, payload)
	return in.next(t)
}

func decodeAnswer(t testing.TB, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("answer is not JSON: %v", err)
	}
	return m
}

// errCode returns the code of an error answer, or "".
func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func attrNames(m map[string]any) []string {
	var out []string
	as, _ := m["attributes"].([]any)
	for _, a := range as {
		out = append(out, a.(map[string]any)["name"].(string))
	}
	return out
}

// eventually polls cond for up to 5s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func debugLogger(w *storetest.LogBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
