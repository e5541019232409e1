package ident_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/storeagent/storeagent/agent/ident"
)

func TestDefaultRules(t *testing.T) {
	r := ident.DefaultRules()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	want := ident.LoyaltyRules{MinLen: 8, MaxLen: 19, Check: ident.CheckLuhn}
	if !slices.Equal(r.Loyalty.Prefixes, want.Prefixes) || r.Loyalty.MinLen != want.MinLen || r.Loyalty.MaxLen != want.MaxLen || r.Loyalty.Check != want.Check {
		t.Errorf("Loyalty = %+v, want %+v", r.Loyalty, want)
	}
	if !slices.Equal(r.Blocked, []string{"anonymous", "-1"}) {
		t.Errorf("Blocked = %q", r.Blocked)
	}
	if !slices.Equal(r.QRForms, []string{"LOYALTY:{id}"}) || !slices.Equal(r.AppForms, []string{"APP:{id}"}) {
		t.Errorf("forms = %q, %q", r.QRForms, r.AppForms)
	}
	if r.DefaultCountryCode != "" || r.DeviceIDs != nil {
		t.Errorf("country %q, devices %q", r.DefaultCountryCode, r.DeviceIDs)
	}
	// Each call returns fresh slices.
	r.Blocked[0] = "x"
	if ident.DefaultRules().Blocked[0] != "anonymous" {
		t.Error("DefaultRules shares its slices")
	}
	var zero ident.Rules
	if err := zero.Validate(); err != nil {
		t.Errorf("zero Rules: %v", err)
	}
}

func TestRulesValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*ident.Rules)
		field string // "" when valid
	}{
		{"defaults", func(*ident.Rules) {}, ""},
		{"gs1", func(r *ident.Rules) { r.Loyalty.Check = ident.CheckGS1 }, ""},
		{"none with one digit", func(r *ident.Rules) { r.Loyalty = ident.LoyaltyRules{MinLen: 1, MaxLen: 4, Check: ident.CheckNone} }, ""},
		{"prefixes", func(r *ident.Rules) { r.Loyalty.Prefixes = []string{"6", "0042"} }, ""},
		{"country codes", func(r *ident.Rules) { r.DefaultCountryCode = "353" }, ""},
		{"min len negative", func(r *ident.Rules) { r.Loyalty.MinLen = -1 }, "loyalty.min_len"},
		{"min len 1 with luhn", func(r *ident.Rules) { r.Loyalty.MinLen = 1 }, "loyalty.min_len"},
		{"min len over max", func(r *ident.Rules) { r.Loyalty.MinLen = 33 }, "loyalty.min_len"},
		{"max len under min", func(r *ident.Rules) { r.Loyalty.MinLen, r.Loyalty.MaxLen = 12, 10 }, "loyalty.max_len"},
		{"max len over limit", func(r *ident.Rules) { r.Loyalty.MaxLen = 33 }, "loyalty.max_len"},
		{"unknown check", func(r *ident.Rules) { r.Loyalty.Check = "mod11" }, "loyalty.check"},
		{"check in upper case", func(r *ident.Rules) { r.Loyalty.Check = "LUHN" }, "loyalty.check"},
		{"empty prefix", func(r *ident.Rules) { r.Loyalty.Prefixes = []string{"6", ""} }, "loyalty.prefixes[1]"},
		{"prefix with letter", func(r *ident.Rules) { r.Loyalty.Prefixes = []string{"6A"} }, "loyalty.prefixes[0]"},
		{"prefix longer than max len", func(r *ident.Rules) { r.Loyalty.Prefixes = []string{"12345678901234567890"} }, "loyalty.prefixes[0]"},
		{"qr form without placeholder", func(r *ident.Rules) { r.QRForms = []string{"LOYALTY:"} }, "qr_forms[0]"},
		{"qr form with two placeholders", func(r *ident.Rules) { r.QRForms = []string{"L:{id}", "{id}:{id}"} }, "qr_forms[1]"},
		{"qr form of placeholder only", func(r *ident.Rules) { r.QRForms = []string{"{id}"} }, "qr_forms[0]"},
		{"qr form with space around", func(r *ident.Rules) { r.QRForms = []string{"LOYALTY: {id} "} }, "qr_forms[0]"},
		{"qr form with control", func(r *ident.Rules) { r.QRForms = []string{"L\t{id}"} }, "qr_forms[0]"},
		{"qr form with invalid utf-8", func(r *ident.Rules) { r.QRForms = []string{"\x9f{id}"} }, "qr_forms[0]"},
		{"qr form with c1 control", func(r *ident.Rules) { r.QRForms = []string{"\u009f{id}"} }, "qr_forms[0]"},
		{"url form", func(r *ident.Rules) { r.QRForms = []string{"https://shop.example/l?card={id}"} }, ""},
		{"url form without host", func(r *ident.Rules) { r.QRForms = []string{"https:///l?card={id}"} }, "qr_forms[0]"},
		{"url form with literal around id", func(r *ident.Rules) { r.QRForms = []string{"https://shop.example/l?card=X{id}"} }, "qr_forms[0]"},
		{"url form with two params", func(r *ident.Rules) { r.QRForms = []string{"https://shop.example/l?v=1&card={id}"} }, "qr_forms[0]"},
		{"url form with fragment", func(r *ident.Rules) { r.QRForms = []string{"https://shop.example/l?card={id}#x"} }, "qr_forms[0]"},
		{"url form with user", func(r *ident.Rules) { r.QRForms = []string{"https://u@shop.example/l?card={id}"} }, "qr_forms[0]"},
		{"url form with empty name", func(r *ident.Rules) { r.QRForms = []string{"https://shop.example/l?={id}"} }, "qr_forms[0]"},
		{"url form with bad escape", func(r *ident.Rules) { r.QRForms = []string{"https://shop.example/l?c%zz={id}"} }, "qr_forms[0]"},
		{"bad app form", func(r *ident.Rules) { r.AppForms = []string{"APP:"} }, "app_forms[0]"},
		{"country code with plus", func(r *ident.Rules) { r.DefaultCountryCode = "+44" }, "default_country_code"},
		{"country code too long", func(r *ident.Rules) { r.DefaultCountryCode = "4444" }, "default_country_code"},
		{"country code with leading zero", func(r *ident.Rules) { r.DefaultCountryCode = "044" }, "default_country_code"},
		{"empty blocked value", func(r *ident.Rules) { r.Blocked = append(r.Blocked, " ") }, "blocked[2]"},
		{"blocked value with control", func(r *ident.Rules) { r.Blocked = []string{"a\nb"} }, "blocked[0]"},
		{"device id with invalid utf-8", func(r *ident.Rules) { r.DeviceIDs = []string{"pos\xff"} }, "device_ids[0]"},
		{"empty device id", func(r *ident.Rules) { r.DeviceIDs = []string{"pos-1", ""} }, "device_ids[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ident.DefaultRules()
			tt.edit(&r)
			err := r.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			re, ok := errors.AsType[*ident.RuleError](err)
			if !ok {
				t.Fatalf("Validate() = %v, want a *RuleError for %s", err, tt.field)
			}
			if re.Field != tt.field {
				t.Errorf("field %q (%v), want %q", re.Field, err, tt.field)
			}
			if !strings.HasPrefix(err.Error(), tt.field+": ") {
				t.Errorf("Error() = %q does not start with the field", err)
			}
		})
	}
}
