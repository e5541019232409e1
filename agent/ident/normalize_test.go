package ident_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/agent/ident"
)

// normCase is one input to Rules.Normalize with its expected outcome:
// either want (the normalised value) or reason.
type normCase struct {
	name   string
	rules  func(*ident.Rules) // changes to DefaultRules; nil for none
	in     string
	want   string
	reason ident.Reason
}

func runNormalize(t *testing.T, kind ident.Kind, tests []normCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ident.DefaultRules()
			if tt.rules != nil {
				tt.rules(&r)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("rules: %v", err)
			}
			id, err := r.Normalize(kind, tt.in)
			checkResult(t, id, err, kind, tt.in, tt.want, tt.reason)
			if err == nil {
				again, err := r.Normalize(id.Kind, id.Value)
				if err != nil || again != id {
					t.Errorf("not idempotent: Normalize(%s, value) = %v, %v", id.Kind, again.Mask(), err)
				}
			}
		})
	}
}

// checkResult checks one outcome of Normalize or ParseScan.
func checkResult(t *testing.T, id ident.ID, err error, kind ident.Kind, in, want string, reason ident.Reason) {
	t.Helper()
	if reason != "" {
		if err == nil {
			t.Fatalf("got %s (%q), want reason %s", id, id.Value, reason)
		}
		if got := ident.ReasonOf(err); got != reason {
			t.Fatalf("reason %q (%v), want %q", got, err, reason)
		}
		if !errors.Is(err, ident.ErrInvalid) {
			t.Errorf("%v does not match ErrInvalid", err)
		}
		if got := errors.Is(err, ident.ErrBlocked); got != (reason == ident.ReasonBlocked) {
			t.Errorf("errors.Is(%v, ErrBlocked) = %v", err, got)
		}
		checkNoLeak(t, err, in)
		return
	}
	if err != nil {
		t.Fatalf("got %v, want %q", err, want)
	}
	if id.Kind != kind || id.Value != want {
		t.Fatalf("got %s:%q, want %s:%q", id.Kind, id.Value, kind, want)
	}
}

// checkNoLeak fails when err's text is not one of the fixed messages the
// package can produce: a fixed message cannot carry the input.
func checkNoLeak(t testing.TB, err error, in string) {
	t.Helper()
	msg := err.Error()
	if !knownMessages[msg] {
		t.Fatalf("error %q is not a fixed message", msg)
	}
	// Redundant with the above, but says what it is for. Inputs that happen
	// to be part of a fixed text ("iden") are not leaks.
	if in := strings.TrimSpace(in); len(in) >= 4 && strings.Contains(msg, in) && !inFixedText(in) {
		t.Fatalf("error %q contains the input", msg)
	}
}

func inFixedText(s string) bool {
	for m := range knownMessages {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// knownMessages are every text an *InvalidError can have.
var knownMessages = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range []ident.Kind{"", ident.Loyalty, ident.Email, ident.Phone, ident.App} {
		for _, r := range allReasons {
			m[(&ident.InvalidError{Kind: k, Reason: r}).Error()] = true
		}
	}
	return m
}()

var allReasons = []ident.Reason{
	ident.ReasonEmpty, ident.ReasonTooLong, ident.ReasonBadChars, ident.ReasonBadLength,
	ident.ReasonBadCheckDigit, ident.ReasonBadPrefix, ident.ReasonBadFormat,
	ident.ReasonUnknownForm, ident.ReasonUnknownKind, ident.ReasonBlocked,
}

func TestNormalizeLoyalty(t *testing.T) {
	gs1 := func(r *ident.Rules) { r.Loyalty.Check = ident.CheckGS1 }
	none := func(r *ident.Rules) { r.Loyalty.Check = ident.CheckNone }
	runNormalize(t, ident.Loyalty, []normCase{
		{name: "luhn valid", in: "79927398713", want: "79927398713"},
		{name: "luhn bad check digit", in: "79927398710", reason: ident.ReasonBadCheckDigit},
		{name: "spaces typed by a cashier", in: "7992 7398 713", want: "79927398713"},
		{name: "dashes typed by a cashier", in: "7992-7398-713", want: "79927398713"},
		{name: "spaces around", in: "  79927398713 ", want: "79927398713"},
		{name: "16 digits grouped", in: "4111 1111 1111 1111", want: "4111111111111111"},
		{name: "leading zeros kept", in: withCheck(ident.CheckLuhn, "0012345"), want: withCheck(ident.CheckLuhn, "0012345")},
		{name: "letter", in: "7992739871A", reason: ident.ReasonBadChars},
		{name: "dot", in: "7992.7398.713", reason: ident.ReasonBadChars},
		{name: "slash", in: "7992/7398713", reason: ident.ReasonBadChars},
		{name: "arabic-indic digits", in: "٧٩٩٢٧٣٩٨٧١٣", reason: ident.ReasonBadChars},
		{name: "fullwidth digits", in: "７９９２７３９８７１３", reason: ident.ReasonBadChars},
		{name: "en dash", in: "7992–7398–713", reason: ident.ReasonBadChars},
		{name: "empty", in: "", reason: ident.ReasonEmpty},
		{name: "spaces only", in: "   ", reason: ident.ReasonEmpty},
		{name: "separators only", in: " - - ", reason: ident.ReasonEmpty},
		{name: "too short", in: withCheck(ident.CheckLuhn, "123456"), reason: ident.ReasonBadLength},
		{name: "shortest", in: withCheck(ident.CheckLuhn, "1234567"), want: withCheck(ident.CheckLuhn, "1234567")},
		{name: "longest", in: withCheck(ident.CheckLuhn, strings.Repeat("9", 18)), want: withCheck(ident.CheckLuhn, strings.Repeat("9", 18))},
		{name: "too long", in: withCheck(ident.CheckLuhn, strings.Repeat("9", 19)), reason: ident.ReasonBadLength},
		{name: "custom min length", rules: func(r *ident.Rules) { r.Loyalty.MinLen = 12 }, in: "79927398713", reason: ident.ReasonBadLength},
		{name: "custom max length", rules: func(r *ident.Rules) { r.Loyalty.MaxLen = 10 }, in: "79927398713", reason: ident.ReasonBadLength},
		{name: "all zeros", in: "00000000", reason: ident.ReasonBlocked},
		{name: "all zeros grouped", in: "0000 0000 0000", reason: ident.ReasonBlocked},
		{name: "all zeros too short", in: "0", reason: ident.ReasonBlocked},
		{name: "all zeros without check digit", rules: none, in: "000000000", reason: ident.ReasonBlocked},
		{name: "all zeros with an empty block list", rules: func(r *ident.Rules) { r.Blocked = nil }, in: "0000000000", reason: ident.ReasonBlocked},
		{name: "minus one", in: "-1", reason: ident.ReasonBlocked},
		{name: "blocked number", rules: func(r *ident.Rules) { r.Blocked = append(r.Blocked, "7992-7398-713") }, in: "79927398713", reason: ident.ReasonBlocked},
		{name: "device id", rules: func(r *ident.Rules) { r.DeviceIDs = []string{"79927398713"} }, in: "7992 7398 713", reason: ident.ReasonBlocked},
		{name: "device id with dashes", rules: func(r *ident.Rules) { r.DeviceIDs = []string{"7992-7398-713"} }, in: "79927398713", reason: ident.ReasonBlocked},
		{name: "prefix matches", rules: func(r *ident.Rules) { r.Loyalty.Prefixes = []string{"12", "799"} }, in: "79927398713", want: "79927398713"},
		{name: "prefix does not match", rules: func(r *ident.Rules) { r.Loyalty.Prefixes = []string{"12", "798"} }, in: "79927398713", reason: ident.ReasonBadPrefix},
		{name: "prefix checked before check digit", rules: func(r *ident.Rules) { r.Loyalty.Prefixes = []string{"12"} }, in: "79927398710", reason: ident.ReasonBadPrefix},
		{name: "gs1 ean-13", rules: gs1, in: "4006381333931", want: "4006381333931"},
		{name: "gs1 ean-13 grouped", rules: gs1, in: "4 006381 333931", want: "4006381333931"},
		{name: "gs1 bad check digit", rules: gs1, in: "4006381333932", reason: ident.ReasonBadCheckDigit},
		{name: "gs1 rejects a luhn number", rules: gs1, in: "79927398713", reason: ident.ReasonBadCheckDigit},
		{name: "luhn rejects an ean-13", in: "4006381333931", reason: ident.ReasonBadCheckDigit},
		{name: "none accepts any check digit", rules: none, in: "79927398710", want: "79927398710"},
		{name: "zero limits take defaults", rules: func(r *ident.Rules) { r.Loyalty = ident.LoyaltyRules{} }, in: "79927398713", want: "79927398713"},
	})
}

func TestNormalizePhone(t *testing.T) {
	uk := func(r *ident.Rules) { r.DefaultCountryCode = "44" }
	runNormalize(t, ident.Phone, []normCase{
		{name: "e164", in: "+447700900123", want: "+447700900123"},
		{name: "e164 grouped", in: "+44 7700 900123", want: "+447700900123"},
		{name: "e164 with dots dashes and parentheses", in: "+1 (202) 555-0143", want: "+12025550143"},
		{name: "e164 with dotted groups", in: "+33.1.23.45.67.89", want: "+33123456789"},
		{name: "e164 with trunk prefix in parentheses", in: "+44 (0)20 7946 0018", want: "+442079460018"},
		{name: "00 prefix", rules: uk, in: "0044 7700 900123", want: "+447700900123"},
		{name: "00 prefix without default country", in: "0044 7700 900123", reason: ident.ReasonBadFormat},
		{name: "national with default country", rules: uk, in: "07700 900123", want: "+447700900123"},
		{name: "national with parentheses", rules: uk, in: "(020) 7946 0018", want: "+442079460018"},
		{name: "national without default country", in: "07700 900123", reason: ident.ReasonBadFormat},
		{name: "national without trunk prefix", rules: uk, in: "7700 900123", reason: ident.ReasonBadFormat},
		{name: "italy keeps the 0", rules: func(r *ident.Rules) { r.DefaultCountryCode = "39" }, in: "06 6982 1234", want: "+390669821234"},
		{name: "italy mobile", rules: func(r *ident.Rules) { r.DefaultCountryCode = "39" }, in: "333 123 4567", want: "+393331234567"},
		{name: "nanp national", rules: func(r *ident.Rules) { r.DefaultCountryCode = "1" }, in: "(202) 555-0143", want: "+12025550143"},
		{name: "nanp national with trunk 1", rules: func(r *ident.Rules) { r.DefaultCountryCode = "1" }, in: "1-202-555-0143", want: "+12025550143"},
		{name: "nanp national too short", rules: func(r *ident.Rules) { r.DefaultCountryCode = "1" }, in: "555-0143", reason: ident.ReasonBadFormat},
		{name: "nanp area code starting with 0", rules: func(r *ident.Rules) { r.DefaultCountryCode = "1" }, in: "012 555 0143", reason: ident.ReasonBadFormat},
		{name: "shortest", in: "+12345678", want: "+12345678"},
		{name: "too short", in: "+1234567", reason: ident.ReasonBadLength},
		{name: "longest", in: "+123456789012345", want: "+123456789012345"},
		{name: "too long", in: "+1234567890123456", reason: ident.ReasonBadLength},
		{name: "national too short", rules: uk, in: "012345", reason: ident.ReasonBadLength},
		{name: "leading zero after plus", in: "+0447700900123", reason: ident.ReasonBadFormat},
		{name: "leading zero after 00", rules: uk, in: "000447700900123", reason: ident.ReasonBadFormat},
		{name: "plus in the middle", in: "+44+7700900123", reason: ident.ReasonBadFormat},
		{name: "plus alone", in: "+", reason: ident.ReasonEmpty},
		{name: "letters", in: "+44 7700 CALLME", reason: ident.ReasonBadChars},
		{name: "slash", in: "+44/7700900123", reason: ident.ReasonBadChars},
		{name: "empty", in: " ", reason: ident.ReasonEmpty},
		{name: "anonymous", in: "anonymous", reason: ident.ReasonBlocked},
		{name: "device id", rules: func(r *ident.Rules) { r.DeviceIDs = []string{"+447700900123"} }, in: "+44 7700 900123", reason: ident.ReasonBlocked},
	})
}

func TestNormalizeEmail(t *testing.T) {
	long := strings.Repeat("a", 63)
	runNormalize(t, ident.Email, []normCase{
		{name: "plain", in: "jane@shop.example.com", want: "jane@shop.example.com"},
		{name: "upper case", in: "Jane.Doe@Shop.Example.COM", want: "jane.doe@shop.example.com"},
		{name: "spaces around", in: "  jane@example.com \u00a0", want: "jane@example.com"},
		{name: "plus tag and specials", in: "j.d+tag!#$%&'*/=?^_`{|}~-@example.co.uk", want: "j.d+tag!#$%&'*/=?^_`{|}~-@example.co.uk"},
		{name: "hyphenated label", in: "jane@my-shop.example", want: "jane@my-shop.example"},
		{name: "space inside", in: "jane doe@example.com", reason: ident.ReasonBadChars},
		{name: "two at signs", in: "jane@doe@example.com", reason: ident.ReasonBadFormat},
		{name: "no at sign", in: "jane.example.com", reason: ident.ReasonBadFormat},
		{name: "empty local part", in: "@example.com", reason: ident.ReasonBadFormat},
		{name: "no dot in domain", in: "jane@localhost", reason: ident.ReasonBadFormat},
		{name: "empty domain", in: "jane@", reason: ident.ReasonBadFormat},
		{name: "trailing dot", in: "jane@example.com.", reason: ident.ReasonBadFormat},
		{name: "double dot in domain", in: "jane@example..com", reason: ident.ReasonBadFormat},
		{name: "label starting with hyphen", in: "jane@-shop.example", reason: ident.ReasonBadFormat},
		{name: "label ending with hyphen", in: "jane@shop-.example", reason: ident.ReasonBadFormat},
		{name: "underscore in domain", in: "jane@my_shop.example", reason: ident.ReasonBadChars},
		{name: "numeric tld", in: "jane@192.168.1.1", reason: ident.ReasonBadFormat},
		{name: "ip literal", in: "jane@[192.168.1.1]", reason: ident.ReasonBadChars},
		{name: "leading dot in local part", in: ".jane@example.com", reason: ident.ReasonBadFormat},
		{name: "trailing dot in local part", in: "jane.@example.com", reason: ident.ReasonBadFormat},
		{name: "double dot in local part", in: "ja..ne@example.com", reason: ident.ReasonBadFormat},
		{name: "quoted local part", in: `"jane doe"@example.com`, reason: ident.ReasonBadChars},
		{name: "comma", in: "jane,doe@example.com", reason: ident.ReasonBadChars},
		{name: "non-ascii", in: "jané@example.com", reason: ident.ReasonBadChars},
		{name: "local part of 64", in: strings.Repeat("j", 64) + "@example.com", want: strings.Repeat("j", 64) + "@example.com"},
		{name: "local part too long", in: strings.Repeat("j", 65) + "@example.com", reason: ident.ReasonBadLength},
		{name: "label of 63", in: "j@" + long + ".com", want: "j@" + long + ".com"},
		{name: "label too long", in: "j@" + long + "a.com", reason: ident.ReasonBadLength},
		{name: "254 in all", in: "j@" + long + "." + long + "." + long + "." + strings.Repeat("b", 60), want: "j@" + long + "." + long + "." + long + "." + strings.Repeat("b", 60)},
		{name: "too long", in: "j@" + long + "." + long + "." + long + "." + strings.Repeat("b", 61), reason: ident.ReasonBadLength},
		{name: "empty", in: "", reason: ident.ReasonEmpty},
		{name: "anonymous", in: "Anonymous", reason: ident.ReasonBlocked},
		{name: "blocked address", rules: func(r *ident.Rules) { r.Blocked = []string{"noreply@shop.example"} }, in: "NoReply@Shop.Example", reason: ident.ReasonBlocked},
	})
}

func TestNormalizeApp(t *testing.T) {
	runNormalize(t, ident.App, []normCase{
		{name: "token", in: "u_9f8A7b-6c5D", want: "u_9f8A7b-6c5D"},
		{name: "case kept", in: "AbC123", want: "AbC123"},
		{name: "trimmed", in: "  AbC123  ", want: "AbC123"},
		{name: "printable punctuation", in: "a.b~c!d=e/f+g", want: "a.b~c!d=e/f+g"},
		{name: "single character", in: "x", want: "x"},
		{name: "longest", in: strings.Repeat("t", 128), want: strings.Repeat("t", 128)},
		{name: "too long", in: strings.Repeat("t", 129), reason: ident.ReasonBadLength},
		{name: "space inside", in: "abc def", reason: ident.ReasonBadChars},
		{name: "non-ascii", in: "tökén", reason: ident.ReasonBadChars},
		{name: "empty", in: "", reason: ident.ReasonEmpty},
		{name: "anonymous", in: "anonymous", reason: ident.ReasonBlocked},
		{name: "anonymous in upper case", in: "ANONYMOUS", reason: ident.ReasonBlocked},
		{name: "minus one", in: "-1", reason: ident.ReasonBlocked},
		{name: "kiosk id", rules: func(r *ident.Rules) { r.DeviceIDs = []string{"kiosk-01", "pos-02"} }, in: "KIOSK-01", reason: ident.ReasonBlocked},
		{name: "speaker id", rules: func(r *ident.Rules) { r.DeviceIDs = []string{"speaker.7"} }, in: "speaker.7", reason: ident.ReasonBlocked},
	})
}

// TestNormalizeScreening covers what every kind refuses before looking at
// the text.
func TestNormalizeScreening(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		reason ident.Reason
	}{
		{"nul", "7992\x007398713", ident.ReasonBadChars},
		{"tab", "79927398713\t", ident.ReasonBadChars},
		{"newline", "79927398713\n", ident.ReasonBadChars},
		{"escape sequence", "\x1b[31m79927398713", ident.ReasonBadChars},
		{"del", "79927398713\x7f", ident.ReasonBadChars},
		{"c1 control", "79927398713\u0085", ident.ReasonBadChars},
		{"invalid utf-8", "79927398713\xff", ident.ReasonBadChars},
		{"truncated utf-8", "79927398713\xe2\x82", ident.ReasonBadChars},
		{"over 512 bytes", strings.Repeat("1", ident.MaxInputLen+1), ident.ReasonTooLong},
		{"over 512 bytes of junk", strings.Repeat("\xff", 4096), ident.ReasonTooLong},
	}
	r := ident.DefaultRules()
	for _, tt := range tests {
		for _, kind := range []ident.Kind{ident.Loyalty, ident.Email, ident.Phone, ident.App} {
			t.Run(tt.name+"/"+string(kind), func(t *testing.T) {
				id, err := r.Normalize(kind, tt.in)
				checkResult(t, id, err, kind, tt.in, "", tt.reason)
				var ie *ident.InvalidError
				if !errors.As(err, &ie) || ie.Kind != kind {
					t.Errorf("error %#v does not name kind %s", err, kind)
				}
			})
		}
	}
}

func TestNormalizeUnknownKind(t *testing.T) {
	for _, kind := range []ident.Kind{"", "LOYALTY", "card", "email "} {
		_, err := ident.DefaultRules().Normalize(kind, "79927398713")
		if ident.ReasonOf(err) != ident.ReasonUnknownKind || !errors.Is(err, ident.ErrInvalid) {
			t.Errorf("Normalize(%q) = %v, want unknown_kind", kind, err)
		}
	}
}
