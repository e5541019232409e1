package ident_test

import (
	"testing"

	"github.com/storeagent/storeagent/agent/ident"
)

// withCheck appends the check digit that alg computes for payload.
func withCheck(alg ident.Check, payload string) string {
	if alg == ident.CheckGS1 {
		return payload + string(ident.GS1CheckDigit(payload))
	}
	return payload + string(ident.LuhnCheckDigit(payload))
}

func TestLuhn(t *testing.T) {
	tests := []struct {
		name   string
		digits string
		valid  bool
	}{
		{"reference number", "79927398713", true},
		{"reference with wrong check digit", "79927398710", false},
		{"reference with swapped digits", "79927398731", false},
		{"visa test card", "4111111111111111", true},
		{"visa test card off by one", "4111111111111112", false},
		{"two digits", "18", true},
		{"all zeros", "00000000", true}, // valid Luhn: why all-zero numbers are blocked by rule
		{"single digit", "0", false},
		{"empty", "", false},
		{"non-digit", "7992739871a", false},
		{"space", "7992739 8713", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ident.LuhnValid(tt.digits); got != tt.valid {
				t.Errorf("LuhnValid(%q) = %v, want %v", tt.digits, got, tt.valid)
			}
		})
	}
}

func TestLuhnCheckDigit(t *testing.T) {
	tests := []struct {
		payload string
		want    byte
	}{
		{"7992739871", '3'},
		{"411111111111111", '1'},
		{"1", '8'},
		{"0", '0'},
		{"", 0},
		{"12a", 0},
	}
	for _, tt := range tests {
		if got := ident.LuhnCheckDigit(tt.payload); got != tt.want {
			t.Errorf("LuhnCheckDigit(%q) = %q, want %q", tt.payload, got, tt.want)
		}
	}
	// Every payload with its computed digit is valid, and no other digit is.
	for _, p := range []string{"1", "12", "123456789", "9999999999999999", "40063813"} {
		c := ident.LuhnCheckDigit(p)
		for d := byte('0'); d <= '9'; d++ {
			if got := ident.LuhnValid(p + string(d)); got != (d == c) {
				t.Errorf("LuhnValid(%q) = %v with check digit %q", p+string(d), got, c)
			}
		}
	}
}

func TestGS1(t *testing.T) {
	tests := []struct {
		name   string
		digits string
		valid  bool
	}{
		{"ean-13", "4006381333931", true},
		{"ean-13 wrong check digit", "4006381333932", false},
		{"ean-8", "96385074", true},
		{"upc-a", "036000291452", true},
		{"gtin-14", "10614141000415", true},
		{"sscc-18", "106141411234567897", true},
		{"ean-13 valid for luhn rules only", "79927398713", false},
		{"single digit", "0", false},
		{"empty", "", false},
		{"non-digit", "400638133393x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ident.GS1Valid(tt.digits); got != tt.valid {
				t.Errorf("GS1Valid(%q) = %v, want %v", tt.digits, got, tt.valid)
			}
		})
	}
}

func TestGS1CheckDigit(t *testing.T) {
	tests := []struct {
		payload string
		want    byte
	}{
		{"400638133393", '1'},
		{"9638507", '4'},
		{"03600029145", '2'},
		{"1", '7'},
		{"", 0},
		{"x", 0},
	}
	for _, tt := range tests {
		if got := ident.GS1CheckDigit(tt.payload); got != tt.want {
			t.Errorf("GS1CheckDigit(%q) = %q, want %q", tt.payload, got, tt.want)
		}
	}
}
