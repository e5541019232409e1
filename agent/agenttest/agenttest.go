// Package agenttest makes a real agent over a real store for the tests of
// the packages built on it (the local API, the device bus, the sync link):
// one policy, one tenant key, one way to seed customers, in one place.
package agenttest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/store"
	"github.com/storeagent/storeagent/store/storetest"
)

// TenantKey is the test tenant's HMAC key.
var TenantKey = bytes.Repeat([]byte{0x42}, 32)

// Policy has one purpose per basis that matters in a store.
func Policy() consent.Policy {
	return consent.Policy{
		Purposes: []consent.Purpose{
			{Name: "loyalty", Basis: consent.BasisConsent},
			{Name: "marketing", Basis: consent.BasisConsent},
			{Name: "analytics", Basis: consent.BasisLegitimateInterest},
			{Name: "service", Basis: consent.BasisContract},
		},
		Events:  map[string]string{"Order Completed": "service", "Product Viewed": "analytics", "Offer Redeemed": "marketing"},
		Default: "analytics",
	}
}

// Config is the agent config the tests share.
func Config() agent.Config {
	return agent.Config{
		Tenant: "acme", StoreID: "s1", AgentID: "a1", TenantKey: TenantKey,
		Ident: ident.DefaultRules(), Policy: Policy(), CriticalEvents: []string{"Order Completed"},
	}
}

// New opens a store in t.TempDir() with opts and an agent over it.
func New(t testing.TB, opts store.Options, tweak ...func(*agent.Config)) (*agent.Agent, *store.DB) {
	t.Helper()
	db := storetest.Open(t, opts)
	return NewOn(t, db, tweak...), db
}

// NewOn makes an agent over an open store.
func NewOn(t testing.TB, db *store.DB, tweak ...func(*agent.Config)) *agent.Agent {
	t.Helper()
	cfg := Config()
	for _, f := range tweak {
		f(&cfg)
	}
	a, err := agent.New(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// IdentHash is HMAC-SHA256(tenant key, kind ":" value), as the central
// computes it.
func IdentHash(kind, value string) []byte {
	m := hmac.New(sha256.New, TenantKey)
	m.Write([]byte(kind + ":" + value))
	return m.Sum(nil)
}

// Card is the i-th of a series of valid loyalty numbers (Luhn), for tests
// that need many customers.
func Card(i int) string {
	payload := fmt.Sprintf("900%012d", i)
	return payload + string(ident.LuhnCheckDigit(payload))
}

// Customer is a seeded customer.
type Customer struct {
	ID, Card, Email, Name string
	Decisions             map[string]consent.Status
}

// Seed applies, as the central would, a consent change and a profile change
// for c, numbered after the cursor.
func Seed(t testing.TB, a *agent.Agent, c Customer) {
	t.Helper()
	at := time.Now().UnixMilli() - 1000
	cons := map[string]consent.Entry{}
	for p, s := range c.Decisions {
		cons[p] = consent.Entry{Status: s, At: at}
	}
	Apply(t, a,
		agent.Change{Kind: agent.ChangeConsent, Profile: c.ID, Consent: cons},
		agent.Change{Kind: agent.ChangeProfile, Profile: c.ID, Version: 1, Expires: time.Now().Add(24 * time.Hour).UnixMilli(),
			Idents: [][]byte{IdentHash("loyalty", c.Card), IdentHash("email", c.Email)},
			Attrs: []agent.Attribute{
				{Name: "tier", Purpose: "loyalty", Value: "gold"},
				{Name: "first_name", Purpose: "marketing", Value: c.Name},
				{Name: "segment", Purpose: "analytics", Value: "weekend"},
				{Name: "account_status", Purpose: "service", Value: "active"},
			}},
	)
}

// Apply applies changes in order, numbering them after the cursor.
func Apply(t testing.TB, a *agent.Agent, changes ...agent.Change) {
	t.Helper()
	for _, ch := range changes {
		cur, err := a.Cursor()
		if err != nil {
			t.Fatal(err)
		}
		ch.Seq = cur + 1
		if res, err := a.Apply(context.Background(), ch); err != nil || res != agent.Applied {
			t.Fatalf("apply %s: %v %v", ch.Kind, res, err)
		}
	}
}
