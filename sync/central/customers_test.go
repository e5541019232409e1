package central

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/agent/ident"
	"github.com/storeagent/storeagent/sync/wire"
)

// TestCustomerIdents checks the generator's idents against two
// independent computations: crypto/hmac directly, and the agent's own
// ident.Hasher over the identifiers as the agent normalises a scan. If they
// differ, a store would never recognise a synthetic customer.
func TestCustomerIdents(t *testing.T) {
	gen := Customers{TenantKey: testTenantKey, N: 1000, Seed: 7}
	hasher, err := ident.NewHasher(testTenantKey)
	if err != nil {
		t.Fatal(err)
	}
	rules := ident.DefaultRules()
	for _, i := range []int{0, 1, 2, 499, 998, 999} {
		cu, err := gen.Customer(i)
		if err != nil {
			t.Fatal(err)
		}
		for k, tc := range []struct {
			kind  ident.Kind
			value string
		}{{ident.Loyalty, cu.Loyalty}, {ident.Email, cu.Email}} {
			mac := hmac.New(sha256.New, testTenantKey)
			mac.Write([]byte(string(tc.kind) + ":" + tc.value))
			if got, want := cu.Idents[k], wire.Ident(mac.Sum(nil)); got != want {
				t.Errorf("customer %d %s: ident %v, hmac says %v", i, tc.kind, got, want)
			}
			id, err := rules.Normalize(tc.kind, tc.value)
			if err != nil {
				t.Fatalf("customer %d: the agent refuses the %s: %v", i, tc.kind, err)
			}
			if id.Value != tc.value {
				t.Errorf("customer %d: %s is not normalised", i, tc.kind)
			}
			if wire.Ident(hasher.Sum(id)) != cu.Idents[k] {
				t.Errorf("customer %d: the agent's hash of the %s differs", i, tc.kind)
			}
		}
		if !ident.LuhnValid(cu.Loyalty) || len(cu.Loyalty) != 16 {
			t.Errorf("customer %d: loyalty number not 16 Luhn-valid digits", i)
		}
		if cu.Profile != ProfileID(i) || IdentOf(testTenantKey, "email", cu.Email) != cu.Idents[1] {
			t.Errorf("customer %d: profile or IdentOf", i)
		}
	}
}

func TestCustomersDeterministicAndDistinct(t *testing.T) {
	a := Customers{TenantKey: testTenantKey, N: 200_000, Seed: 1}
	b := Customers{TenantKey: testTenantKey, N: 200_000, Seed: 2}
	x, _ := a.Customer(42)
	y, _ := a.Customer(42)
	if !reflect.DeepEqual(x, y) {
		t.Fatal("the same customer differs between two calls")
	}
	if z, _ := b.Customer(42); z.Loyalty == x.Loyalty || z.Idents[0] == x.Idents[0] {
		t.Error("another seed gives the same loyalty number")
	}
	n := a.N
	if testing.Short() || raceEnabled {
		n = 20_000
	}
	seen := make(map[string]int, n)
	gen := a.generator()
	counts := map[wire.ConsentStatus]int{}
	for i := range n {
		cu := gen.customer(i)
		if j, dup := seen[cu.Loyalty]; dup {
			t.Fatalf("customers %d and %d share a loyalty number", j, i)
		}
		seen[cu.Loyalty] = i
		counts[cu.Consent[PurposeMarketing].Status]++
		if cu.Consent[PurposeService].Basis != wire.BasisContract {
			t.Fatalf("customer %d: service basis %s", i, cu.Consent[PurposeService].Basis)
		}
		if err := (wire.Change{Seq: 1, Body: &wire.ConsentChange{Profile: cu.Profile, Purposes: cu.Consent}}).Validate(); err != nil {
			t.Fatal(err)
		}
	}
	// Marketing is mixed: each status a real share.
	for _, s := range []wire.ConsentStatus{wire.StatusGranted, wire.StatusDenied, wire.StatusWithdrawn} {
		if counts[s] < n/10 {
			t.Errorf("marketing %s: %d of %d", s, counts[s], n)
		}
	}
	if _, err := a.Customer(a.N); err == nil {
		t.Error("customer N exists")
	}
}

func TestProfileIDRoundTrip(t *testing.T) {
	for _, i := range []int{0, 7, 99_999_999, 123_456_789} {
		if got, ok := CustomerIndex(ProfileID(i)); !ok || got != i {
			t.Errorf("CustomerIndex(ProfileID(%d)) = %d, %t", i, got, ok)
		}
	}
	for _, s := range []string{"c1", "c0000000x", "x00000001", "c-0000001", "c000000001", "p-new", ""} {
		if _, ok := CustomerIndex(s); ok {
			t.Errorf("CustomerIndex(%q) is a customer", s)
		}
	}
}

func TestCustomerHidesIdentifiers(t *testing.T) {
	cu, _ := Customers{TenantKey: testTenantKey, N: 1}.Customer(0)
	for _, s := range []string{fmt.Sprint(cu), fmt.Sprintf("%v %+v %s", cu, cu, cu)} {
		if strings.Contains(s, cu.Loyalty) || strings.Contains(s, cu.Email) {
			t.Errorf("printing a customer shows an identifier: %q", s)
		}
	}
}

func TestCustomerJSON(t *testing.T) {
	cu, _ := Customers{TenantKey: testTenantKey, N: 1, Seed: 3}.Customer(0)
	b, err := json.Marshal(cu)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Profile string            `json:"profile"`
		Loyalty string            `json:"loyalty"`
		Idents  map[string]string `json:"idents"`
		Attrs   []struct {
			Name, Purpose string
			Value         any
		} `json:"attrs"`
		Consent map[string]struct {
			Status string `json:"status"`
			Basis  string `json:"basis"`
		} `json:"consent"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Profile != cu.Profile || got.Loyalty != cu.Loyalty || got.Idents["loyalty"] != hex.EncodeToString(cu.Idents[0][:]) ||
		len(got.Attrs) != 5 || got.Consent[PurposeService].Basis != "contract" || !strings.Contains(string(b), `"name":"tier"`) {
		t.Errorf("json %s", b)
	}
}
