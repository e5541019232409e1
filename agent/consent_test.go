package agent

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/store"
)

func containsAny(b []byte, needles ...string) bool {
	for _, n := range needles {
		if bytes.Contains(b, []byte(n)) || bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(n))) {
			return true
		}
	}
	return false
}

func capture(t *testing.T, f *fixture, req CaptureRequest) CaptureResult {
	t.Helper()
	if req.Properties == nil {
		req.Properties = map[string]any{"email": email, "sku": "CUSHION-1"}
	}
	if req.Traits == nil {
		// A name no hex UUID can hold: containsAny matches without case.
		req.Traits = map[string]any{"firstName": "Ada Lovelace"}
	}
	res, err := f.a.Capture(context.Background(), req)
	if err != nil {
		t.Fatalf("capture %s: %v", req.Event, err)
	}
	return res
}

// A withdrawal at a kiosk applies at once, in one transaction: the
// attributes of that purpose leave the cache, queued events of that purpose
// lose their identity, other purposes' events keep theirs, and a critical
// consent event for the central is queued.
func TestWithdrawalAtKiosk(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"marketing": consent.Granted, "loyalty": consent.Granted})
	offer := capture(t, f, CaptureRequest{Event: "Offer Redeemed", UserID: "cust-1", Device: "pos-1"})
	order := capture(t, f, CaptureRequest{Event: "Order Completed", UserID: "cust-1", Device: "pos-1"})
	if offer.Outcome != OutcomeQueued || order.Outcome != OutcomeQueued {
		t.Fatalf("before withdrawal: %+v %+v", offer, order)
	}

	res, err := f.a.SetConsent(context.Background(), ConsentRequest{UserID: "cust-1", Purpose: "marketing", Status: consent.Withdrawn, Device: "kiosk-1"})
	if err != nil || !res.Applied || res.Stripped != 1 || res.Purged != 1 {
		t.Fatalf("withdraw: %+v %v", res, err)
	}
	recs, evs := f.outbox(t)
	for i, ev := range evs {
		switch ev.MessageID {
		case offer.MessageID:
			b, _ := ev.Encode()
			if ev.UserID != "" || ev.Traits != nil || recs[i].Subject != nil || containsAny(b, email, "Ada Lovelace", "cust-1") || ev.Properties["sku"] != "CUSHION-1" {
				t.Fatalf("queued marketing event kept identity: %+v", ev)
			}
		case order.MessageID:
			if ev.UserID != "cust-1" {
				t.Fatal("a service event lost its identity")
			}
		}
	}
	ev, rec := f.lastEvent(t, "Consent Updated")
	if ev == nil || ev.UserID != "cust-1" || ev.Properties["status"] != "withdrawn" || rec.Class != store.Critical {
		t.Fatalf("consent event %+v", ev)
	}
	got, _ := f.a.Identify(context.Background(), IdentifyRequest{Scan: card, Purpose: "marketing"})
	if got.Permitted || len(got.Attributes) != 0 {
		t.Fatalf("marketing still served: %+v", got)
	}
	// New events of the purpose leave without identity.
	after := capture(t, f, CaptureRequest{Event: "Offer Redeemed", UserID: "cust-1"})
	if after.Outcome != OutcomeAnonymised {
		t.Fatalf("after withdrawal: %+v", after)
	}
}

// The conflict rules between local and central decisions.
func TestConsentOrdering(t *testing.T) {
	base := int64(1_760_000_000_000)
	tests := []struct {
		name      string
		first     func(f *fixture)
		second    func(f *fixture)
		permitted bool
	}{
		{
			"local newer beats central older",
			func(f *fixture) { f.central(t, "marketing", consent.Granted, base) },
			func(f *fixture) { f.local(t, "marketing", consent.Withdrawn, base+1) },
			false,
		},
		{
			"central older than local loses",
			func(f *fixture) { f.local(t, "marketing", consent.Withdrawn, base+5) },
			func(f *fixture) { f.central(t, "marketing", consent.Granted, base+1) },
			false,
		},
		{
			"central newer beats local older",
			func(f *fixture) { f.local(t, "marketing", consent.Withdrawn, base) },
			func(f *fixture) { f.central(t, "marketing", consent.Granted, base+1) },
			true,
		},
		{
			"tie: more restrictive wins, central grant after local withdrawal",
			func(f *fixture) { f.local(t, "marketing", consent.Withdrawn, base) },
			func(f *fixture) { f.central(t, "marketing", consent.Granted, base) },
			false,
		},
		{
			"tie: more restrictive wins, local objection after central grant",
			func(f *fixture) { f.central(t, "analytics", consent.Granted, base) },
			func(f *fixture) { f.local(t, "analytics", consent.Objected, base) },
			false,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.seedCustomer(t, "cust-1", card, email, nil)
			tc.first(f)
			tc.second(f)
			purpose := "marketing"
			if strings.Contains(tc.name, "objection") {
				purpose = "analytics"
			}
			got, _ := f.a.Identify(context.Background(), IdentifyRequest{Scan: card, Purpose: purpose})
			if got.Permitted != tc.permitted {
				t.Fatalf("permitted %v, want %v", got.Permitted, tc.permitted)
			}
		})
	}
}

func (f *fixture) central(t *testing.T, purpose string, s consent.Status, at int64) {
	f.apply(t, Change{Kind: ChangeConsent, Profile: "cust-1", Consent: map[string]consent.Entry{purpose: {Status: s, At: at}}})
}

func (f *fixture) local(t *testing.T, purpose string, s consent.Status, at int64) {
	if _, err := f.a.SetConsent(context.Background(), ConsentRequest{UserID: "cust-1", Purpose: purpose, Status: s, At: at}); err != nil {
		t.Fatal(err)
	}
}

// A withdrawal from the central applies the same way, and queues the
// receipt the central needs (Art. 19).
func TestCentralWithdrawal(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"marketing": consent.Granted})
	offer := capture(t, f, CaptureRequest{Event: "Offer Redeemed", UserID: "cust-1"})
	f.central(t, "marketing", consent.Withdrawn, f.a.now())
	_, evs := f.outbox(t)
	for _, ev := range evs {
		if ev.MessageID == offer.MessageID && ev.UserID != "" {
			t.Fatal("central withdrawal left identity on a queued event")
		}
	}
	ev, rec := f.lastEvent(t, "Rights Request Applied")
	if ev == nil || ev.Properties["kind"] != "consent" || ev.Properties["profile"] != "cust-1" || rec.Class != store.Critical {
		t.Fatalf("receipt %+v", ev)
	}
}

// An enrolling customer's events are held until they decide.
func TestHeldUntilDecided(t *testing.T) {
	for _, decision := range []consent.Status{consent.Granted, consent.Denied, ""} {
		t.Run(string(decision)+"_", func(t *testing.T) {
			f := newFixture(t)
			anon, err := f.a.Enroll(context.Background(), EnrollRequest{Scan: card, Purpose: "marketing", Device: "kiosk-1", Traits: map[string]any{"email": email}})
			if err != nil {
				t.Fatal(err)
			}
			res := capture(t, f, CaptureRequest{Event: "Offer Redeemed", UserID: anon})
			if res.Outcome != OutcomeHeld {
				t.Fatalf("capture while deciding: %+v", res)
			}
			if _, evs := f.outbox(t); len(evs) != 0 {
				t.Fatalf("held events reached the outbox: %d", len(evs))
			}
			switch decision {
			case "":
				f.clock.advance(2 * time.Hour) // never decided
				if err := f.a.Maintain(context.Background()); err != nil {
					t.Fatal(err)
				}
			default:
				if _, err := f.a.SetConsent(context.Background(), ConsentRequest{UserID: anon, Purpose: "marketing", Status: decision}); err != nil {
					t.Fatal(err)
				}
			}
			_, evs := f.outbox(t)
			var kinds []string
			for _, ev := range evs {
				if ev.Event == "Consent Updated" {
					continue
				}
				kinds = append(kinds, ev.Type)
				b, _ := ev.Encode()
				identified := ev.UserID == anon || ev.AnonymousID == anon
				if identified != (decision == consent.Granted) || (decision != consent.Granted && containsAny(b, email)) {
					t.Fatalf("decision %q: event %+v", decision, ev)
				}
			}
			if !slices.Equal(kinds, []string{"identify", "track"}) {
				t.Fatalf("released %v, want the enrolment then the offer, in order", kinds)
			}
		})
	}
}
