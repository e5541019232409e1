package uplink

import (
	"context"
	"testing"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/agenttest"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/sync/wire"
)

// The uplink sends the agent's payloads as they are. That is sound only if
// every event the agent makes is a valid wire event already in the wire's
// canonical encoding: decoding it with the central's rules and encoding it
// again gives the same bytes. This test makes every kind of event the agent
// makes and checks exactly that.
func TestAgentEventsAreCanonicalWireEvents(t *testing.T) {
	a, db := agenttest.New(t, store.Options{})
	ctx := context.Background()
	agenttest.Seed(t, a, agenttest.Customer{ID: "cust-1", Card: "79927398713", Email: "ada@example.com", Name: "Ada",
		Decisions: map[string]consent.Status{"loyalty": consent.Granted, "marketing": consent.Granted}})
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.Capture(ctx, agent.CaptureRequest{Event: "Order Completed", UserID: "cust-1", Device: "pos-1",
		Properties: map[string]any{"total": 42.5, "items": []any{"a", map[string]any{"sku": "X", "n": 2}}, "paid": true, "note": nil}}))
	must(a.Capture(ctx, agent.CaptureRequest{Event: "Product Viewed", Device: "pos-1"}))
	must(a.Capture(ctx, agent.CaptureRequest{Type: "identify", AnonymousID: "v-1", Device: "kiosk-1", Traits: map[string]any{"firstName": "Ada"}}))
	must(a.Capture(ctx, agent.CaptureRequest{Event: "Offer Redeemed", UserID: "cust-1", Properties: map[string]any{"email": "ada@example.com"}}))
	must(a.SetConsent(ctx, agent.ConsentRequest{UserID: "cust-1", Purpose: "marketing", Status: consent.Withdrawn, Device: "kiosk-1"}))
	must(nil, a.Request(ctx, agent.RightsRequest{UserID: "cust-1", Right: agent.RightAccess, Device: "kiosk-1"}))
	must(a.Enroll(ctx, agent.EnrollRequest{Scan: "4539578763621486", Purpose: "marketing", Device: "kiosk-1", Traits: map[string]any{"email": "bob@example.com"}}))
	must(a.Identify(ctx, agent.IdentifyRequest{Scan: "4556737586899855", Purpose: "loyalty"}))
	kinds := map[string]bool{}
	checkCanonical(t, a, db, kinds)
	agenttest.Apply(t, a, agent.Change{Kind: agent.ChangeErase, Profile: "cust-1"}) // its receipt has no subject
	checkCanonical(t, a, db, kinds)
	for _, want := range []string{"track:Order Completed", "track:Product Viewed", "identify:", "track:Offer Redeemed",
		"track:Consent Updated", "track:Access Requested", "track:Rights Request Applied"} {
		if !kinds[want] {
			t.Errorf("no %s event was checked (have %v)", want, kinds)
		}
	}
}

func checkCanonical(t *testing.T, a *agent.Agent, db *store.DB, kinds map[string]bool) {
	t.Helper()
	recs, err := db.ReadOutbox(0, 1000, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	payloads, err := a.Recheck(recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range payloads {
		ev, err := wire.DecodeEvent(p)
		if err != nil {
			t.Fatalf("record %d is not a valid wire event: %v", recs[i].Seq, err)
		}
		again, err := wire.EncodeEvent(ev)
		if err != nil || string(again) != string(p) {
			t.Fatalf("record %d (%s %q) is not in the wire's canonical encoding (%v)", recs[i].Seq, ev.Type, ev.Event, err)
		}
		kinds[string(ev.Type)+":"+ev.Event] = true
	}
}
