package agent

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/event"
	"github.com/storeagent/storeagent/agent/ident"
)

const (
	card  = "79927398713" // Luhn-valid
	email = "ada@example.com"
)

func names(attrs []Attribute) []string {
	var out []string
	for _, a := range attrs {
		out = append(out, a.Name)
	}
	slices.Sort(out)
	return out
}

func TestIdentifyFiltersByPurpose(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted, "marketing": consent.Denied})
	tests := []struct {
		name      string
		req       IdentifyRequest
		permitted bool
		attrs     []string
	}{
		{"loyalty scan", IdentifyRequest{Scan: card, Purpose: "loyalty"}, true, []string{"tier"}},
		{"scan with spaces", IdentifyRequest{Scan: "7992 7398 713", Purpose: "loyalty"}, true, []string{"tier"}},
		{"typed e-mail", IdentifyRequest{Kind: ident.Email, Value: " Ada@Example.COM ", Purpose: "loyalty"}, true, []string{"tier"}},
		{"marketing denied", IdentifyRequest{Scan: card, Purpose: "marketing"}, false, nil},
		{"consent never asked", IdentifyRequest{Scan: card, Purpose: "personalisation"}, false, nil},
		{"legitimate interest", IdentifyRequest{Scan: card, Purpose: "analytics"}, true, []string{"segment"}},
		{"contract", IdentifyRequest{Scan: card, Purpose: "service"}, true, []string{"account_status"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.a.Identify(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Known || got.UserID != "cust-1" || got.Permitted != tc.permitted || !slices.Equal(names(got.Attributes), tc.attrs) {
				t.Fatalf("got %+v", got)
			}
			if got.Consent["loyalty"] != true || got.Consent["marketing"] != false {
				t.Fatalf("consent preferences %v", got.Consent)
			}
		})
	}
}

// The cache never holds what is not permitted: the marketing and
// personalisation attributes of a customer who did not consent were never
// written.
func TestCacheHoldsOnlyPermitted(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	held, err := f.a.Held(context.Background(), "cust-1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, at := range held.Attributes {
		got = append(got, at.Name)
	}
	slices.Sort(got)
	if want := []string{"account_status", "segment", "tier"}; !slices.Equal(got, want) {
		t.Fatalf("cached attributes %v, want %v", got, want)
	}
}

func TestIdentifyRejects(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	tests := []struct {
		name string
		req  IdentifyRequest
		want error
	}{
		{"wrong check digit", IdentifyRequest{Scan: "79927398710", Purpose: "loyalty"}, ident.ErrInvalid},
		{"junk", IdentifyRequest{Scan: "hello world", Purpose: "loyalty"}, ident.ErrInvalid},
		{"all zeros", IdentifyRequest{Scan: "0000000000000", Purpose: "loyalty"}, ident.ErrBlocked},
		{"anonymous", IdentifyRequest{Kind: ident.App, Value: "anonymous", Purpose: "loyalty"}, ident.ErrBlocked},
		{"device id", IdentifyRequest{Scan: f.a.cfg.Ident.DeviceIDs[0], Purpose: "loyalty"}, ident.ErrBlocked},
		{"unknown purpose", IdentifyRequest{Scan: card, Purpose: "astrology"}, ErrUnknownPurpose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.a.Identify(context.Background(), tc.req)
			if !errors.Is(err, tc.want) || got.Known {
				t.Fatalf("got %+v, %v; want %v", got, err, tc.want)
			}
		})
	}
	st := f.a.Stats()
	if st["identify_invalid"] != 2 || st["identify_blocked"] != 3 {
		t.Fatalf("reject counters %v", st)
	}
}

// An unknown card gets the same anonymous id every time, without anything
// stored, and an identify event with its keyed hash (never the number).
func TestIdentifyUnknown(t *testing.T) {
	f := newFixture(t)
	other := "4539578763621486" // Luhn-valid, not in the cache
	first, err := f.a.Identify(context.Background(), IdentifyRequest{Scan: other, Purpose: "loyalty", Device: "pos-1"})
	if err != nil || first.Known || first.AnonymousID == "" {
		t.Fatalf("first scan: %+v %v", first, err)
	}
	again, _ := f.a.Identify(context.Background(), IdentifyRequest{Scan: other, Purpose: "loyalty"})
	if again.AnonymousID != first.AnonymousID {
		t.Fatal("anonymous id not stable")
	}
	f.a.queueIdentify(context.Background(), <-f.a.identifies)
	_, evs := f.outbox(t)
	if len(evs) != 1 || evs[0].Type != event.Identify || evs[0].AnonymousID != first.AnonymousID || evs[0].Context.Device != "pos-1" {
		t.Fatalf("identify event %+v", evs)
	}
	if evs[0].Traits["identKind"] != "loyalty" || evs[0].Traits["identHash"] == "" {
		t.Fatalf("identify traits %v", evs[0].Traits)
	}
	b, _ := evs[0].Encode()
	if containsAny(b, other) {
		t.Fatal("identify event carries the card number")
	}
}

func TestRestrictedRecognisedButEmpty(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	f.apply(t, Change{Kind: ChangeRestrict, Profile: "cust-1", Restricted: true})
	got, err := f.a.Identify(context.Background(), IdentifyRequest{Scan: card, Purpose: "loyalty"})
	if err != nil || !got.Known || !got.Restricted || got.Permitted || len(got.Attributes) != 0 {
		t.Fatalf("restricted: %+v %v", got, err)
	}
	f.apply(t, Change{Kind: ChangeRestrict, Profile: "cust-1", Restricted: false})
	if got, _ = f.a.Identify(context.Background(), IdentifyRequest{Scan: card, Purpose: "loyalty"}); len(got.Attributes) != 1 {
		t.Fatalf("after lifting: %+v", got)
	}
}

func TestSlicesExpire(t *testing.T) {
	f := newFixture(t)
	f.seedCustomer(t, "cust-1", card, email, map[string]consent.Status{"loyalty": consent.Granted})
	f.clock.advance(59 * time.Minute)
	if err := f.a.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.a.Identify(context.Background(), IdentifyRequest{Scan: card, Purpose: "loyalty"}); !got.Known {
		t.Fatal("dropped before its time")
	}
	f.clock.advance(2 * time.Minute)
	if err := f.a.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.a.Identify(context.Background(), IdentifyRequest{Scan: card, Purpose: "loyalty"}); got.Known {
		t.Fatal("expired slice still served")
	}
	if f.a.Stats()["expired"] != 1 {
		t.Fatalf("expired counter %v", f.a.Stats())
	}
}

// The cache never outgrows its bound: the profile that expires first goes.
func TestCacheBound(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxProfiles = 3 })
	cards := []string{"4539578763621486", "4556737586899855", "4916338506082832", "4024007198964305"}
	for i, c := range cards {
		f.apply(t, Change{Kind: ChangeProfile, Profile: "p" + c, Version: 1,
			Expires: f.a.now() + int64(i+1)*60_000, Idents: [][]byte{identHash("loyalty", c)}})
	}
	var known int
	for _, c := range cards {
		if got, _ := f.a.Identify(context.Background(), IdentifyRequest{Scan: c, Purpose: "analytics"}); got.Known {
			known++
		} else if c != cards[0] {
			t.Fatalf("evicted %s, not the one expiring first", c)
		}
	}
	if known != 3 || f.a.Stats()["evicted"] != 1 {
		t.Fatalf("known %d, stats %v", known, f.a.Stats())
	}
}
