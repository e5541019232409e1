package ident_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/agent/ident"
)

// Seeds of every fuzz test are in testdata/fuzz/FuzzXxx, crashers found
// while fuzzing included.

// fuzzRules returns rules chosen by mode:
//
//	bits 0-1: check digit luhn, gs1, none, luhn
//	bit 2:    default country code 44 instead of none
//	bit 3:    loyalty numbers of 4 to 12 digits with prefixes 4 and 79
//	bit 4:    default country code 1 (overrides bit 2)
func fuzzRules(mode uint8) ident.Rules {
	r := scanRules()
	r.Loyalty.Check = []ident.Check{ident.CheckLuhn, ident.CheckGS1, ident.CheckNone, ident.CheckLuhn}[mode&3]
	if mode&4 != 0 {
		r.DefaultCountryCode = "44"
	}
	if mode&8 != 0 {
		r.Loyalty.MinLen, r.Loyalty.MaxLen, r.Loyalty.Prefixes = 4, 12, []string{"4", "79"}
	}
	if mode&16 != 0 {
		r.DefaultCountryCode = "1"
	}
	return r
}

// FuzzParseScan: whatever the scanner sends, ParseScan does not panic, an
// accepted identifier obeys the rules of its kind and normalises to itself,
// and an error is one of the fixed messages.
func FuzzParseScan(f *testing.F) {
	f.Fuzz(func(t *testing.T, raw string, mode uint8) {
		r := fuzzRules(mode)
		id, err := r.ParseScan(raw)
		if err != nil {
			checkNoLeak(t, err, raw)
			return
		}
		if id.Kind != ident.Loyalty && id.Kind != ident.App {
			t.Fatalf("a scan gave kind %q", id.Kind)
		}
		checkID(t, r, id)
	})
}

// FuzzNormalize: the same for Normalize, over every kind and an unknown one.
func FuzzNormalize(f *testing.F) {
	kinds := []ident.Kind{ident.Loyalty, ident.Email, ident.Phone, ident.App, "card"}
	f.Fuzz(func(t *testing.T, kind uint8, raw string, mode uint8) {
		r := fuzzRules(mode)
		k := kinds[int(kind)%len(kinds)]
		id, err := r.Normalize(k, raw)
		if err != nil {
			checkNoLeak(t, err, raw)
			if k == "card" && ident.ReasonOf(err) != ident.ReasonUnknownKind {
				t.Fatalf("unknown kind gave %v", err)
			}
			return
		}
		if id.Kind != k {
			t.Fatalf("Normalize(%s) gave kind %s", k, id.Kind)
		}
		checkID(t, r, id)
	})
}

// FuzzQRForm: for any template that Validate accepts and any value, the
// payload made by putting the value into the template parses without panic;
// when the value is a valid identifier, it parses back to exactly that
// identifier. mode picks the rules as fuzzRules does; bit 7 makes the
// template an app form instead of a QR form.
func FuzzQRForm(f *testing.F) {
	f.Fuzz(func(t *testing.T, template, value string, mode uint8) {
		r := fuzzRules(mode &^ 0x80)
		kind := ident.Loyalty
		r.QRForms, r.AppForms = []string{template}, nil
		if mode&0x80 != 0 {
			kind = ident.App
			r.QRForms, r.AppForms = nil, []string{template}
		}
		if r.Validate() != nil {
			return
		}
		// The package's rule: a URL template holds "://" and a "?" before {id}.
		q := strings.IndexByte(template, '?')
		isURL := strings.Contains(template, "://") && q >= 0 && q < strings.Index(template, "{id}")
		render := func(v string) string {
			if isURL {
				v = url.QueryEscape(v)
			}
			return strings.Replace(template, "{id}", v, 1)
		}

		// Any value: no panic, a sound result.
		payload := render(value)
		if got, err := r.ParseScan(payload); err != nil {
			checkNoLeak(t, err, payload)
		} else {
			checkID(t, r, got)
		}

		// A valid value comes back as itself.
		want, err := r.Normalize(kind, value)
		if err != nil {
			return
		}
		payload = render(want.Value)
		if len(payload) > ident.MaxInputLen || plainNumber(payload) {
			return // too long, or read as a plain loyalty number before any form
		}
		got, err := r.ParseScan(payload)
		if ident.ReasonOf(err) == ident.ReasonBlocked {
			if _, nerr := r.Normalize(ident.App, payload); ident.ReasonOf(nerr) == ident.ReasonBlocked {
				return // the payload as a whole is a blocked value
			}
		}
		if err != nil || got != want {
			t.Fatalf("template %q, value %q: payload %q gave %s:%q, %v", template, want.Value, payload, got.Kind, got.Value, err)
		}
	})
}

// plainNumber mirrors the package's test of a plain loyalty number.
func plainNumber(s string) bool {
	s = strings.TrimSpace(s)
	return strings.ContainsAny(s, "0123456789") && strings.Trim(s, "0123456789 -") == ""
}

var (
	phoneRE = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
	emailRE = regexp.MustCompile("^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[a-z0-9-]+(\\.[a-z0-9-]+)+$")
)

// checkID checks an accepted identifier against the rules of its kind.
func checkID(t *testing.T, r ident.Rules, id ident.ID) {
	t.Helper()
	again, err := r.Normalize(id.Kind, id.Value)
	if err != nil || again != id {
		t.Fatalf("not idempotent: %s:%q normalises to %s:%q, %v", id.Kind, id.Value, again.Kind, again.Value, err)
	}
	v := id.Value
	switch id.Kind {
	case ident.Loyalty:
		checkLoyalty(t, r, v)
	case ident.Phone:
		if !phoneRE.MatchString(v) {
			t.Fatalf("phone %q is not E.164", v)
		}
	case ident.Email:
		if len(v) > 254 || !emailRE.MatchString(v) {
			t.Fatalf("email %q breaks the rules", v)
		}
	case ident.App:
		if len(v) < 1 || len(v) > ident.MaxAppLen || strings.IndexFunc(v, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0 {
			t.Fatalf("app token %q breaks the rules", v)
		}
	default:
		t.Fatalf("unknown kind %q", id.Kind)
	}
	for _, b := range append(append([]string{}, r.Blocked...), r.DeviceIDs...) {
		if strings.EqualFold(v, b) {
			t.Fatalf("%q is blocked", v)
		}
	}
	if len(v) >= 3 && (strings.Contains(id.String(), v) || strings.Contains(id.Mask(), v)) {
		t.Fatalf("String or Mask shows the value %q", v)
	}
}

func checkLoyalty(t *testing.T, r ident.Rules, v string) {
	t.Helper()
	l := r.Loyalty
	if strings.Trim(v, "0123456789") != "" || strings.Trim(v, "0") == "" {
		t.Fatalf("loyalty %q is not digits, or all zeros", v)
	}
	if len(v) < l.MinLen || len(v) > l.MaxLen {
		t.Fatalf("loyalty %q has %d digits, want %d to %d", v, len(v), l.MinLen, l.MaxLen)
	}
	if (l.Check == ident.CheckLuhn && !ident.LuhnValid(v)) || (l.Check == ident.CheckGS1 && !ident.GS1Valid(v)) {
		t.Fatalf("loyalty %q fails its %s check digit", v, l.Check)
	}
	ok := len(l.Prefixes) == 0
	for _, p := range l.Prefixes {
		ok = ok || strings.HasPrefix(v, p)
	}
	if !ok {
		t.Fatalf("loyalty %q has none of the prefixes", v)
	}
}
