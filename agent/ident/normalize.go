package ident

import (
	"strings"
	"unicode/utf8"
)

// Normalize validates raw as an identifier of the given kind, typed by a
// cashier or sent by the POS, and returns it normalised:
//   - Loyalty: spaces and dashes removed, digits only; length, prefix and
//     check digit per r.Loyalty; all zeros blocked.
//   - Email: trimmed and lower-cased; one "@", a local part of 1 to 64
//     characters (letters, digits, !#$%&'*+/=?^_`{|}~- and dots, not at
//     either end nor doubled), a domain of two or more labels of letters,
//     digits and inner hyphens, 1 to 63 characters each, the last not all
//     digits; 254 characters at most. No quoted local parts, no
//     internationalised addresses.
//   - Phone: spaces, dashes, dots and parentheses removed; "+" then the
//     number, "00" then the number (with r.DefaultCountryCode set), or a
//     national number (see below); E.164 out: "+" and 8 to 15 digits, the
//     first not 0. A "(0)" after an international prefix is dropped
//     ("+44 (0)20 ..."). National numbers need r.DefaultCountryCode and
//     lose their trunk prefix 0 ("07700 900123" with 44 gives
//     "+447700900123"); for country codes 39 and 378 (Italy, San Marino)
//     the 0 belongs to the number and is kept; for 1 (NANP) a national
//     number is 10 digits, or 11 starting with 1.
//   - App: trimmed; 1 to 128 printable ASCII characters, no spaces.
//
// Every kind is refused with ReasonTooLong past MaxInputLen bytes, with
// ReasonBadChars for invalid UTF-8 or control characters, and with
// ReasonBlocked when the raw text or the result matches r.Blocked or
// r.DeviceIDs. An unknown kind yields ReasonUnknownKind.
func (r Rules) Normalize(kind Kind, raw string) (ID, error) {
	if !kind.known() {
		return ID{}, invalid("", ReasonUnknownKind)
	}
	s, reason := screen(raw)
	if reason != "" {
		return ID{}, invalid(kind, reason)
	}
	return r.normalize(kind, s)
}

// normalize takes screened, trimmed input.
func (r Rules) normalize(kind Kind, s string) (ID, error) {
	if s == "" {
		return ID{}, invalid(kind, ReasonEmpty)
	}
	if r.blocked(s) {
		return ID{}, invalid(kind, ReasonBlocked)
	}
	var v string
	var reason Reason
	switch kind {
	case Loyalty:
		v, reason = r.loyalty(s)
	case Email:
		v, reason = email(s)
	case Phone:
		v, reason = r.phone(s)
	case App:
		v, reason = app(s)
	}
	if reason == "" && r.blocked(v) {
		reason = ReasonBlocked
	}
	if reason != "" {
		return ID{}, invalid(kind, reason)
	}
	return ID{Kind: kind, Value: v}, nil
}

// screen applies the checks every input gets first and trims it.
func screen(raw string) (string, Reason) {
	if len(raw) > MaxInputLen {
		return "", ReasonTooLong
	}
	if !utf8.ValidString(raw) || hasControl(raw) {
		return "", ReasonBadChars
	}
	return strings.TrimSpace(raw), ""
}

// hasControl reports whether s holds a C0 or C1 control character or DEL.
func hasControl(s string) bool {
	for _, c := range s {
		if c < 0x20 || (c >= 0x7f && c < 0xa0) {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// blocked reports whether s matches a blocked value or a device id.
func (r Rules) blocked(s string) bool {
	for _, b := range r.Blocked {
		if sameLoose(s, b) {
			return true
		}
	}
	for _, d := range r.DeviceIDs {
		if sameLoose(s, d) {
			return true
		}
	}
	return false
}

// isSeparator reports whether c is one of the characters a cashier types
// between digit groups.
func isSeparator(c byte) bool {
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')'
}

// sameLoose reports whether a and b are equal once separators are skipped
// and ASCII case is folded. Neither string becomes empty by skipping: an
// entry of separators only ("-") would otherwise match every input that is
// all separators, which Validate allows in Blocked.
func sameLoose(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	i, j := 0, 0
	seen := false
	for {
		for i < len(a) && isSeparator(a[i]) {
			i++
		}
		for j < len(b) && isSeparator(b[j]) {
			j++
		}
		if i == len(a) || j == len(b) {
			return seen && i == len(a) && j == len(b)
		}
		if lower(a[i]) != lower(b[j]) {
			return false
		}
		seen = true
		i++
		j++
	}
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// loyalty normalises a loyalty number.
func (r Rules) loyalty(s string) (string, Reason) {
	l := r.Loyalty.withDefaults()
	buf := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			buf = append(buf, c)
		case c == ' ' || c == '-':
		default:
			return "", ReasonBadChars
		}
	}
	if len(buf) == 0 {
		return "", ReasonEmpty
	}
	digits := string(buf)
	if strings.Trim(digits, "0") == "" || r.blocked(digits) {
		return "", ReasonBlocked
	}
	if len(digits) < l.MinLen || len(digits) > l.MaxLen {
		return "", ReasonBadLength
	}
	if len(l.Prefixes) > 0 && !hasAnyPrefix(digits, l.Prefixes) {
		return "", ReasonBadPrefix
	}
	if !checkDigitValid(l.Check, digits) {
		return "", ReasonBadCheckDigit
	}
	return digits, ""
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func checkDigitValid(c Check, digits string) bool {
	switch c {
	case CheckLuhn:
		return LuhnValid(digits)
	case CheckGS1:
		return GS1Valid(digits)
	case CheckNone:
		return true
	}
	return false // an unknown algorithm never passes
}

// E.164 bounds of the digits after "+".
const (
	minPhoneDigits = 8
	maxPhoneDigits = 15
)

// phone normalises a phone number to E.164.
func (r Rules) phone(s string) (string, Reason) {
	plus := s[0] == '+'
	if plus {
		s = s[1:]
	}
	international := plus || strings.HasPrefix(s, "00")
	if international {
		s = strings.Replace(s, "(0)", "", 1)
	}
	digits := make([]byte, 0, len(s)+3)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
		case isSeparator(c):
		case c == '+':
			return "", ReasonBadFormat // a second "+", or one after the start
		default:
			return "", ReasonBadChars
		}
	}
	if len(digits) == 0 {
		return "", ReasonEmpty
	}
	var e164 []byte
	switch {
	case plus:
		e164 = digits
	case r.DefaultCountryCode == "":
		return "", ReasonBadFormat // without a country code only "+..." is unambiguous
	case len(digits) >= 2 && digits[0] == '0' && digits[1] == '0':
		e164 = digits[2:]
	default:
		var reason Reason
		if e164, reason = national(r.DefaultCountryCode, digits); reason != "" {
			return "", reason
		}
	}
	if len(e164) < minPhoneDigits || len(e164) > maxPhoneDigits {
		return "", ReasonBadLength
	}
	if e164[0] == '0' {
		return "", ReasonBadFormat
	}
	return "+" + string(e164), ""
}

// national turns a national number into the digits of its E.164 form,
// after the "+".
func national(cc string, digits []byte) ([]byte, Reason) {
	switch cc {
	case "39", "378": // Italy, San Marino: no trunk prefix, a leading 0 is part of the number
		return append([]byte(cc), digits...), ""
	case "1": // NANP: 10 digits, the area code not starting with 0 or 1; trunk prefix 1
		if len(digits) == 11 && digits[0] == '1' {
			digits = digits[1:]
		}
		if len(digits) != 10 || digits[0] < '2' {
			return nil, ReasonBadFormat
		}
		return append([]byte(cc), digits...), ""
	}
	if digits[0] != '0' {
		return nil, ReasonBadFormat // neither international nor national with its trunk prefix
	}
	return append([]byte(cc), digits[1:]...), ""
}

// E-mail bounds (RFC 5321).
const (
	maxEmailLen = 254
	maxLocalLen = 64
	maxLabelLen = 63
)

// email normalises an e-mail address.
func email(s string) (string, Reason) {
	if len(s) > maxEmailLen {
		return "", ReasonBadLength
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return "", ReasonBadChars
		}
	}
	s = strings.ToLower(s)
	local, domain, ok := strings.Cut(s, "@")
	if !ok || strings.Contains(domain, "@") || local == "" {
		return "", ReasonBadFormat
	}
	if len(local) > maxLocalLen {
		return "", ReasonBadLength
	}
	if reason := emailLocal(local); reason != "" {
		return "", reason
	}
	if reason := emailDomain(domain); reason != "" {
		return "", reason
	}
	return s, ""
}

func emailLocal(local string) Reason {
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return ReasonBadFormat
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; !isAlnum(c) && c != '.' && !strings.ContainsRune("!#$%&'*+/=?^_`{|}~-", rune(c)) {
			return ReasonBadChars
		}
	}
	return ""
}

func emailDomain(domain string) Reason {
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return ReasonBadFormat
	}
	for _, l := range labels {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
			return ReasonBadFormat
		}
		if len(l) > maxLabelLen {
			return ReasonBadLength
		}
		for i := 0; i < len(l); i++ {
			if !isAlnum(l[i]) && l[i] != '-' {
				return ReasonBadChars
			}
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return ReasonBadFormat // an IP address, or a numeric top-level domain
	}
	return ""
}

func isAlnum(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// app validates an app token.
func app(s string) (string, Reason) {
	if len(s) > MaxAppLen {
		return "", ReasonBadLength
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return "", ReasonBadChars
		}
	}
	return s, ""
}
