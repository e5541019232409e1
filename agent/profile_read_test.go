package agent

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/storeagent/storeagent/agent/consent"
	"github.com/storeagent/storeagent/store"
)

// generalView is what the general decoder makes of raw, as a view.
func generalView(t testing.TB, raw []byte, pol *consent.Policy, purpose string) (profileView, error) {
	t.Helper()
	rec := &profileRec{}
	if err := store.UnmarshalRecord("profiles", nil, raw, rec); err != nil {
		return profileView{}, err
	}
	var v profileView
	viewOf(rec, pol, purpose, &v)
	return v, nil
}

// sameView compares two views as Identify would use them. A NaN value is
// not DeepEqual to itself, so values are compared as printed.
func sameView(a, b *profileView) bool {
	a2, b2 := *a, *b
	a2.buf, b2.buf = [8]consent.Status{}, [8]consent.Status{}
	return reflect.DeepEqual(a2, b2) || fmt.Sprintf("%#v", a2) == fmt.Sprintf("%#v", b2)
}

// randomValue is an attribute value of any type a central might send.
func randomValue(rng *rand.Rand) any {
	switch rng.IntN(14) {
	case 0:
		return fmt.Sprintf("välue-%d", rng.Int())
	case 1:
		return rng.Uint64()
	case 2:
		return uint64(rng.IntN(30)) // small: one-byte heads
	case 3:
		return -1 - rng.Int64N(math.MaxInt64)
	case 4:
		return int64(math.MinInt64)
	case 5:
		return rng.IntN(2) == 0
	case 6:
		return nil
	case 7:
		return rng.NormFloat64() * 1e6
	case 8:
		return 0.5 // encodes as a float16
	case 9:
		return []any{"a", uint64(1), []any{true}}
	case 10:
		return map[string]any{"city": "Lyon", "n": uint64(3)}
	case 11:
		return new(big.Int).Lsh(big.NewInt(-1), 70) // beyond int64: a bignum
	case 12:
		return ""
	default:
		return math.Inf(-1)
	}
}

func randomRecord(rng *rand.Rand, purposes []string) *profileRec {
	rec := &profileRec{
		ID: fmt.Sprintf("cust-%d-ü", rng.IntN(1e6)), Local: rng.IntN(2) == 0, Version: rng.Uint64N(1 << 40),
		Expires: rng.Int64N(1<<42) - 1<<41, Restricted: rng.IntN(4) == 0, Inactive: rng.IntN(4) == 0,
		Provisional: rng.IntN(4) == 0,
	}
	for range rng.IntN(7) {
		rec.Attrs = append(rec.Attrs, Attribute{Name: fmt.Sprintf("a%d", rng.IntN(100)),
			Purpose: purposes[rng.IntN(len(purposes))], Value: randomValue(rng)})
	}
	for range rng.IntN(3) {
		h := make([]byte, 32)
		for i := range h {
			h[i] = byte(rng.IntN(256))
		}
		rec.Idents = append(rec.Idents, h)
	}
	if n := rng.IntN(len(purposes) + 1); n > 0 {
		rec.Consent = map[string]consent.Entry{}
		statuses := []consent.Status{consent.Granted, consent.Denied, consent.Withdrawn, consent.Objected, consent.Pending}
		sources := []consent.Source{consent.Local, consent.Central}
		for range n {
			rec.Consent[purposes[rng.IntN(len(purposes))]] = consent.Entry{
				Status: statuses[rng.IntN(len(statuses))], At: rng.Int64N(1 << 42), Source: sources[rng.IntN(2)]}
		}
	}
	return rec
}

// TestReadViewAgreesWithGeneralDecoder: Identify's reader and the general
// decoder see the same customer in every record the store writes, with
// every type of attribute value, and the reader needs no help for any of
// them.
func TestReadViewAgreesWithGeneralDecoder(t *testing.T) {
	pol := testPolicy()
	purposes := append([]string{"unlisted"}, consent.RightsPurpose)
	for _, pu := range pol.Purposes {
		purposes = append(purposes, pu.Name)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 5000 {
		rec := randomRecord(rng, purposes)
		rec.V = 1
		raw, err := store.MarshalRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		purpose := purposes[rng.IntN(len(purposes))]
		var fast profileView
		if err := readView(raw, &pol, purpose, &fast); err != nil {
			t.Fatalf("record %d: the reader handed back a record the store wrote: %v\n%+v", i, err, rec)
		}
		general, err := generalView(t, raw, &pol, purpose)
		if err != nil {
			t.Fatal(err)
		}
		if !sameView(&fast, &general) {
			t.Fatalf("record %d for %q:\nreader  %+v\ngeneral %+v", i, purpose, fast, general)
		}
		if a, b := fast.permitted(&pol, purpose), pol.Permitted(purpose, rec.subject()); a != b {
			t.Fatalf("record %d: permitted %v, the policy says %v", i, a, b)
		}
		if a, b := fast.preferences(&pol), pol.Preferences(rec.subject()); !reflect.DeepEqual(a, b) {
			t.Fatalf("record %d: preferences %v, the policy says %v", i, a, b)
		}
	}
}

// TestReadViewKnowsEveryField: a record with every field of profileRec set
// is read without the general decoder. A field added to profileRec and not
// to readView fails here rather than slowing Identify down unseen.
func TestReadViewKnowsEveryField(t *testing.T) {
	rec := &profileRec{}
	rv := reflect.ValueOf(rec).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.String:
			f.SetString("x")
		case reflect.Uint8, reflect.Uint64:
			f.SetUint(1)
		case reflect.Int64:
			f.SetInt(1)
		case reflect.Slice, reflect.Map:
			// set below, with values of their own types
		default:
			t.Fatalf("profileRec.%s has kind %s: teach readView and this test", rv.Type().Field(i).Name, f.Kind())
		}
	}
	rec.Attrs = []Attribute{{Name: "tier", Purpose: "loyalty", Value: "gold"}}
	rec.Idents = [][]byte{{1, 2, 3}}
	rec.Consent = map[string]consent.Entry{"loyalty": {Status: consent.Granted, At: 1, Source: consent.Local}}
	for i := range rv.NumField() {
		if rv.Field(i).IsZero() {
			t.Fatalf("profileRec.%s is left unset: teach this test its type", rv.Type().Field(i).Name)
		}
	}
	raw, err := store.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	pol := testPolicy()
	var v profileView
	if err := readView(raw, &pol, "loyalty", &v); err != nil {
		t.Fatalf("readView does not know a field of profileRec: %v", err)
	}
	if want, _ := generalView(t, raw, &pol, "loyalty"); !sameView(&v, &want) {
		t.Fatalf("reader %+v, general %+v", v, want)
	}
}

// TestIdentifyFallsBackToGeneralDecoder: records the reader hands back (a
// policy of more purposes than it tracks, an empty consent map written by
// another encoder) still answer, and answer the same.
func TestIdentifyFallsBackToGeneralDecoder(t *testing.T) {
	pol := testPolicy()
	for i := range 70 {
		pol.Purposes = append(pol.Purposes, consent.Purpose{Name: fmt.Sprintf("extra%d", i), Basis: consent.BasisConsent})
	}
	card := identHash("loyalty", "79927398713")
	rec := &profileRec{V: 1, ID: "c1", Consent: map[string]consent.Entry{"extra69": {Status: consent.Granted, At: 1, Source: consent.Central}},
		Attrs: []Attribute{{Name: "n", Purpose: "extra69", Value: uint64(7)}}, Idents: [][]byte{card}}
	raw, err := store.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	var v profileView
	if err := readView(raw, &pol, "extra69", &v); err == nil {
		t.Fatal("the reader took a record whose purpose lies beyond what it tracks")
	}
	want, err := generalView(t, raw, &pol, "extra69")
	if err != nil {
		t.Fatal(err)
	}
	if !want.permitted(&pol, "extra69") || len(want.Attrs) != 1 {
		t.Fatalf("general view %+v", want)
	}

	// Through the cache, as Identify reads: the general decoder answers.
	f := newFixture(t, func(c *Config) { c.Policy = pol })
	pk := f.a.pkey("c1")
	err = f.db.Update(func(tx *store.Tx) error { return f.a.live(tx).put(pk, rec, nil) })
	if err != nil {
		t.Fatal(err)
	}
	err = f.db.View(func(tx *store.Tx) error {
		var got profileView
		ok, err := f.a.live(tx).view(card, &pol, "extra69", &got)
		if err != nil || !ok || !sameView(&got, &want) {
			t.Fatalf("view through the cache: %v %v %+v, want %+v", ok, err, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// An empty consent map (0xa0), which the store's encoder never writes.
	emptyConsent := []byte{0xa2, 0x01, 0x62, 'c', '2', 0x09, 0xa0}
	if err := readView(emptyConsent, &pol, "loyalty", &v); err == nil {
		t.Fatal("the reader took an empty consent map")
	}
	if got, err := generalView(t, emptyConsent, &pol, "loyalty"); err != nil || got.ID != "c2" {
		t.Fatalf("general view of an empty consent map: %+v %v", got, err)
	}
}

// FuzzReadView: whatever bytes it is given, the reader does not panic, and
// when both it and the general decoder take a record they agree.
func FuzzReadView(f *testing.F) {
	pol := testPolicy()
	rng := rand.New(rand.NewPCG(3, 5))
	for range 8 {
		raw, err := store.MarshalRecord(randomRecord(rng, []string{"loyalty", "analytics", "other"}))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, "loyalty")
	}
	f.Fuzz(func(t *testing.T, raw []byte, purpose string) {
		var fast profileView
		if readView(raw, &pol, purpose, &fast) != nil {
			return
		}
		general, err := generalView(t, raw, &pol, purpose)
		if err != nil {
			return // the reader skips what the purpose does not see; the general decoder checks all
		}
		if !sameView(&fast, &general) {
			t.Fatalf("reader %+v, general %+v", fast, general)
		}
	})
}
