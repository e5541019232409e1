package support_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/storeagent/storeagent/agent"
	"github.com/storeagent/storeagent/agent/agenttest"
	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/cmd/internal/support"
	"github.com/storeagent/storeagent/devices/localapi"
	"github.com/storeagent/storeagent/devices/scanner"
	firmwareconfig "github.com/storeagent/storeagent/firmware-config"
	"github.com/storeagent/storeagent/store"
)

// The seeded customers and what they typed in: none may show in a view.
var ada = agenttest.Customer{
	ID: "cust-ada-1815", Card: "79927398713", Email: "ada.lovelace@example.com", Name: "Ada Lovelace",
	Decisions: map[string]consent.Status{"loyalty": consent.Granted, "marketing": consent.Granted},
}

const (
	graceCard  = "4111111111111111"
	graceEmail = "grace.hopper@example.org"
	graceName  = "Grace Hopper"
)

func personalData() []string {
	return []string{ada.ID, ada.Card, ada.Email, ada.Name, "Lovelace", graceCard, graceEmail, graceName, "Hopper"}
}

// mustNotHold fails when v, as JSON, holds any seeded value.
func mustNotHold(t *testing.T, what string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ToLower(string(b))
	for _, p := range personalData() {
		if strings.Contains(s, strings.ToLower(p)) {
			t.Errorf("%s holds %q: %s", what, p, b)
		}
	}
}

// seeded is an agent and store with Ada cached, an order of hers queued
// with her details in its properties, and Grace enrolled at a kiosk, her
// identify event (with what she typed in) released into the outbox.
func seeded(t *testing.T) (*agent.Agent, *store.DB, string) {
	t.Helper()
	a, db := agenttest.New(t, store.Options{})
	agenttest.Seed(t, a, ada)
	ctx := context.Background()
	_, err := a.Capture(ctx, agent.CaptureRequest{Event: "Order Completed", UserID: ada.ID, Device: "pos-1",
		Properties: map[string]any{"email": ada.Email, "name": ada.Name, "card": ada.Card, "total": 12.5}})
	if err != nil {
		t.Fatal(err)
	}
	anon, err := a.Enroll(ctx, agent.EnrollRequest{Scan: graceCard, Purpose: "loyalty", Device: "kiosk-1",
		Traits: map[string]any{"name": graceName, "email": graceEmail}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetConsent(ctx, agent.ConsentRequest{UserID: anon, Purpose: "loyalty", Status: consent.Granted, Device: "kiosk-1"}); err != nil {
		t.Fatal(err)
	}
	return a, db, anon
}

func masker(t *testing.T) *support.Masker {
	t.Helper()
	m, err := support.NewMasker(agenttest.TenantKey)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMaskerRefs(t *testing.T) {
	m := masker(t)
	r := m.Ref(ada.ID)
	if !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(r) || r != m.Ref(ada.ID) || r == m.Ref("cust-2") {
		t.Fatalf("ref %q", r)
	}
	other, _ := support.NewMasker(bytes.Repeat([]byte{7}, 32))
	if other.Ref(ada.ID) == r {
		t.Fatal("a ref does not depend on the tenant key")
	}
	var none *support.Masker
	if none.Ref(ada.ID) != "" || m.Ref("") != "" {
		t.Fatal("a nil masker or an empty id made a ref")
	}
}

func TestPeekShowsNoPersonalData(t *testing.T) {
	_, db, anon := seeded(t)
	m := masker(t)
	peek, err := support.Peek(db, m, 10, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mustNotHold(t, "peek", peek)
	if strings.Contains(mustJSON(t, peek), anon) {
		t.Fatalf("peek holds the anonymous id: %s", mustJSON(t, peek))
	}
	var order *localapi.OutboxEntry
	for i, e := range peek.Entries {
		if e.Event == "Order Completed" {
			order = &peek.Entries[i]
		}
	}
	if order == nil || !order.UserID || order.Ref != m.Ref(ada.ID) || order.Properties != 4 || order.Class != "critical" || order.Purpose != "service" || order.Type != "track" {
		t.Fatalf("order entry %+v in %+v", order, peek.Entries)
	}
	var traits int
	for _, e := range peek.Entries {
		traits += e.Traits
	}
	if traits == 0 {
		t.Fatalf("the released identify event with traits is not listed: %+v", peek.Entries)
	}
	one, err := support.Peek(db, m, 1, time.Now())
	if err != nil || len(one.Entries) != 1 || !one.More || one.Entries[0].Seq != peek.Entries[0].Seq {
		t.Fatalf("peek 1: %+v %v", one, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLookup(t *testing.T) {
	_, db, _ := seeded(t)
	m := masker(t)
	cfg := agenttest.Config()
	ctx := context.Background()
	queued := db.QueuedRecords()

	known, err := support.Lookup(ctx, db, cfg, m, localapi.LookupRequest{Scan: ada.Card, Purpose: "loyalty"})
	if err != nil {
		t.Fatal(err)
	}
	mustNotHold(t, "lookup", known)
	if !known.Known || !known.Permitted || known.Ref != m.Ref(ada.ID) || !known.Audited || known.Identifier != "loyalty:•••••••••13" {
		t.Fatalf("known: %+v", known)
	}
	if len(known.Attributes) != 1 || known.Attributes[0].Name != "tier" || known.Attributes[0].Value != "•••" || known.Attributes[0].Type != "string" || known.OtherAttributes != 3 {
		t.Fatalf("attributes %+v, %d others", known.Attributes, known.OtherAttributes)
	}
	statuses := map[string]string{}
	for _, p := range known.Purposes {
		statuses[p.Purpose] = p.Status
	}
	if statuses["loyalty"] != "granted" || statuses["marketing"] != "granted" || known.QueuedEvents != 2 || known.Identifiers != 2 {
		t.Fatalf("purposes %+v, queued %d", known.Purposes, known.QueuedEvents)
	}

	unknown, err := support.Lookup(ctx, db, cfg, m, localapi.LookupRequest{Kind: "email", Value: "nobody@example.net", Purpose: "marketing"})
	if err != nil || unknown.Known || unknown.Ref != "" || !unknown.Audited || unknown.Identifier != "email:n•••@•••.net" {
		t.Fatalf("unknown: %+v %v", unknown, err)
	}
	if _, err := support.Lookup(ctx, db, cfg, m, localapi.LookupRequest{Scan: "79927398710", Purpose: "loyalty"}); !errors.Is(err, ident.ErrInvalid) {
		t.Fatalf("bad check digit: %v", err)
	}
	if _, err := support.Lookup(ctx, db, cfg, m, localapi.LookupRequest{Scan: ada.Card, Purpose: "nope"}); !errors.Is(err, agent.ErrUnknownPurpose) {
		t.Fatalf("unknown purpose: %v", err)
	}
	if db.QueuedRecords() != queued {
		t.Fatalf("a lookup queued events: %d, was %d", db.QueuedRecords(), queued)
	}

	audit, err := db.AuditLog(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var lookups []store.AuditEntry
	for _, e := range audit {
		if e.Kind == support.AuditLookup {
			lookups = append(lookups, e)
		}
	}
	mustNotHold(t, "audit log", audit)
	if len(lookups) != 2 || lookups[0].Fields["known"] != "true" || lookups[1].Fields["kind"] != "email" || lookups[1].Fields["purpose"] != "marketing" {
		t.Fatalf("audit entries of lookups: %+v", lookups)
	}
}

func TestLookupNeedsAWritableStore(t *testing.T) {
	_, db, _ := seeded(t)
	db.Close() // the cleanup's close is a no-op, its check still runs
	// The read-only open does not read sealed data: any key opens it.
	ro, err := store.OpenReadOnly(db.Path(), store.Options{Key: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, err = support.Lookup(context.Background(), ro, agenttest.Config(), nil, localapi.LookupRequest{Scan: ada.Card, Purpose: "loyalty"})
	if !errors.Is(err, support.ErrLookupNeedsWrite) {
		t.Fatalf("read-only lookup: %v", err)
	}
}

func TestDescribeCode(t *testing.T) {
	rules := ident.DefaultRules()
	noCheck := ident.DefaultRules()
	noCheck.Loyalty.Check = ident.CheckNone
	for _, tc := range []struct {
		name, code string
		rules      ident.Rules
		want       localapi.ScanEvent
	}{
		{"valid card", ada.Card, rules, localapi.ScanEvent{Valid: true, Kind: "loyalty", Identifier: "loyalty:•••••••••13", CheckDigit: "ok"}},
		{"grouped card", "7992 7398 713", rules, localapi.ScanEvent{Valid: true, Kind: "loyalty", Identifier: "loyalty:•••••••••13", CheckDigit: "ok"}},
		{"bad check digit", "79927398710", rules, localapi.ScanEvent{Kind: "loyalty", Reason: "bad_check_digit", Identifier: "loyalty:•••••••••10", CheckDigit: "bad"}},
		{"too short", "1234", rules, localapi.ScanEvent{Kind: "loyalty", Reason: "bad_length", Identifier: "loyalty:••••"}},
		{"qr form", "LOYALTY:" + ada.Card, rules, localapi.ScanEvent{Valid: true, Kind: "loyalty", Identifier: "loyalty:•••••••••13", CheckDigit: "ok"}},
		{"app token", "APP:tok-123456", rules, localapi.ScanEvent{Valid: true, Kind: "app", Identifier: "app:•••"}},
		{"an e-mail scanned", ada.Email, rules, localapi.ScanEvent{Reason: "unknown_form", Identifier: "•••"}},
		{"a name scanned", ada.Name, rules, localapi.ScanEvent{Reason: "unknown_form", Identifier: "•••"}},
		{"no check digit rule", "79927398710", noCheck, localapi.ScanEvent{Valid: true, Kind: "loyalty", Identifier: "loyalty:•••••••••10"}},
		{"blocked", "00000000", rules, localapi.ScanEvent{Kind: "loyalty", Reason: "blocked", Identifier: "loyalty:••••••00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got localapi.ScanEvent
			support.DescribeCode(&got, tc.code, tc.rules)
			if got != tc.want {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDescribeFrame(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_000)
	rej := support.DescribeFrame(scanner.Frame{Reason: scanner.RejectNoise, RawLen: 5, At: at}, "till-1", "/dev/x", ident.DefaultRules())
	if rej.Event != localapi.ScanReject || rej.Reject != "noise" || rej.Count != 1 || rej.Bytes != 5 || rej.Port != "till-1" {
		t.Fatalf("reject %+v", rej)
	}
	good := support.DescribeFrame(scanner.Frame{Code: ada.Card, Symbology: scanner.Symbology{AIM: "]C0", Name: "Code 128"}, RawLen: 15, At: at}, "till-1", "/dev/x", ident.DefaultRules())
	if good.Event != localapi.ScanFrame || !good.Valid || good.Symbology != "Code 128" || !good.At.Equal(at) {
		t.Fatalf("frame %+v", good)
	}
	mustNotHold(t, "scan event", good)
}

func TestRedactedConfig(t *testing.T) {
	doc := `kind = "pos"
[api]
token_file = "/etc/storeagent/api.token"
[sync]
enabled = true
broker = "ssl://broker.example.com:8883"
username = "store-0001-secret-user"
password_file = "/etc/storeagent/broker.pass"
central_keys = ["/etc/storeagent/central.pem"]
`
	cfg, err := firmwareconfig.Parse("site.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, err := support.RedactedConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if strings.Contains(s, "store-0001-secret-user") || !strings.Contains(s, "<redacted>") {
		t.Fatalf("the broker user name is not redacted:\n%s", s)
	}
	for _, path := range []string{"/etc/storeagent/api.token", "/etc/storeagent/broker.pass", "/etc/storeagent/central.pem"} {
		if !strings.Contains(s, path) {
			t.Errorf("the path %s is missing", path)
		}
	}
	if cfg.Sync.Username != "store-0001-secret-user" {
		t.Fatal("RedactedConfig changed the config it was given")
	}
	if _, err := firmwareconfig.Parse("redacted.toml", b); err != nil {
		t.Fatalf("the redacted config does not load: %v", err)
	}
}

func TestWriteBundle(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	files := []support.BundleFile{{Name: "status.json", Data: []byte("{}\n")}, {Name: "logs.txt", Data: []byte("line\n")}}
	if err := support.WriteBundle(&buf, "bundle", at, files); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Typeflag == tar.TypeReg && h.Mode != 0o600 {
			t.Errorf("%s has mode %o", h.Name, h.Mode)
		}
	}
	if strings.Join(names, ",") != "bundle/,bundle/status.json,bundle/logs.txt" {
		t.Fatalf("names %v", names)
	}
	if err := support.WriteBundle(io.Discard, "b", at, []support.BundleFile{{Name: "../etc/passwd"}}); err == nil {
		t.Fatal("a name with a path was accepted")
	}
}

func TestStoreStatus(t *testing.T) {
	a, db, _ := seeded(t)
	cfg := firmwareconfig.Default()
	cfg.Scanners = []firmwareconfig.ScannerSection{{Name: "till-1", Path: "/dev/ttyACM0"}}
	st, err := support.StoreStatus(cfg, db, a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.Outbox.Records == 0 || st.Cache.Profiles != 2 || st.Changes.Cursor != 2 || st.Link.State != support.LinkDisabled ||
		len(st.Scanners) != 1 || st.Scanners[0].Connected || st.Store.FileBytes == 0 {
		t.Fatalf("status %+v", st)
	}
	cfg.Sync.Enabled, cfg.Sync.Broker = true, "ssl://user:pw@broker.example.com:8883"
	if l := support.LinkOf(cfg); l.State != support.LinkUnknown || l.Broker != "broker.example.com:8883" {
		t.Fatalf("link %+v", l)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{850 * time.Millisecond, "850ms"}, {42 * time.Second, "42s"}, {185 * time.Second, "3m05s"}, {127 * time.Minute, "2h07m"}, {76 * time.Hour, "3d04h"}} {
		if got := support.Duration(tc.d); got != tc.want {
			t.Errorf("Duration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if support.Bytes(512) != "512 B" || support.Bytes(1536) != "1.5 KiB" || support.Bytes(int64(3)<<30) != "3.0 GiB" {
		t.Errorf("Bytes: %s %s %s", support.Bytes(512), support.Bytes(1536), support.Bytes(int64(3)<<30))
	}
	if support.Ago(time.Time{}, time.Now()) != "never" {
		t.Error("Ago of the zero time")
	}
}
