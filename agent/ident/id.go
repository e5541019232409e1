package ident

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of a customer identifier. Its text is the prefix hashed
// with the value (PROTOCOL.md, "Identifiers").
type Kind string

// The kinds of identifier.
const (
	Loyalty Kind = "loyalty" // a loyalty card number: digits only, check digit verified
	Email   Kind = "email"   // an e-mail address: trimmed, lower case
	Phone   Kind = "phone"   // a phone number in E.164: "+" and 8 to 15 digits
	App     Kind = "app"     // an app token: as given, 1 to 128 printable ASCII characters
)

// ParseKind returns the Kind named s, exactly as written in the constants
// (lower case). Any other text yields an *InvalidError with
// ReasonUnknownKind.
func ParseKind(s string) (Kind, error) {
	k := Kind(s)
	if !k.known() {
		return "", invalid("", ReasonUnknownKind)
	}
	return k, nil
}

func (k Kind) known() bool {
	switch k {
	case Loyalty, Email, Phone, App:
		return true
	}
	return false
}

// ID is a normalised, validated customer identifier, as returned by
// Rules.Normalize and Rules.ParseScan.
//
// Its Value is personal data. Printing an ID (String, any fmt verb), logging
// it (LogValue) or encoding it as text or JSON (MarshalText) shows only its
// kind and length; Mask shows a few characters for a technician. Read Value
// only to hash it (Hasher.Sum), and never keep it.
type ID struct {
	Kind  Kind   // never empty in an ID this package returns
	Value string // the normalised value; personal data
}

// String returns the kind and the length of the value, never the value:
// "loyalty:<redacted, 16 chars>".
func (id ID) String() string {
	if id.Value == "" {
		return string(id.Kind) + ":<empty>"
	}
	return string(id.Kind) + ":<redacted, " + strconv.Itoa(len(id.Value)) + " chars>"
}

// Format makes every fmt verb, %#v included, print String instead of the
// fields.
func (id ID) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, fmt.FormatString(f, verb), id.String())
}

// LogValue implements slog.LogValuer: a logged ID shows as String does.
func (id ID) LogValue() slog.Value { return slog.StringValue(id.String()) }

// MarshalText returns String's text, so that an ID encoded by mistake (JSON,
// TOML, a support bundle) never carries the value. Nothing decodes it back:
// hash an ID, do not store it.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// mask is the character that hides the rest of a masked value.
const mask = "•"

// Mask returns a form of id for technician output (storectl scan test): the
// kind, and
//   - for a loyalty number or a phone number, its last 2 characters, the
//     others hidden one for one ("loyalty:••••••••••••••42"); a value of 4
//     characters or fewer is hidden entirely;
//   - for an e-mail address, the first character of the local part and the
//     top-level domain ("email:j•••@•••.com");
//   - for an app token, nothing ("app:•••").
func (id ID) Mask() string {
	var b strings.Builder
	b.WriteString(string(id.Kind))
	b.WriteByte(':')
	switch id.Kind {
	case Loyalty, Phone:
		n := len(id.Value)
		show := 2
		if n <= 4 {
			show = 0
		}
		b.WriteString(strings.Repeat(mask, n-show))
		b.WriteString(id.Value[n-show:])
	case Email:
		local, domain, ok := strings.Cut(id.Value, "@")
		dot := strings.LastIndexByte(domain, '.')
		if !ok || local == "" || dot < 0 {
			b.WriteString(mask + mask + mask)
			break
		}
		_, size := utf8.DecodeRuneInString(local)
		b.WriteString(local[:size] + mask + mask + mask + "@" + mask + mask + mask + domain[dot:])
	default:
		b.WriteString(mask + mask + mask)
	}
	return b.String()
}
