package ident_test

import (
	"strings"
	"testing"

	"github.com/storeagent/storeagent/agent/ident"
)

// scanRules are the rules of the scan tests: every kind of form.
func scanRules() ident.Rules {
	r := ident.DefaultRules()
	r.QRForms = []string{
		"LOYALTY:{id}",
		"CARD-{id}",
		"<{id}>",
		"https://shop.example/l?card={id}",
		"https://shop.example:8443/loyalty/scan?c%20n={id}",
		"https://shop.example/c/{id}", // {id} in the path: a text template
	}
	r.AppForms = []string{
		"APP:{id}",
		"shopapp://t?token={id}",
	}
	r.DeviceIDs = []string{"POS-01", "KIOSK-02"}
	return r
}

func TestParseScan(t *testing.T) {
	const card = "79927398713"
	tests := []struct {
		name   string
		in     string
		kind   ident.Kind // of the result, or of the error
		want   string
		reason ident.Reason
	}{
		// Plain numbers.
		{name: "digits", in: card, kind: ident.Loyalty, want: card},
		{name: "digits with spaces", in: "7992 7398 713", kind: ident.Loyalty, want: card},
		{name: "digits with dashes", in: "7992-7398-713", kind: ident.Loyalty, want: card},
		{name: "digits with spaces around", in: " 79927398713  ", kind: ident.Loyalty, want: card},
		{name: "digits with bad check digit", in: "79927398710", kind: ident.Loyalty, reason: ident.ReasonBadCheckDigit},
		{name: "digits too short", in: "18", kind: ident.Loyalty, reason: ident.ReasonBadLength},
		{name: "ean-13 under luhn rules", in: "4006381333931", kind: ident.Loyalty, reason: ident.ReasonBadCheckDigit},
		{name: "all zeros", in: "0000000000000", kind: ident.Loyalty, reason: ident.ReasonBlocked},
		{name: "minus one", in: "-1", reason: ident.ReasonBlocked},

		// Text templates.
		{name: "loyalty text form", in: "LOYALTY:" + card, kind: ident.Loyalty, want: card},
		{name: "loyalty text form grouped", in: "LOYALTY: 7992-7398-713", kind: ident.Loyalty, want: card},
		{name: "loyalty text form is case-sensitive", in: "loyalty:" + card, reason: ident.ReasonUnknownForm},
		{name: "loyalty text form bad check digit", in: "LOYALTY:79927398710", kind: ident.Loyalty, reason: ident.ReasonBadCheckDigit},
		{name: "loyalty text form empty", in: "LOYALTY:", kind: ident.Loyalty, reason: ident.ReasonEmpty},
		{name: "loyalty text form junk", in: "LOYALTY:hello", kind: ident.Loyalty, reason: ident.ReasonBadChars},
		{name: "loyalty text form zeros", in: "LOYALTY:00000000", kind: ident.Loyalty, reason: ident.ReasonBlocked},
		{name: "card text form", in: "CARD-" + card, kind: ident.Loyalty, want: card},
		{name: "text form with suffix", in: "<" + card + ">", kind: ident.Loyalty, want: card},
		{name: "text form missing suffix", in: "<" + card, reason: ident.ReasonUnknownForm},
		{name: "path template", in: "https://shop.example/c/" + card, kind: ident.Loyalty, want: card},

		// URL templates.
		{name: "url form", in: "https://shop.example/l?card=" + card, kind: ident.Loyalty, want: card},
		{name: "url form host case", in: "https://SHOP.Example/l?card=" + card, kind: ident.Loyalty, want: card},
		{name: "url form scheme case", in: "HTTPS://shop.example/l?card=" + card, kind: ident.Loyalty, want: card},
		{name: "url form extra params", in: "https://shop.example/l?utm_source=poster&card=" + card + "&x=%zz", kind: ident.Loyalty, want: card},
		{name: "url form fragment", in: "https://shop.example/l?card=" + card + "#top", kind: ident.Loyalty, want: card},
		{name: "url form escaped value", in: "https://shop.example/l?card=7992%2073987-13", kind: ident.Loyalty, want: card},
		{name: "url form plus as space", in: "https://shop.example/l?card=7992+7398+713", kind: ident.Loyalty, want: card},
		{name: "url form escaped name and port", in: "https://shop.example:8443/loyalty/scan?c+n=" + card, kind: ident.Loyalty, want: card},
		{name: "url form wrong port", in: "https://shop.example:8080/loyalty/scan?c+n=" + card, reason: ident.ReasonUnknownForm},
		{name: "url form wrong path", in: "https://shop.example/x?card=" + card, reason: ident.ReasonUnknownForm},
		{name: "url form path case", in: "https://shop.example/L?card=" + card, reason: ident.ReasonUnknownForm},
		{name: "url form wrong host", in: "https://shop.example.evil/l?card=" + card, reason: ident.ReasonUnknownForm},
		{name: "url form wrong scheme", in: "http://shop.example/l?card=" + card, reason: ident.ReasonUnknownForm},
		{name: "url form missing param", in: "https://shop.example/l?cart=" + card, kind: ident.Loyalty, reason: ident.ReasonBadFormat},
		{name: "url form no query", in: "https://shop.example/l", kind: ident.Loyalty, reason: ident.ReasonBadFormat},
		{name: "url form param twice", in: "https://shop.example/l?card=" + card + "&card=4111111111111111", kind: ident.Loyalty, reason: ident.ReasonBadFormat},
		{name: "url form bad escape in value", in: "https://shop.example/l?card=7992%zz", kind: ident.Loyalty, reason: ident.ReasonBadFormat},
		{name: "url form user info", in: "https://shop.example@shop.example/l?card=" + card, kind: ident.Loyalty, reason: ident.ReasonBadFormat},
		{name: "url form empty value", in: "https://shop.example/l?card=", kind: ident.Loyalty, reason: ident.ReasonEmpty},
		{name: "url form bad check digit", in: "https://shop.example/l?card=79927398710", kind: ident.Loyalty, reason: ident.ReasonBadCheckDigit},
		{name: "url form junk value", in: "https://shop.example/l?card=abc", kind: ident.Loyalty, reason: ident.ReasonBadChars},

		// App forms.
		{name: "app form", in: "APP:u_9f8A7b-6c5D", kind: ident.App, want: "u_9f8A7b-6c5D"},
		{name: "app form trimmed", in: "APP: u_9f8A7b ", kind: ident.App, want: "u_9f8A7b"},
		{name: "app form empty", in: "APP:", kind: ident.App, reason: ident.ReasonEmpty},
		{name: "app form space inside", in: "APP:a b", kind: ident.App, reason: ident.ReasonBadChars},
		{name: "app form too long", in: "APP:" + strings.Repeat("t", 129), kind: ident.App, reason: ident.ReasonBadLength},
		{name: "app form anonymous", in: "APP:anonymous", kind: ident.App, reason: ident.ReasonBlocked},
		{name: "app form device id", in: "APP:pos-01", kind: ident.App, reason: ident.ReasonBlocked},
		{name: "app url form", in: "shopapp://t?token=tok%2F123", kind: ident.App, want: "tok/123"},

		// Blocked and device ids as a whole.
		{name: "anonymous", in: "anonymous", reason: ident.ReasonBlocked},
		{name: "pos id", in: "POS-01", reason: ident.ReasonBlocked},
		{name: "kiosk id lower case", in: "kiosk-02", reason: ident.ReasonBlocked},

		// Junk.
		{name: "empty", in: "", reason: ident.ReasonEmpty},
		{name: "spaces", in: "   ", reason: ident.ReasonEmpty},
		{name: "dashes only", in: "---", reason: ident.ReasonUnknownForm},
		{name: "words", in: "hello world", reason: ident.ReasonUnknownForm},
		{name: "email is not a scan form", in: "jane@example.com", reason: ident.ReasonUnknownForm},
		{name: "other url", in: "https://example.com/?card=" + card, reason: ident.ReasonUnknownForm},
		{name: "nul", in: "LOYALTY:\x0079927398713", reason: ident.ReasonBadChars},
		{name: "newline inside", in: "7992\n7398713", reason: ident.ReasonBadChars},
		{name: "bell", in: "\a79927398713", reason: ident.ReasonBadChars},
		{name: "c1 control", in: "LOYALTY:\u009b79927398713", reason: ident.ReasonBadChars},
		{name: "invalid utf-8", in: "LOYALTY:\xc3\x2879927398713", reason: ident.ReasonBadChars},
		{name: "512 bytes", in: "APP:" + strings.Repeat(" ", 508-len(card)) + card, kind: ident.App, want: card},
		{name: "513 bytes", in: strings.Repeat("1", 513), reason: ident.ReasonTooLong},
	}
	r := scanRules()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := r.ParseScan(tt.in)
			checkResult(t, id, err, tt.kind, tt.in, tt.want, tt.reason)
			if err != nil {
				if e := err.(*ident.InvalidError); e.Kind != tt.kind {
					t.Errorf("error kind %q, want %q", e.Kind, tt.kind)
				}
				return
			}
			again, err := r.Normalize(id.Kind, id.Value)
			if err != nil || again != id {
				t.Errorf("not idempotent: Normalize = %v, %v", again.Mask(), err)
			}
		})
	}
}

// TestParseScanFormOrder checks that the first form yielding a valid
// identifier wins, and that a later form rescues a scan that an earlier
// form only matched.
func TestParseScanFormOrder(t *testing.T) {
	r := ident.DefaultRules()
	r.QRForms = []string{"L{id}", "LX{id}"}
	r.AppForms = []string{"LX{id}"}
	tests := []struct {
		in   string
		want ident.ID
	}{
		{"L79927398713", ident.ID{Kind: ident.Loyalty, Value: "79927398713"}},
		{"LX79927398713", ident.ID{Kind: ident.Loyalty, Value: "79927398713"}},
		{"LXabc", ident.ID{Kind: ident.App, Value: "abc"}},
	}
	for _, tt := range tests {
		got, err := r.ParseScan(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseScan(%q) = %s:%q, %v; want %s:%q", tt.in, got.Kind, got.Value, err, tt.want.Kind, tt.want.Value)
		}
	}
	// No form yields a valid identifier: the first matching form's error.
	if _, err := r.ParseScan("L79927398710"); ident.ReasonOf(err) != ident.ReasonBadCheckDigit {
		t.Errorf("ParseScan = %v, want bad_check_digit", err)
	}
	// A blocked value stops the search even when a later form would accept.
	r.QRForms = []string{"T{id}"}
	r.AppForms = []string{"T{id}"}
	r.Blocked = []string{"00000000"}
	if _, err := r.ParseScan("T00000000"); ident.ReasonOf(err) != ident.ReasonBlocked {
		t.Errorf("ParseScan = %v, want blocked", err)
	}
}

// TestParseScanNoForms checks the zero Rules: plain numbers only.
func TestParseScanNoForms(t *testing.T) {
	var r ident.Rules
	if id, err := r.ParseScan("79927398713"); err != nil || id.Value != "79927398713" {
		t.Errorf("ParseScan = %v, %v", id, err)
	}
	for _, in := range []string{"LOYALTY:79927398713", "APP:abc"} {
		if _, err := r.ParseScan(in); ident.ReasonOf(err) != ident.ReasonUnknownForm {
			t.Errorf("ParseScan(%q) = %v, want unknown_form", in, err)
		}
	}
}

// TestParseScanInvalidFormIgnored checks that a form that fails Validate
// never matches rather than panicking.
func TestParseScanInvalidFormIgnored(t *testing.T) {
	r := ident.DefaultRules()
	r.QRForms = []string{"{id}", "A{id}{id}", "https://shop.example/l?card=x{id}", "NOPLACEHOLDER"}
	for _, in := range []string{"hello", "Ahello", "https://shop.example/l?card=x79927398713", "NOPLACEHOLDER"} {
		if _, err := r.ParseScan(in); ident.ReasonOf(err) != ident.ReasonUnknownForm {
			t.Errorf("ParseScan(%q) = %v, want unknown_form", in, err)
		}
	}
}
