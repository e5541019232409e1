package agent

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

var tenantKey = bytes.Repeat([]byte{0x42}, 32)

// testPolicy has one purpose per basis that matters in a store.
func testPolicy() consent.Policy {
	return consent.Policy{
		Purposes: []consent.Purpose{
			{Name: "loyalty", Basis: consent.BasisConsent},
			{Name: "marketing", Basis: consent.BasisConsent},
			{Name: "personalisation", Basis: consent.BasisConsent, Drop: true},
			{Name: "analytics", Basis: consent.BasisLegitimateInterest},
			{Name: "service", Basis: consent.BasisContract},
			{Name: "fraud", Basis: consent.BasisLegalObligation},
		},
		Events: map[string]string{
			"Order Completed": "service", "Product Viewed": "analytics",
			"Offer Redeemed": "marketing", "Recommendation Shown": "personalisation",
		},
		Default: "analytics",
	}
}

// clock is a test clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	a     *Agent
	db    *store.DB
	clock *clock
}

func newFixture(t testing.TB, tweak ...func(*Config)) *fixture {
	t.Helper()
	return newFixtureWith(t, store.Options{}, tweak...)
}

func newFixtureWith(t testing.TB, opts store.Options, tweak ...func(*Config)) *fixture {
	t.Helper()
	clk := &clock{t: time.UnixMilli(1_760_000_000_000)}
	opts.Now = clk.now
	db := storetest.Open(t, opts)
	rules := ident.DefaultRules()
	rules.DeviceIDs = []string{"12345678903"} // a kiosk whose id looks like a card number
	cfg := Config{
		Tenant: "acme", StoreID: "s1", AgentID: "a1", TenantKey: tenantKey,
		Ident: rules, Policy: testPolicy(), CriticalEvents: []string{"Order Completed"},
		Now: clk.now,
	}
	for _, f := range tweak {
		f(&cfg)
	}
	a, err := New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{a: a, db: db, clock: clk}
}

// identHash is what the central computes for an identifier.
func identHash(kind, value string) []byte {
	m := hmac.New(sha256.New, tenantKey)
	m.Write([]byte(kind + ":" + value))
	return m.Sum(nil)
}

// apply applies changes from the central in order, numbering them after the
// cursor.
func (f *fixture) apply(t testing.TB, changes ...Change) {
	t.Helper()
	for _, ch := range changes {
		cur, err := f.a.Cursor()
		if err != nil {
			t.Fatal(err)
		}
		ch.Seq = cur + 1
		res, err := f.a.Apply(context.Background(), ch)
		if err != nil || res != Applied {
			t.Fatalf("apply %s: %v %v", ch.Kind, res, err)
		}
	}
}

// seedCustomer puts a central profile with attributes of several purposes
// and the given consent decisions into the cache.
func (f *fixture) seedCustomer(t testing.TB, id, card, email string, decisions map[string]consent.Status) {
	f.seedNamed(t, id, "Ada", card, email, decisions)
}

func (f *fixture) seedNamed(t testing.TB, id, name, card, email string, decisions map[string]consent.Status) {
	t.Helper()
	at := f.a.now() - 1000
	cons := map[string]consent.Entry{}
	for p, s := range decisions {
		cons[p] = consent.Entry{Status: s, At: at}
	}
	f.apply(t,
		Change{Kind: ChangeConsent, Profile: id, Consent: cons},
		Change{Kind: ChangeProfile, Profile: id, Version: 1, Expires: f.a.now() + int64(time.Hour/time.Millisecond),
			Idents: [][]byte{identHash("loyalty", card), identHash("email", email)},
			Attrs: []Attribute{
				{Name: "tier", Purpose: "loyalty", Value: "gold"},
				{Name: "first_name", Purpose: "marketing", Value: name},
				{Name: "favourite", Purpose: "personalisation", Value: "cushions"},
				{Name: "segment", Purpose: "analytics", Value: "weekend"},
				{Name: "account_status", Purpose: "service", Value: "active"},
			}},
	)
}

// outbox returns every queued record with its decoded event.
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

// lastEvent returns the newest queued event named name, or nil.
func (f *fixture) lastEvent(t testing.TB, name string) (*event.Event, store.Record) {
	t.Helper()
	recs, evs := f.outbox(t)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Event == name {
			return evs[i], recs[i]
		}
	}
	return nil, store.Record{}
}

func decodeEvent(t testing.TB, b []byte) (*event.Event, error) {
	t.Helper()
	ev, err := event.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return ev, nil
}
