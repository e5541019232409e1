package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt and the fuzz seed corpora")

// testKey returns a deterministic Ed25519 key, so signed test vectors are
// stable: Ed25519 signatures are deterministic.
func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("storeagent wire test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func testSigner(t testing.TB, name string) *Signer {
	t.Helper()
	s, err := NewSigner(testKey(name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testVerifier(t testing.TB, names ...string) *Verifier {
	t.Helper()
	var keys []ed25519.PublicKey
	for _, n := range names {
		keys = append(keys, testKey(n).Public().(ed25519.PublicKey))
	}
	v, err := NewVerifier(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var testScope = Scope{Tenant: "acme", Store: "s1", Agent: "pos-1"}

const (
	testMessageID = "01890a5d-ac96-774b-bcce-b302099a8057"
	testTime      = int64(1767225600000) // 2026-01-01T00:00:00Z
)

func sampleEvent() Event {
	return Event{
		MessageID:         testMessageID,
		Type:              EventTrack,
		Event:             "Order Completed",
		UserID:            "p-123",
		OriginalTimestamp: testTime,
		Properties: map[string]any{
			"total":    12.5,
			"items":    int64(3),
			"products": []any{map[string]any{"sku": "cushion-1", "qty": int64(1)}},
			"gift":     false,
		},
		Context: Context{
			Store: "s1", Agent: "pos-1", Device: "pos-1", Purpose: "analytics",
			Consent: Consent{CategoryPreferences: map[string]bool{"analytics": true, "marketing": false}},
		},
	}
}

func sampleIdentify() Event {
	e := sampleEvent()
	e.MessageID = "01890a5d-ac96-774b-bcce-b302099a8058"
	e.Type, e.Event, e.Properties = EventIdentify, "", nil
	e.UserID, e.AnonymousID = "", "anon-7"
	e.Traits = map[string]any{"tier": "gold"}
	return e
}

func sampleBatch() EventBatch {
	return EventBatch{
		Agent: "pos-1", Store: "s1", First: 10, Last: 12, SentAt: testTime + 5000,
		Events: []Event{sampleEvent(), sampleIdentify()},
	}
}

func sampleAck() Ack {
	return Ack{Agent: "pos-1", Ranges: []Range{{First: 1, Last: 9}, {First: 10, Last: 12}}, Pace: 250}
}

func sampleSyncRequest() SyncRequest { return SyncRequest{Agent: "pos-1", From: 101} }

func sampleStatus() AgentStatus {
	return AgentStatus{Agent: "pos-1", Store: "s1", Online: true, At: testTime, Version: "0.1.0", Outbox: 42, Cursor: 100}
}

func sampleIdent(b byte) Ident {
	var id Ident
	for i := range id {
		id[i] = b + byte(i)
	}
	return id
}

// sampleChanges holds one change of each kind, seqs 101 to 105.
func sampleChanges() []Change {
	return []Change{
		{Seq: 101, Body: &ProfileChange{
			Profile: "p-123", Idents: []Ident{sampleIdent(1), sampleIdent(100)},
			Attrs: []Attr{
				{Name: "tier", Purpose: "personalisation", Value: "gold"},
				{Name: "favourites", Purpose: "personalisation", Value: []any{"cushions", "lamps"}},
			},
			Version: 7, Expires: testTime + 86400000,
		}},
		{Seq: 102, Body: &ConsentChange{Profile: "p-123", Purposes: map[string]ConsentEntry{
			"marketing": {Status: StatusWithdrawn, Basis: BasisConsent, At: testTime},
			"analytics": {Status: StatusObjected, Basis: BasisLegitimateInterest, At: testTime},
		}}},
		{Seq: 103, Body: &EraseChange{Profile: "p-456"}},
		{Seq: 104, Body: &RestrictChange{Profile: "p-789", Restricted: false}},
		{Seq: 105, Body: &PolicyChange{
			Purposes: []PolicyPurpose{
				{Name: "personalisation", Basis: BasisConsent},
				{Name: "analytics", Basis: BasisLegitimateInterest},
				{Name: "billing", Basis: BasisContract},
			},
			Events: map[string]string{"Order Completed": "billing", "Store Visited": "analytics"},
		}},
	}
}

func sampleRun() ChangeSet {
	return ChangeSet{From: 101, To: 105, More: true, Changes: sampleChanges()}
}

func sampleSnapshot() ChangeSet {
	c := sampleChanges()
	return ChangeSet{From: 1, To: 500, Snapshot: true, Changes: []Change{c[4], c[0], c[1]}}
}

// looseDec decodes test fixtures into generic maps so a test can break
// them; it is as lenient as the library allows.
var looseDec, _ = cbor.DecOptions{DefaultMapType: reflect.TypeFor[map[string]any]()}.DecMode()

// mutate decodes valid CBOR into a generic map, lets f break it, and
// encodes the result.
func mutate(t testing.TB, valid []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := looseDec.Unmarshal(valid, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := cbor.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawMap encodes a map from key, value pairs as given: in that order, with
// duplicates if any, and each value with the library's default options
// (which allow tags).
func rawMap(t testing.TB, pairs ...any) []byte {
	t.Helper()
	out := []byte{0xa0 | byte(len(pairs)/2)}
	for _, p := range pairs {
		b, err := cbor.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// indefinite rewrites a definite map of fewer than 24 pairs as an
// indefinite-length one.
func indefinite(b []byte) []byte {
	out := append([]byte{0xbf}, b[1:]...)
	return append(out, 0xff)
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// wantErr fails t unless err matches every sentinel in want; with no
// sentinel it requires err to be nil.
func wantErr(t testing.TB, err error, want ...error) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Fatalf("error %q does not match %q", err, w)
		}
	}
}

// noPII fails t if err's text holds any of the secrets.
func noPII(t testing.TB, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error %q leaks a value", err)
		}
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
