package agent

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/store"
)

// Forgotten means gone: after an erasure no bucket holds the customer's
// names, e-mail, loyalty number or identifier hashes, even with every sealed
// value opened; after the compaction that follows, the raw file does not
// hold the hashes or the profile key either.
func TestErasureLeavesNothingIdentifiable(t *testing.T) {
	for _, src := range []string{"kiosk", "central"} {
		t.Run(src, func(t *testing.T) {
			f := newFixture(t)
			f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"marketing": consent.Granted, "loyalty": consent.Granted})
			f.seedNamed(t, "cust-2", "Bob", "4539578763621486", "bob@example.com", map[string]consent.Status{"marketing": consent.Granted})
			capture(t, f, CaptureRequest{Event: "Offer Redeemed", UserID: "cust-1", Properties: map[string]any{"email": email, "name": "Ada Lovelace"}})
			capture(t, f, CaptureRequest{Event: "Order Completed", UserID: "cust-1", Properties: map[string]any{"loyalty": card}})
			capture(t, f, CaptureRequest{Event: "Order Completed", UserID: "cust-2", Traits: map[string]any{"firstName": "Bob"}, Properties: map[string]any{"email": "bob@example.com"}})

			secrets := [][]byte{[]byte(email), []byte("Ada"), []byte(card), identHash("loyalty", card), identHash("email", email), f.a.pkey("cust-1")}
			if !dumpHolds(t, f.db, secrets) {
				t.Fatal("seeded data not found before erasure: the test cannot tell")
			}
			if src == "kiosk" {
				if err := f.a.Request(context.Background(), RightsRequest{UserID: "cust-1", Right: RightErase, Device: "kiosk-1"}); err != nil {
					t.Fatal(err)
				}
			} else {
				f.apply(t, Change{Kind: ChangeErase, Profile: "cust-1"})
			}
			if dumpHolds(t, f.db, secrets) {
				t.Fatal("the customer is still identifiable in the store after erasure")
			}
			// The other customer is untouched.
			if got, _ := f.a.Identify(context.Background(), IdentifyRequest{Scan: "4539578763621486", Purpose: "marketing"}); !got.Known {
				t.Fatal("erasure took another customer")
			}
			// The erasure itself is recorded without PII, and reaches the central.
			log, _ := f.db.AuditLog(0, 100)
			if len(log) == 0 || log[len(log)-1].Kind != "rights.erase" {
				t.Fatalf("audit %+v", log)
			}
			want := map[string]string{"kiosk": "Erasure Requested", "central": "Rights Request Applied"}[src]
			if ev, rec := f.lastEvent(t, want); ev == nil || rec.Subject != nil || rec.Class != store.Critical {
				t.Fatalf("%s event %+v", want, ev)
			}

			// Compaction is due within the bound and scrubs the raw file.
			f.clock.advance(2 * time.Minute)
			if err := f.a.Maintain(context.Background()); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(f.db.Path())
			if err != nil {
				t.Fatal(err)
			}
			if f.a.Stats()["compactions"] != 1 {
				t.Fatal("no compaction after erasure")
			}
			for i, s := range secrets[3:] {
				if bytes.Contains(raw, s) {
					t.Fatalf("raw file still holds secret %d after compaction", 3+i)
				}
			}
		})
	}
}

// dumpHolds reports whether any record of any bucket, opened, holds one of
// the secrets.
func dumpHolds(t *testing.T, db *store.DB, secrets [][]byte) bool {
	t.Helper()
	found := false
	err := db.Dump(func(bucket string, k, v []byte) error {
		for i, s := range secrets {
			if bytes.Contains(k, s) || bytes.Contains(v, s) {
				t.Logf("bucket %s key %x holds secret %d", bucket, k[:min(len(k), 12)], i)
				found = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestRightsRequests(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	for _, r := range []Right{RightAccess, RightPortability, RightRestrict} {
		if err := f.a.Request(context.Background(), RightsRequest{UserID: "cust-1", Right: r, Device: "kiosk-1"}); err != nil {
			t.Fatal(err)
		}
	}
	_, evs := f.outbox(t)
	var got []string
	for _, ev := range evs {
		if strings.HasSuffix(ev.Event, "Requested") {
			got = append(got, ev.Event)
			if ev.UserID != "cust-1" || ev.Context.Purpose != consent.RightsPurpose {
				t.Fatalf("rights event %+v", ev)
			}
		}
	}
	if strings.Join(got, ",") != "Access Requested,Portability Requested,Restriction Requested" {
		t.Fatalf("forwarded %v", got)
	}
	if got, _ := f.a.Identify(context.Background(), IdentifyRequest{Scan: card, Purpose: "loyalty"}); !got.Restricted || len(got.Attributes) != 0 {
		t.Fatalf("restriction not applied: %+v", got)
	}
	if err := f.a.Request(context.Background(), RightsRequest{UserID: "cust-1", Right: "forget-me-not"}); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("unknown right: %v", err)
	}
}

// The preference centre shows the customer everything held, with each
// attribute's purpose and basis and each purpose's decision.
func TestHeldData(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted, "marketing": consent.Denied})
	capture(t, f, CaptureRequest{Event: "Order Completed", UserID: "cust-1"})
	h, err := f.a.Held(context.Background(), "cust-1")
	if err != nil {
		t.Fatal(err)
	}
	if h.Identifiers != 2 || h.Queued < 1 || len(h.Consent) != len(testPolicy().Purposes) {
		t.Fatalf("held %+v", h)
	}
	for _, at := range h.Attributes {
		if at.Name == "tier" && (at.Purpose != "loyalty" || at.Basis != consent.BasisConsent) {
			t.Fatalf("attribute %+v", at)
		}
	}
	for _, c := range h.Consent {
		if c.Purpose == "marketing" && (c.Status != "denied" || c.Permitted || c.Source != "central") {
			t.Fatalf("marketing consent %+v", c)
		}
	}
	if _, err := f.a.Held(context.Background(), "nobody"); !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("unknown profile: %v", err)
	}
}

func TestCaptureBuildsSegmentEvent(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	res := capture(t, f, CaptureRequest{Event: "Order Completed", UserID: "cust-1", Device: "pos-7", Timestamp: 1_700_000_000_123,
		Properties: map[string]any{"total": 42.5, "currency": "EUR"}})
	ev, rec := f.lastEvent(t, "Order Completed")
	if !event.ValidID(res.MessageID) || ev.MessageID != res.MessageID || ev.MessageID[14] != '7' {
		t.Fatalf("messageId %q is not a UUIDv7", res.MessageID)
	}
	if ev.Type != "track" || ev.UserID != "cust-1" || ev.OriginalTimestamp != 1_700_000_000_123 || ev.Properties["currency"] != "EUR" {
		t.Fatalf("event %+v", ev)
	}
	c := ev.Context
	if c.Store != "s1" || c.Agent != "a1" || c.Device != "pos-7" || c.Purpose != "service" || !c.Consent.CategoryPreferences["loyalty"] || c.Consent.CategoryPreferences["marketing"] {
		t.Fatalf("context %+v", c)
	}
	if rec.Class != store.Critical || rec.Label != "service" || !bytes.Equal(rec.Subject, f.a.pkey("cust-1")) {
		t.Fatalf("outbox record class %v label %q", rec.Class, rec.Label)
	}
	view := capture(t, f, CaptureRequest{Event: "Product Viewed", UserID: "cust-1"})
	if _, rec := f.lastEvent(t, "Product Viewed"); rec.Class != store.Telemetry || view.Purpose != "analytics" {
		t.Fatalf("product view class %v purpose %s", rec.Class, view.Purpose)
	}
}

func TestCaptureRules(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	tests := []struct {
		name string
		req  CaptureRequest
		want Outcome
	}{
		{"contract purchase", CaptureRequest{Event: "Order Completed", UserID: "cust-1"}, OutcomeQueued},
		{"marketing without consent is anonymised", CaptureRequest{Event: "Offer Redeemed", UserID: "cust-1"}, OutcomeAnonymised},
		{"personalisation without consent is dropped", CaptureRequest{Event: "Recommendation Shown", UserID: "cust-1"}, OutcomeDropped},
		{"unknown user cannot be checked: anonymised", CaptureRequest{Event: "Offer Redeemed", UserID: "cust-404"}, OutcomeAnonymised},
		{"anonymous visitor", CaptureRequest{Event: "Product Viewed", AnonymousID: "anon-1"}, OutcomeAnonymous},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := capture(t, f, tc.req); got.Outcome != tc.want {
				t.Fatalf("outcome %s, want %s", got.Outcome, tc.want)
			}
		})
	}
	bad := []CaptureRequest{
		{Type: "page", Event: "x"},
		{Event: ""},
		{Event: "Order Completed", MessageID: "not-a-uuid"},
		{Event: "Order Completed", Timestamp: -5},
		{Event: "Order Completed", Properties: map[string]any{"total": math.NaN()}},
		{Event: "Consent Updated", UserID: "cust-1"},
	}
	for _, req := range bad {
		if _, err := f.a.Capture(context.Background(), req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v, want ErrBadRequest", req, err)
		}
	}
	huge := CaptureRequest{Event: "Order Completed", Properties: map[string]any{"blob": strings.Repeat("x", 40<<10)}}
	if _, err := f.a.Capture(context.Background(), huge); !errors.Is(err, event.ErrTooLarge) {
		t.Fatalf("40 KiB event: %v", err)
	}
}

func TestCaptureOutboxFull(t *testing.T) {
	f := newFixtureWith(t, store.Options{Outbox: store.OutboxLimits{MaxRecords: 3, ReservedRecords: 1, MaxBytes: 1 << 20, ReservedBytes: 1 << 18}})
	for range 3 {
		capture(t, f, CaptureRequest{Event: "Order Completed", AnonymousID: "x"})
	}
	_, err := f.a.Capture(context.Background(), CaptureRequest{Event: "Order Completed", AnonymousID: "x"})
	if !errors.Is(err, store.ErrOutboxFull) {
		t.Fatalf("capture into a full outbox: %v", err)
	}
}
