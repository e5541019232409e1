package ident

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Check names the check digit algorithm of a loyalty program.
type Check string

// Check digit algorithms.
const (
	// CheckLuhn is Luhn mod 10 over the whole number, the last digit being
	// the check digit (ISO/IEC 7812 card numbers). The default.
	CheckLuhn Check = "luhn"
	// CheckGS1 is the GS1 mod 10 check digit of EAN and GTIN codes: weights
	// 3 and 1 alternating from the right, the check digit excluded.
	CheckGS1 Check = "gs1"
	// CheckNone verifies no check digit.
	CheckNone Check = "none"
)

// Limits and defaults.
const (
	// MaxInputLen is the longest raw input, in bytes, that Normalize and
	// ParseScan read; longer input is refused with ReasonTooLong before
	// anything else is looked at.
	MaxInputLen = 512

	DefaultMinLen = 8  // Rules.Loyalty.MinLen when zero
	DefaultMaxLen = 19 // Rules.Loyalty.MaxLen when zero: the longest card number of ISO/IEC 7812

	// MaxLoyaltyLen bounds Rules.Loyalty.MaxLen.
	MaxLoyaltyLen = 32
	// MaxAppLen is the longest app token.
	MaxAppLen = 128

	// Placeholder marks where the identifier sits in a QR or app form.
	Placeholder = "{id}"
)

// Rules is the identifier configuration of a loyalty program: the "ident"
// section of an agent's config. Start from DefaultRules; the zero value
// works too (zero limits take their defaults) but holds no forms and blocks
// only all-zero loyalty numbers.
type Rules struct {
	// Loyalty says what a loyalty number looks like.
	Loyalty LoyaltyRules `toml:"loyalty"`

	// QRForms are the forms of a scanned QR code that carry a loyalty
	// number, tried in order. Each is either
	//   - a text template with one {id}, such as "LOYALTY:{id}" or
	//     "CARD-{id}": the scan must start with the text before {id} and end
	//     with the text after it (case-sensitive), and what is between is the
	//     number; or
	//   - a URL template, "scheme://host[/path]?name={id}": the scan must be
	//     a URL with the same scheme, host (case-insensitive, port included)
	//     and path, no user info, and parameter name present exactly once;
	//     its decoded value is the number. Other parameters, their order and
	//     a fragment are ignored. A template is a URL template when it
	//     holds "://" and {id} comes after a "?"; one with {id} in its path
	//     is a text template.
	// The number is then checked as a loyalty number (spaces and dashes
	// allowed).
	QRForms []string `toml:"qr_forms"`

	// AppForms are the forms of a scanned app token, tried after QRForms,
	// written as QRForms are ("APP:{id}"). The token is what {id} stands
	// for, trimmed: 1 to 128 printable ASCII characters, no spaces.
	AppForms []string `toml:"app_forms"`

	// DefaultCountryCode is the country calling code, digits without "+",
	// of national phone numbers ("44"). With it, "07700 900123" is read as
	// "+447700900123". Empty: only international numbers ("+...") are
	// accepted.
	DefaultCountryCode string `toml:"default_country_code"`

	// Blocked lists values that never identify a customer, whatever their
	// kind: placeholders a POS sends when there is no customer. An input is
	// refused with ReasonBlocked when its raw text or its normalised value
	// equals one of them, ignoring ASCII case and the separators a cashier
	// types (space, dash, dot, parentheses). A loyalty number made only of
	// zeros is blocked whatever this list says.
	Blocked []string `toml:"blocked"`

	// DeviceIDs lists the ids of the store's devices (POS terminals, kiosks,
	// speakers, this agent): compared as Blocked is, so that a device id is
	// never taken for a customer's identifier.
	DeviceIDs []string `toml:"device_ids"`
}

// LoyaltyRules says what a loyalty number looks like. A cashier may type
// spaces and dashes, which are removed; any other non-digit is refused.
type LoyaltyRules struct {
	// MinLen and MaxLen bound the number of digits, check digit included.
	// Zero: DefaultMinLen and DefaultMaxLen.
	MinLen int `toml:"min_len"`
	MaxLen int `toml:"max_len"`
	// Check is the check digit algorithm: "luhn" (CheckLuhn, the default
	// when empty), "gs1" or "none".
	Check Check `toml:"check"`
	// Prefixes, when set, are the digit strings a number must start with
	// (issuer ranges).
	Prefixes []string `toml:"prefixes"`
}

// DefaultRules returns the defaults: loyalty numbers of 8 to 19 digits with a
// Luhn check digit and no prefix rule; QR form "LOYALTY:{id}"; app form
// "APP:{id}"; no default country code (phone numbers must start with "+");
// "anonymous" and "-1" blocked; no device ids (the daemon adds its own).
func DefaultRules() Rules {
	return Rules{
		Loyalty:  LoyaltyRules{MinLen: DefaultMinLen, MaxLen: DefaultMaxLen, Check: CheckLuhn},
		QRForms:  []string{"LOYALTY:" + Placeholder},
		AppForms: []string{"APP:" + Placeholder},
		Blocked:  []string{"anonymous", "-1"},
	}
}

// Validate checks every setting and returns a *RuleError naming the first
// faulty one by its TOML key.
func (r Rules) Validate() error {
	l := r.Loyalty.withDefaults()
	minLen := 1
	if l.Check != CheckNone {
		minLen = 2 // a payload digit and the check digit
	}
	switch {
	case l.MinLen < minLen || l.MinLen > MaxLoyaltyLen:
		return ruleErr("loyalty.min_len", "must be between %d and %d", minLen, MaxLoyaltyLen)
	case l.MaxLen < l.MinLen || l.MaxLen > MaxLoyaltyLen:
		return ruleErr("loyalty.max_len", "must be between min_len (%d) and %d", l.MinLen, MaxLoyaltyLen)
	}
	switch l.Check {
	case CheckLuhn, CheckGS1, CheckNone:
	default:
		return ruleErr("loyalty.check", "must be luhn, gs1 or none")
	}
	for i, p := range l.Prefixes {
		if p == "" || len(p) > l.MaxLen || !allDigits(p) {
			return ruleErr(fmt.Sprintf("loyalty.prefixes[%d]", i), "must be 1 to max_len digits")
		}
	}
	for i, f := range r.QRForms {
		if _, err := parseForm(f); err != nil {
			return ruleErr(fmt.Sprintf("qr_forms[%d]", i), "%v", err)
		}
	}
	for i, f := range r.AppForms {
		if _, err := parseForm(f); err != nil {
			return ruleErr(fmt.Sprintf("app_forms[%d]", i), "%v", err)
		}
	}
	if cc := r.DefaultCountryCode; cc != "" && (len(cc) > 3 || !allDigits(cc) || cc[0] == '0') {
		return ruleErr("default_country_code", "must be a country calling code of 1 to 3 digits without \"+\"")
	}
	if err := validateList("blocked", r.Blocked); err != nil {
		return err
	}
	return validateList("device_ids", r.DeviceIDs)
}

func validateList(key string, list []string) error {
	for i, v := range list {
		if strings.TrimSpace(v) == "" {
			return ruleErr(fmt.Sprintf("%s[%d]", key, i), "must not be empty")
		}
		if len(v) > MaxInputLen || !utf8.ValidString(v) || hasControl(v) {
			return ruleErr(fmt.Sprintf("%s[%d]", key, i), "must be at most %d bytes of UTF-8 without control characters", MaxInputLen)
		}
	}
	return nil
}

func ruleErr(field, format string, args ...any) error {
	return &RuleError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (l LoyaltyRules) withDefaults() LoyaltyRules {
	if l.MinLen == 0 {
		l.MinLen = DefaultMinLen
	}
	if l.MaxLen == 0 {
		l.MaxLen = max(DefaultMaxLen, l.MinLen)
	}
	if l.Check == "" {
		l.Check = CheckLuhn
	}
	return l
}

// form is a parsed QR or app form.
type form struct {
	// A text form: the scan is prefix + id + suffix.
	prefix, suffix string
	// A URL form: the id is the value of param, when scheme, host and
	// path match.
	isURL              bool
	scheme, host, path string
	param              string
}

// parseForm parses a template. Its errors never hold the template, which is
// config, but keep them short and uniform anyway.
func parseForm(t string) (form, error) {
	if strings.Count(t, Placeholder) != 1 {
		return form{}, fmt.Errorf("must hold %s exactly once", Placeholder)
	}
	if t != strings.TrimSpace(t) || !utf8.ValidString(t) || hasControl(t) || len(t) > MaxInputLen {
		return form{}, errors.New("must be valid UTF-8 without control characters, not starting or ending with a space")
	}
	if isURLTemplate(t) {
		return parseURLForm(t)
	}
	prefix, suffix, _ := strings.Cut(t, Placeholder)
	if prefix == "" && suffix == "" {
		return form{}, fmt.Errorf("must hold text besides %s", Placeholder)
	}
	return form{prefix: prefix, suffix: suffix}, nil
}

// isURLTemplate reports whether t is written as a URL template: it holds
// "://" and a "?" before the placeholder.
func isURLTemplate(t string) bool {
	q := strings.IndexByte(t, '?')
	return q >= 0 && q < strings.Index(t, Placeholder) && strings.Contains(t, "://")
}

func parseURLForm(t string) (form, error) {
	u, err := url.Parse(t)
	switch {
	case err != nil:
		return form{}, errors.New("not a URL template")
	case u.Scheme == "" || u.Host == "" || u.Opaque != "":
		return form{}, errors.New("a URL template needs a scheme and a host")
	case u.User != nil || u.Fragment != "" || u.ForceQuery:
		return form{}, errors.New("a URL template must not hold user info or a fragment")
	}
	name, value, ok := strings.Cut(u.RawQuery, "=")
	if !ok || value != Placeholder || strings.ContainsAny(name, "&;") {
		return form{}, fmt.Errorf("a URL template's query must be exactly name=%s", Placeholder)
	}
	name, err = url.QueryUnescape(name)
	if err != nil || name == "" {
		return form{}, fmt.Errorf("a URL template's query must be exactly name=%s", Placeholder)
	}
	return form{isURL: true, scheme: u.Scheme, host: u.Host, path: u.Path, param: name}, nil
}
